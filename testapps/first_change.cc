// SPDX-License-Identifier: Apache-2.0
// first_change: K threads make their first change of per-thread state at the same moment, then
// each creates N threads that check their own state against the baseline.
//
// Each worker is released through a barrier into one kind of change, chosen in turn from a list
// that covers every interposed entry point that can start the library's machinery (libc wrapper
// and syscall(2) forms; self and cross-thread changes; privileges):
//   unshare-net  unshare(CLONE_NEWNET)           setns-net   setns() into a second netns
//   sys-unshare  syscall(SYS_unshare, NEWNET)    sys-setns   syscall(SYS_setns) into it
//   unshare-uts  unshare(CLONE_NEWUTS)           unshare-ipc unshare(CLONE_NEWIPC)
//   fs           unshare(CLONE_FS) + chdir       files       unshare(CLONE_FILES) + close
//   affinity     sched_setaffinity(0)            sys-aff     syscall(SYS_sched_setaffinity)
//   cross-aff    sched_setaffinity(tid) of the next worker, which waits for it
//   capset       capset() dropping CAP_SYS_BOOT  nnp         prctl(PR_SET_NO_NEW_PRIVS)
//   bset         prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT)
// Every child checks (from the kernel, by itself): net/uts/ipc namespaces, cwd (fs shared with
// the main thread, kcmp), fd table (shared), CPU affinity = the main thread's; and never more
// privileged than its creator: CAP_SYS_BOOT absent where the creator dropped it, no_new_privs
// kept.
//
// One process is one scenario (the race is about the process's first change). `--runs R` spawns
// this program R times (fresh processes: each loads the library anew when preloaded) and sums.
// `--warm` makes one tainted create before the barrier, so the library's machinery is already
// running (the control case).
//
//   first_change [--workers K] [--children N] [--runs R] [--warm] [--seed S]
// Output: one JSON line {"runs", "workers", "children", "wrong", "wrong_by_kind": {...},
//                        "first": "..."}.
// Exit: 0 no wrong child, 1 wrong children, 2 usage, 3 cannot run here (needs root: namespaces).

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "thread_state.h"

extern char** environ;

// Declared by glibc without a header for programs.
extern "C" int capget(cap_user_header_t, cap_user_data_t);
extern "C" int capset(cap_user_header_t, const cap_user_data_t);

namespace {

const char* const kKinds[] = {"unshare-net", "setns-net",  "sys-unshare", "sys-setns",
                              "unshare-uts", "unshare-ipc", "fs",         "files",
                              "affinity",    "sys-aff",    "cross-aff",   "capset",
                              "nnp",         "bset"};
constexpr int kKindCount = sizeof kKinds / sizeof kKinds[0];

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

using testapp::NsInode;

uint64_t CapEffective() {
  __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (syscall(SYS_capget, &h, d) != 0) return ~0ull;
  return d[0].effective | static_cast<uint64_t>(d[1].effective) << 32;
}

struct Baseline {
  long long net, uts, ipc;
  cpu_set_t affinity;
  pid_t main_tid;
  int second_netns = -1;  // a netns to setns into (held by a forked helper process)
  int sentinel_fd = -1;   // open in the baseline's fd table; closed in a worker's private one
} g_base;

pthread_barrier_t g_barrier;
std::atomic<int> g_wrong{0};
std::vector<int> g_wrong_by_kind(kKindCount);
std::atomic<bool> g_first_said{false};
char g_first[256];

// What a worker's children must see, beyond the baseline.
struct Expect {
  bool boot_dropped = false;  // CAP_SYS_BOOT absent from the effective set
  bool bset_dropped = false;  // CAP_SYS_BOOT absent from the bounding set
  bool nnp = false;
};

struct Worker {
  int index;
  int kind;
  int children;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> affinity_set{false};  // cross-aff: the next worker set this one's affinity
  Worker* next = nullptr;
  Expect expect;
};

struct ChildArg {
  const Worker* worker;
};

void Wrong(const Worker* w, const char* what) {
  g_wrong.fetch_add(1);
  __atomic_fetch_add(&g_wrong_by_kind[w->kind], 1, __ATOMIC_RELAXED);
  if (!g_first_said.exchange(true)) {
    std::snprintf(g_first, sizeof g_first, "worker %d (%s): child %s", w->index, kKinds[w->kind],
                  what);
  }
}

void* Child(void* p) {
  const Worker* w = static_cast<ChildArg*>(p)->worker;
  if (NsInode("net") != g_base.net) Wrong(w, "net is not the baseline's");
  if (NsInode("uts") != g_base.uts) Wrong(w, "uts is not the baseline's");
  if (NsInode("ipc") != g_base.ipc) Wrong(w, "ipc is not the baseline's");
  pid_t self = Tid();
  if (syscall(SYS_kcmp, g_base.main_tid, self, KCMP_FS, 0, 0) != 0) {
    Wrong(w, "fs is not shared with the baseline");
  }
  if (syscall(SYS_kcmp, g_base.main_tid, self, KCMP_FILES, 0, 0) != 0) {
    Wrong(w, "fd table is not shared with the baseline");
  }
  cpu_set_t aff;
  if (sched_getaffinity(0, sizeof aff, &aff) != 0 || !CPU_EQUAL(&aff, &g_base.affinity)) {
    Wrong(w, "affinity is not the baseline's");
  }
  if (w->expect.boot_dropped && (CapEffective() & (1ull << CAP_SYS_BOOT))) {
    Wrong(w, "has CAP_SYS_BOOT, which its creator dropped (escalation)");
  }
  if (w->expect.bset_dropped && prctl(PR_CAPBSET_READ, CAP_SYS_BOOT, 0, 0, 0) != 0) {
    Wrong(w, "has CAP_SYS_BOOT in its bounding set, which its creator dropped (escalation)");
  }
  if (w->expect.nnp && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
    Wrong(w, "lost no_new_privs (escalation)");
  }
  return nullptr;
}

void SetAffinityToOneCpu(pid_t tid, bool raw) {
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = CPU_SETSIZE - 1; c >= 0; --c) {
    if (CPU_ISSET(c, &g_base.affinity)) {
      CPU_SET(c, &one);
      break;
    }
  }
  if (raw) syscall(SYS_sched_setaffinity, tid, sizeof one, &one);
  else sched_setaffinity(tid, sizeof one, &one);
}

void DropBootCapability(Worker* w) {
  __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  capget(&h, d);
  d[CAP_SYS_BOOT / 32].effective &= ~(1u << (CAP_SYS_BOOT % 32));
  if (capset(&h, d) == 0) w->expect.boot_dropped = true;
}

void MakeChange(Worker* w) {
  const char* kind = kKinds[w->kind];
  auto is = [&](const char* k) { return std::strcmp(kind, k) == 0; };
  if (is("unshare-net")) unshare(CLONE_NEWNET);
  else if (is("setns-net")) setns(g_base.second_netns, CLONE_NEWNET);
  else if (is("sys-unshare")) syscall(SYS_unshare, CLONE_NEWNET);
  else if (is("sys-setns")) syscall(SYS_setns, g_base.second_netns, CLONE_NEWNET);
  else if (is("unshare-uts")) unshare(CLONE_NEWUTS);
  else if (is("unshare-ipc")) unshare(CLONE_NEWIPC);
  else if (is("fs")) {
    if (unshare(CLONE_FS) == 0 && chdir("/") != 0) std::perror("chdir");
  } else if (is("files")) {
    if (unshare(CLONE_FILES) == 0) close(g_base.sentinel_fd);
  } else if (is("affinity")) SetAffinityToOneCpu(0, false);
  else if (is("sys-aff")) SetAffinityToOneCpu(0, true);
  else if (is("cross-aff")) {
    // The next worker's affinity (it waits until this is done before creating).
    Worker* n = w->next;
    while (n->tid.load() == 0) sched_yield();
    SetAffinityToOneCpu(n->tid.load(), false);
    n->affinity_set.store(true);
  } else if (is("capset")) DropBootCapability(w);
  else if (is("nnp")) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) w->expect.nnp = true;
  } else if (is("bset")) {
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) == 0) w->expect.bset_dropped = true;
  }
}

void* WorkerMain(void* p) {
  Worker* w = static_cast<Worker*>(p);
  w->tid.store(Tid());
  pthread_barrier_wait(&g_barrier);
  MakeChange(w);
  // A worker whose affinity another worker sets creates only once that happened.
  bool targeted = false;
  for (Worker* o = w->next; o != w; o = o->next) {
    if (std::strcmp(kKinds[o->kind], "cross-aff") == 0 && o->next == w) targeted = true;
  }
  if (targeted) {
    while (!w->affinity_set.load()) sched_yield();
  }
  ChildArg arg{w};
  for (int i = 0; i < w->children; ++i) {
    pthread_t t;
    int rc = pthread_create(&t, nullptr, Child, &arg);
    if (rc != 0) {
      std::fprintf(stderr, "pthread_create: %s\n", std::strerror(rc));
      std::exit(1);
    }
    pthread_join(t, nullptr);
  }
  return nullptr;
}

void* WarmChild(void*) { return nullptr; }

// A create from a tainted thread before the race: whatever the library starts on first need
// is running when the workers are released.
void* WarmUp(void*) {
  if (unshare(CLONE_NEWUTS) != 0 || unshare(CLONE_FS) != 0) return nullptr;
  pthread_t t;
  if (pthread_create(&t, nullptr, WarmChild, nullptr) == 0) pthread_join(t, nullptr);
  return nullptr;
}

// A second network namespace, held by a forked process that waits until we exit.
int OpenSecondNetns() {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    char ok = unshare(CLONE_NEWNET) == 0 ? 1 : 0;
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(0);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char ok = 0;
  if (read(ready[0], &ok, 1) != 1 || !ok) return -1;
  close(ready[0]);
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/ns/net", child);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  kill(child, SIGKILL);  // the descriptor keeps the namespace alive
  waitpid(child, nullptr, 0);
  return fd;
}

int RunOne(int workers, int children, bool warm, unsigned seed) {
  g_base.net = NsInode("net");
  g_base.uts = NsInode("uts");
  g_base.ipc = NsInode("ipc");
  if (g_base.net < 0 || g_base.uts < 0 || g_base.ipc < 0)
    testapp::CannotRunHere("cannot read /proc/thread-self/ns");
  g_base.main_tid = Tid();
  sched_getaffinity(0, sizeof g_base.affinity, &g_base.affinity);
  g_base.sentinel_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  g_base.second_netns = OpenSecondNetns();
  if (g_base.second_netns < 0) {
    std::fprintf(stderr, "cannot run here: no second network namespace (needs root)\n");
    return 3;
  }
  if (warm) {
    pthread_t t;
    pthread_create(&t, nullptr, WarmUp, nullptr);
    pthread_join(t, nullptr);
  }
  pthread_barrier_init(&g_barrier, nullptr, static_cast<unsigned>(workers));
  std::vector<Worker> ws(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) {
    ws[i].index = i;
    ws[i].kind = static_cast<int>((seed + static_cast<unsigned>(i)) % kKindCount);
    ws[i].children = children;
    ws[i].next = &ws[(i + 1) % workers];
  }
  std::vector<pthread_t> ts(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) pthread_create(&ts[i], nullptr, WorkerMain, &ws[i]);
  for (int i = 0; i < workers; ++i) pthread_join(ts[i], nullptr);
  std::printf("{\"runs\": 1, \"workers\": %d, \"children\": %d, \"wrong\": %d, "
              "\"wrong_by_kind\": {",
              workers, workers * children, g_wrong.load());
  bool first = true;
  for (int k = 0; k < kKindCount; ++k) {
    if (g_wrong_by_kind[k] == 0) continue;
    std::printf("%s\"%s\": %d", first ? "" : ", ", kKinds[k], g_wrong_by_kind[k]);
    first = false;
  }
  std::printf("}, \"first\": \"%s\"}\n", g_first_said.load() ? g_first : "");
  return g_wrong.load() == 0 ? 0 : 1;
}

// Spawns this program once per run and sums what they print.
int RunMany(int runs, int workers, int children, bool warm, unsigned seed) {
  long wrong = 0, wrong_runs = 0;
  std::map<std::string, long> by_kind;
  std::string first;
  for (int r = 0; r < runs; ++r) {
    std::string k = std::to_string(workers), n = std::to_string(children),
                s = std::to_string(seed + static_cast<unsigned>(r) * 7);
    std::vector<const char*> argv = {"/proc/self/exe", "--workers", k.c_str(), "--children",
                                     n.c_str(), "--seed", s.c_str()};
    if (warm) argv.push_back("--warm");
    argv.push_back(nullptr);
    int out[2];
    if (pipe(out) != 0) return 2;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, const_cast<char**>(argv.data()),
                    environ) != 0) {
      std::perror("posix_spawn");
      return 2;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    std::string text;
    char buf[4096];
    ssize_t got;
    while ((got = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(got));
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1)) {
      std::fprintf(stderr, "run %d: exit status 0x%x\n%s", r, status, text.c_str());
      return WIFEXITED(status) && WEXITSTATUS(status) == 3 ? 3 : 2;
    }
    // {"runs": 1, ..., "wrong": W, "wrong_by_kind": {"k": n, ...}, "first": "..."}
    size_t at = text.find("\"wrong\": ");
    long w = at == std::string::npos ? 0 : std::strtol(text.c_str() + at + 9, nullptr, 10);
    wrong += w;
    if (w > 0) {
      ++wrong_runs;
      size_t kb = text.find("\"wrong_by_kind\": {");
      size_t ke = text.find('}', kb);
      for (size_t p = kb + 18; p < ke;) {
        size_t q1 = text.find('"', p), q2 = text.find('"', q1 + 1);
        if (q1 == std::string::npos || q1 >= ke) break;
        std::string kind = text.substr(q1 + 1, q2 - q1 - 1);
        by_kind[kind] += std::strtol(text.c_str() + q2 + 2, nullptr, 10);
        p = text.find(',', q2);
        if (p == std::string::npos || p > ke) break;
      }
      if (first.empty()) {
        size_t f = text.find("\"first\": \"");
        first = text.substr(f + 10, text.rfind('"') - f - 10);
      }
    }
  }
  std::printf("{\"runs\": %d, \"workers\": %d, \"children\": %d, \"wrong\": %ld, "
              "\"wrong_runs\": %ld, \"wrong_by_kind\": {",
              runs, workers, runs * workers * children, wrong, wrong_runs);
  bool comma = false;
  for (auto& [kind, n] : by_kind) {
    std::printf("%s\"%s\": %ld", comma ? ", " : "", kind.c_str(), n);
    comma = true;
  }
  std::printf("}, \"first\": \"%s\"}\n", first.c_str());
  return wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 2, children = 20, runs = 0;
  bool warm = false;
  unsigned seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::strtol(argv[++i], nullptr, 10);
    };
    if (a == "--workers") workers = static_cast<int>(value());
    else if (a == "--children") children = static_cast<int>(value());
    else if (a == "--runs") runs = static_cast<int>(value());
    else if (a == "--seed") seed = static_cast<unsigned>(value());
    else if (a == "--warm") warm = true;
    else {
      std::fprintf(stderr, "usage: first_change [--workers K] [--children N] [--runs R] "
                           "[--warm] [--seed S]\n");
      return 2;
    }
  }
  if (workers < 1 || children < 1) return 2;
  if (runs > 0) return RunMany(runs, workers, children, warm, seed);
  return RunOne(workers, children, warm, seed);
}
