// SPDX-License-Identifier: Apache-2.0
// probe: the behavioural test program for pristine.
//
// The main thread records the process's "baseline" per-thread kernel state, starts a worker thread
// with a plain pthread_create (before any taint), the worker taints itself as asked, records its
// own state ("caller") and creates child threads through the chosen API; each child records its
// state. One JSON object is printed on stdout. See usage() for the options and the keys.
//
// Exit codes: 0 the JSON was printed (also when a child creation failed: see "create_error"),
//             2 bad usage (message on stderr),
//             3 this machine cannot apply a requested taint / set-up (message on stderr).
//
// All state is read from the kernel by the thread it describes. Nothing here depends on timing:
// threads hand over through semaphores, joins and a barrier only.

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <threads.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "thread_state.h"
#include "json_out.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// Small utilities

using testapp::ErrName;
using testapp::Gettid;

[[noreturn]] void Usage(const std::string& msg);
[[noreturn]] void Unsupported(const std::string& msg);

// ---------------------------------------------------------------------------------------------
// Namespaces

struct NsKind {
  const char* taint;  // the --taint name
  const char* link;   // the /proc/thread-self/ns/ link the taint changes
  int flag;           // CLONE_NEW*
};

const NsKind kNsKinds[] = {
    {"net", "net", CLONE_NEWNET},
    {"uts", "uts", CLONE_NEWUTS},
    {"ipc", "ipc", CLONE_NEWIPC},
    {"mnt", "mnt", CLONE_NEWNS},
    {"cgroup", "cgroup", CLONE_NEWCGROUP},
    {"pid", "pid_for_children", CLONE_NEWPID},
    {"time", "time_for_children", CLONE_NEWTIME},
};

const NsKind* FindNs(const std::string& taint) {
  for (const auto& k : kNsKinds)
    if (taint == k.taint) return &k;
  return nullptr;
}

constexpr int kNumNsLinks = 8;
const char* const kNsLinks[kNumNsLinks] = {"net",    "uts",
                                           "ipc",    "mnt",
                                           "cgroup", "pid_for_children",
                                           "time_for_children", "user"};

// ---------------------------------------------------------------------------------------------
// Per-thread state

struct AttrInfo {
  bool valid = false;
  unsigned long long stacksize = 0;
  unsigned long long guardsize = 0;
  bool detached = false;
  unsigned long long stackaddr = 0;  // lowest address of the stack (pthread_attr_getstack)
};

struct State {
  long long ns[kNumNsLinks];  // inode numbers, -1 when unreadable
  bool cwd_ok = false;
  std::string cwd;
  int umask_value = -1;
  int fs_shared = -1;     // 1 shared with the main thread, 0 not, -1 unknown
  int files_shared = -1;  // same for the fd table
  std::vector<int> affinity;
  std::vector<int> sigmask;
  int sched_policy = -1;
  int sched_priority = -1;
  int nice = 0;
  bool nice_ok = false;
  std::string name;
  bool caps_ok = false;
  unsigned long long cap_eff = 0, cap_prm = 0, cap_inh = 0;
  int nnp = -1;
  int seccomp = -1;
  bool ids_ok = false;
  unsigned uid[3] = {0, 0, 0};
  unsigned gid[3] = {0, 0, 0};
  pid_t tid = 0;
  AttrInfo attr;  // only filled for children
};

int ReadUmask() {
  // /proc/thread-self/status has the umask since Linux 4.7; reading it there is race free (the
  // umask(2) round trip would race with other threads sharing the fs_struct).
  std::ifstream in("/proc/thread-self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Umask:", 0) == 0) return static_cast<int>(std::strtol(line.c_str() + 6, nullptr, 8));
  }
  mode_t old = umask(0);
  umask(old);
  return static_cast<int>(old);
}

int KcmpWithMain(int type) {
  long r = syscall(SYS_kcmp, static_cast<long>(getpid()), static_cast<long>(Gettid()), type, 0L, 0L);
  if (r < 0) return -1;
  return r == 0 ? 1 : 0;
}

State Capture(bool with_attr) {
  State s;
  s.tid = Gettid();
  for (int i = 0; i < kNumNsLinks; ++i) s.ns[i] = testapp::NsInode(kNsLinks[i]);
  char buf[4096];
  if (getcwd(buf, sizeof buf) != nullptr) {
    s.cwd_ok = true;
    s.cwd = buf;
  }
  s.umask_value = ReadUmask();
  s.fs_shared = KcmpWithMain(KCMP_FS);
  s.files_shared = KcmpWithMain(KCMP_FILES);

  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &cpus)) s.affinity.push_back(c);
  }

  sigset_t mask;
  sigemptyset(&mask);
  if (pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0) {
    for (int sig = 1; sig <= 64; ++sig)
      if (sigismember(&mask, sig) == 1) s.sigmask.push_back(sig);
  }

  s.sched_policy = sched_getscheduler(0);
  struct sched_param sp;
  if (sched_getparam(0, &sp) == 0) s.sched_priority = sp.sched_priority;
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(s.tid));
  if (!(nice == -1 && errno != 0)) {
    s.nice = nice;
    s.nice_ok = true;
  }

  char name[17] = {0};
  if (prctl(PR_GET_NAME, name, 0, 0, 0) == 0) s.name = name;

  struct __user_cap_header_struct hdr;
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  struct __user_cap_data_struct data[2];
  std::memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) == 0) {
    s.caps_ok = true;
    s.cap_eff = data[0].effective | (static_cast<unsigned long long>(data[1].effective) << 32);
    s.cap_prm = data[0].permitted | (static_cast<unsigned long long>(data[1].permitted) << 32);
    s.cap_inh = data[0].inheritable | (static_cast<unsigned long long>(data[1].inheritable) << 32);
  }
  s.nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  s.seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);

  uid_t r, e, sv;
  gid_t gr, ge, gs;
  if (syscall(SYS_getresuid, &r, &e, &sv) == 0 && syscall(SYS_getresgid, &gr, &ge, &gs) == 0) {
    s.ids_ok = true;
    s.uid[0] = r; s.uid[1] = e; s.uid[2] = sv;
    s.gid[0] = gr; s.gid[1] = ge; s.gid[2] = gs;
  }

  if (with_attr) {
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
      void* addr = nullptr;
      size_t size = 0, guard = 0;
      int ds = 0;
      if (pthread_attr_getstack(&a, &addr, &size) == 0 && pthread_attr_getguardsize(&a, &guard) == 0 &&
          pthread_attr_getdetachstate(&a, &ds) == 0) {
        s.attr.valid = true;
        s.attr.stacksize = size;
        s.attr.guardsize = guard;
        s.attr.detached = ds == PTHREAD_CREATE_DETACHED;
        s.attr.stackaddr = reinterpret_cast<uintptr_t>(addr);
      }
      pthread_attr_destroy(&a);
    }
  }
  return s;
}

void IntList(JsonWriter& w, const std::vector<int>& v) {
  w.begin_array();
  for (int x : v) w.value(x);
  w.end_array();
}

std::string Hex64(unsigned long long v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", v);
  return buf;
}

// Serializes a state. core=true leaves out "tid" and "attr" (what differs between two threads
// that are otherwise in the same state); used to compare states.
void WriteState(JsonWriter& w, const State& s, bool core) {
  w.begin_object();
  w.key("ns");
  w.begin_object();
  for (int i = 0; i < kNumNsLinks; ++i) {
    w.key(kNsLinks[i]);
    if (s.ns[i] < 0) w.null(); else w.value(s.ns[i]);
  }
  w.end_object();
  w.key("cwd");
  if (s.cwd_ok) w.value(s.cwd); else w.null();
  w.key("umask");
  w.value(s.umask_value);
  w.key("fs_shared_with_main");
  if (s.fs_shared < 0) w.null(); else w.value(s.fs_shared == 1);
  w.key("files_shared_with_main");
  if (s.files_shared < 0) w.null(); else w.value(s.files_shared == 1);
  w.key("affinity");
  IntList(w, s.affinity);
  w.key("sigmask");
  IntList(w, s.sigmask);
  w.key("sched_policy");
  w.value(s.sched_policy);
  w.key("sched_priority");
  w.value(s.sched_priority);
  w.key("nice");
  if (s.nice_ok) w.value(s.nice); else w.null();
  w.key("name");
  w.value(s.name);
  w.key("caps");
  if (s.caps_ok) {
    w.begin_object();
    w.key("eff"); w.value(Hex64(s.cap_eff));
    w.key("prm"); w.value(Hex64(s.cap_prm));
    w.key("inh"); w.value(Hex64(s.cap_inh));
    w.end_object();
  } else {
    w.null();
  }
  w.key("nnp");
  w.value(s.nnp);
  w.key("seccomp");
  w.value(s.seccomp);
  w.key("uid");
  if (s.ids_ok) { w.begin_array(); for (unsigned x : s.uid) w.value(x); w.end_array(); } else { w.null(); }
  w.key("gid");
  if (s.ids_ok) { w.begin_array(); for (unsigned x : s.gid) w.value(x); w.end_array(); } else { w.null(); }
  if (!core) {
    w.key("tid");
    w.value(static_cast<long long>(s.tid));
    if (s.attr.valid) {
      w.key("attr");
      w.begin_object();
      w.key("stacksize"); w.value(s.attr.stacksize);
      w.key("guardsize"); w.value(s.attr.guardsize);
      w.key("detached"); w.value(s.attr.detached);
      w.key("stackaddr"); w.value(s.attr.stackaddr);
      w.end_object();
    }
  }
  w.end_object();
}

std::string CoreJson(const State& s) {
  JsonWriter w;
  WriteState(w, s, true);
  return w.str();
}

// ---------------------------------------------------------------------------------------------
// Options

enum class Via { kUnshare, kSetns, kSyscall };

const char* ViaName(Via v) {
  switch (v) {
    case Via::kUnshare: return "unshare";
    case Via::kSetns: return "setns";
    case Via::kSyscall: return "syscall";
  }
  return "?";
}

struct Taint {
  std::string kind;
  Via via = Via::kUnshare;
  int setns_fd = -1;  // prepared by the main thread for via=setns
};

struct Options {
  std::string api = "pthread";
  std::vector<Taint> taints;       // applied by each worker
  std::vector<Taint> main_taints;  // applied by the main thread before starting the worker(s)
  int child_creates = 1;
  int concurrent = 0;  // 0: one worker (classic mode)

  bool attr_any = false;
  long long attr_stacksize = -1;
  long long attr_guardsize = -1;
  bool attr_detached = false;
  bool attr_stack = false;
  int attr_cpu = -1;
  int attr_sig = -1;
  bool attr_sched = false;
  int attr_sched_policy = SCHED_OTHER;
  int attr_sched_prio = 0;
  bool attr_invalid = false;

  bool exhaust = false;
  std::string exhaust_method = "cgroup";
  std::string cgroup;  // --cgroup: the empty pids cgroup the process joins for the cgroup method

  bool exit_normally = false;  // --exit-normally
  bool pre_create = false;  // each worker creates one child before tainting itself
};

Options g_opt;

const char* const kTaintNames[] = {"net",  "uts",      "ipc",             "mnt",     "cgroup", "pid",
                                   "time", "fs",       "files",           "affinity", "affinity-remote",
                                   "sigmask", "nice",  "name",            "caps",    "nnp",    "seccomp",
                                   "creds"};

bool IsTaintName(const std::string& s) {
  for (const char* n : kTaintNames)
    if (s == n) return true;
  return false;
}

void PrintUsage(FILE* f) {
  std::fprintf(f,
      "usage: probe [OPTIONS]\n"
      "  --api pthread|std_thread|std_async|thrd   how the worker creates its child (default pthread)\n"
      "  --via unshare|setns|syscall               how following namespace taints are applied\n"
      "  --taint T                                  taint the worker (repeatable, applied in order):\n"
      "        net uts ipc mnt cgroup pid time      namespaces (pid/time: *_for_children)\n"
      "        fs (unshare CLONE_FS + chdir /tmp + umask 077)   files (unshare CLONE_FILES)\n"
      "        affinity (pin to the last allowed CPU)   affinity-remote (main pins the worker)\n"
      "        sigmask (block SIGUSR1+SIGUSR2)   nice (7)   name (\"tainted-worker\")\n"
      "        caps (drop CAP_NET_ADMIN eff+prm)   nnp   seccomp (nnp + allow-all filter)\n"
      "        creds (raw per-thread setgroups/setresgid/setresuid to 65534)\n"
      "  --main-taint T                             same, applied by the main thread first\n"
      "  --child-creates N                          each worker creates N children in sequence\n"
      "  --concurrent K                             K workers taint and create at the same time\n"
      "  --attr-stacksize B --attr-guardsize B --attr-detached --attr-stack (1 MiB)\n"
      "  --attr-affinity CPU --attr-sigmask SIG --attr-sched fifo|rr|other|batch|idle:PRIO\n"
      "  --attr-invalid                             explicit SCHED_FIFO with priority 0\n"
      "                                             (attribute options: --api pthread only)\n"
      "  --pre-create                               each worker also creates one child before\n"
      "                                             tainting itself (\"pre_child\")\n"
      "  --exhaust-threads                          make the child creation hit the task limit\n"
      "  --exit-normally                            leave with exit(0) (runs atexit handlers, e.g. the\n"
      "                                             shim's report) instead of _exit(0)\n"
      "  --exhaust-method cgroup|nproc              cgroup: pids.max = pids.current (default);\n"
      "                                             nproc: RLIMIT_NPROC 0 + worker creds 65534\n"
      "  --cgroup DIR                               the empty pids cgroup the process joins for\n"
      "                                             --exhaust-method cgroup (the tests make it)\n");
}

[[noreturn]] void Usage(const std::string& msg) {
  std::fprintf(stderr, "probe: %s (see probe --help)\n", msg.c_str());
  std::exit(2);
}

long long ParseInt(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  long long r = std::strtoll(v.c_str(), &end, 0);
  if (v.empty() || *end != '\0' || errno != 0) Usage("bad number for " + opt + ": '" + v + "'");
  return r;
}

int ParsePolicy(const std::string& s) {
  if (s == "fifo") return SCHED_FIFO;
  if (s == "rr") return SCHED_RR;
  if (s == "other") return SCHED_OTHER;
  if (s == "batch") return SCHED_BATCH;
  if (s == "idle") return SCHED_IDLE;
  Usage("bad scheduling policy '" + s + "'");
}

void ParseArgs(int argc, char** argv) {
  Options& o = g_opt;
  Via via = Via::kUnshare;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage("missing value for " + a);
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      PrintUsage(stdout);
      std::exit(0);
    } else if (a == "--api") {
      o.api = next();
      if (o.api != "pthread" && o.api != "std_thread" && o.api != "std_async" && o.api != "thrd")
        Usage("bad --api '" + o.api + "'");
    } else if (a == "--via") {
      std::string v = next();
      if (v == "unshare") via = Via::kUnshare;
      else if (v == "setns") via = Via::kSetns;
      else if (v == "syscall") via = Via::kSyscall;
      else Usage("bad --via '" + v + "'");
    } else if (a == "--taint" || a == "--main-taint") {
      Taint t;
      t.kind = next();
      if (!IsTaintName(t.kind)) Usage("unknown taint '" + t.kind + "'");
      t.via = via;
      if (a == "--main-taint") {
        if (t.kind == "affinity-remote") Usage("affinity-remote cannot be a --main-taint");
        o.main_taints.push_back(t);
      } else {
        o.taints.push_back(t);
      }
    } else if (a == "--child-creates") {
      long long n = ParseInt(a, next());
      if (n < 1 || n > 100000) Usage("--child-creates must be in 1..100000");
      o.child_creates = static_cast<int>(n);
    } else if (a == "--concurrent") {
      long long n = ParseInt(a, next());
      if (n < 1 || n > 1024) Usage("--concurrent must be in 1..1024");
      o.concurrent = static_cast<int>(n);
    } else if (a == "--attr-stacksize") {
      o.attr_any = true;
      o.attr_stacksize = ParseInt(a, next());
    } else if (a == "--attr-guardsize") {
      o.attr_any = true;
      o.attr_guardsize = ParseInt(a, next());
    } else if (a == "--attr-detached") {
      o.attr_any = true;
      o.attr_detached = true;
    } else if (a == "--attr-stack") {
      o.attr_any = true;
      o.attr_stack = true;
    } else if (a == "--attr-affinity") {
      o.attr_any = true;
      o.attr_cpu = static_cast<int>(ParseInt(a, next()));
      if (o.attr_cpu < 0 || o.attr_cpu >= CPU_SETSIZE) Usage("bad --attr-affinity CPU");
    } else if (a == "--attr-sigmask") {
      o.attr_any = true;
      o.attr_sig = static_cast<int>(ParseInt(a, next()));
      if (o.attr_sig < 1 || o.attr_sig > 64) Usage("bad --attr-sigmask signal");
    } else if (a == "--attr-sched") {
      o.attr_any = true;
      std::string v = next();
      auto colon = v.find(':');
      if (colon == std::string::npos) Usage("--attr-sched wants POLICY:PRIO");
      o.attr_sched = true;
      o.attr_sched_policy = ParsePolicy(v.substr(0, colon));
      o.attr_sched_prio = static_cast<int>(ParseInt(a, v.substr(colon + 1)));
    } else if (a == "--attr-invalid") {
      o.attr_any = true;
      o.attr_invalid = true;
    } else if (a == "--exit-normally") {
      o.exit_normally = true;
    } else if (a == "--pre-create") {
      o.pre_create = true;
    } else if (a == "--exhaust-threads") {
      o.exhaust = true;
    } else if (a == "--exhaust-method") {
      o.exhaust_method = next();
      if (o.exhaust_method != "cgroup" && o.exhaust_method != "nproc")
        Usage("bad --exhaust-method '" + o.exhaust_method + "'");
    } else if (a == "--cgroup") {
      o.cgroup = next();
    } else {
      Usage("unknown option '" + a + "'");
    }
  }
  if (o.attr_any && o.api != "pthread") Usage("--attr-* options need --api pthread");
  if (o.exhaust && o.concurrent > 0) Usage("--exhaust-threads and --concurrent do not mix");
  if (o.exhaust && o.exhaust_method == "cgroup" && o.cgroup.empty())
    Usage("--exhaust-method cgroup needs --cgroup DIR");
}

// ---------------------------------------------------------------------------------------------
// Task-limit exhaustion (--exhaust-threads)

struct Exhaust {
  bool active = false;     // the process is in the pids cgroup given with --cgroup
  long long pids_max = -1;
} g_exhaust;

// Lifts the limit again; the test that made the cgroup removes it once the process has exited.
void ExhaustCleanup() {
  if (!g_exhaust.active) return;
  g_exhaust.active = false;
  testapp::WriteFile(g_opt.cgroup + "/pids.max", "max");
}

// Main thread, before any worker: move the whole process into the (empty, test-made) pids cgroup.
void ExhaustSetupCgroup() {
  if (!testapp::WriteFile(g_opt.cgroup + "/cgroup.procs", std::to_string(getpid())))
    Unsupported("--exhaust-threads: cannot join " + g_opt.cgroup + ": " + std::strerror(errno));
  g_exhaust.active = true;
}

// Worker, right before the creation: no new task may be created any more.
void ExhaustArm() {
  if (g_opt.exhaust_method == "cgroup") {
    std::string cur = testapp::ReadFirstLine(g_opt.cgroup + "/pids.current");
    g_exhaust.pids_max = std::strtoll(cur.c_str(), nullptr, 10);
    if (g_exhaust.pids_max <= 0 || !testapp::WriteFile(g_opt.cgroup + "/pids.max", cur))
      Unsupported("--exhaust-threads: cannot set pids.max");
  } else {
    // RLIMIT_NPROC is ignored for real uid 0 (and with CAP_SYS_ADMIN/CAP_SYS_RESOURCE): lower
    // this thread's credentials with raw syscalls (per thread, unlike the glibc wrappers).
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_NPROC, &rl) != 0) Unsupported("--exhaust-threads: setrlimit RLIMIT_NPROC");
    g_exhaust.pids_max = 0;
    if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, 65534, 65534, 65534) != 0 ||
        syscall(SYS_setresuid, 65534, 65534, 65534) != 0)
      Unsupported(std::string("--exhaust-threads: cannot lower the worker's ids: ") + std::strerror(errno));
  }
}

void ExhaustDisarm() {
  if (g_opt.exhaust_method == "cgroup") testapp::WriteFile(g_opt.cgroup + "/pids.max", "max");
}

// The shared "cannot run here" exit, once the task limit is lifted again.
[[noreturn]] void Unsupported(const std::string& msg) {
  ExhaustCleanup();
  testapp::CannotRunHere("probe: " + msg);
}

// ---------------------------------------------------------------------------------------------
// Taints

// Starts a helper thread that unshares namespace kind `ns` and opens its link; returns the fd.
struct NsHelperArg {
  const NsKind* ns;
  int fd;
  int err;
};

void* NsHelper(void* p) {
  auto* a = static_cast<NsHelperArg*>(p);
  a->fd = -1;
  if (unshare(a->ns->flag) != 0) {
    a->err = errno;
    return nullptr;
  }
  if (a->ns->flag == CLONE_NEWPID) {
    // pid_for_children cannot be opened before the namespace has its init process: fork one
    // that exits at once (the namespace lives on through the fd).
    pid_t child = fork();
    if (child == 0) _exit(0);
    if (child < 0) {
      a->err = errno;
      return nullptr;
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  std::string path = std::string("/proc/thread-self/ns/") + a->ns->link;
  a->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  a->err = a->fd < 0 ? errno : 0;
  return nullptr;
}

void PrepareSetns(std::vector<Taint>& taints) {
  for (auto& t : taints) {
    if (t.via != Via::kSetns) continue;
    const NsKind* ns = FindNs(t.kind);
    if (ns == nullptr) continue;  // --via only matters for namespace taints
    NsHelperArg arg{ns, -1, 0};
    pthread_t th;
    int r = pthread_create(&th, nullptr, NsHelper, &arg);
    if (r != 0) Unsupported("setns helper thread: " + ErrName(r));
    pthread_join(th, nullptr);
    if (arg.fd < 0) Unsupported(std::string("setns helper: unshare/open ") + ns->taint + ": " + ErrName(arg.err));
    t.setns_fd = arg.fd;
  }
}

int LastAllowedCpu(pid_t tid, int* count) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(tid, sizeof cpus, &cpus) != 0) Unsupported("sched_getaffinity failed");
  *count = CPU_COUNT(&cpus);
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &cpus)) last = c;
  return last;
}

void PinTo(pid_t tid, int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (sched_setaffinity(tid, sizeof one, &one) != 0)
    Unsupported(std::string("sched_setaffinity: ") + std::strerror(errno));
}

struct Handshake {
  sem_t ready;
  sem_t go;
  pid_t tid = 0;
};

// Applies one taint to the calling thread. `hs` is the affinity-remote handshake (workers only).
void ApplyTaint(const Taint& t, Handshake* hs) {
  auto fail = [&](const char* what) {
    Unsupported("taint " + t.kind + " (" + ViaName(t.via) + "): " + what + ": " + ErrName(errno));
  };
  if (const NsKind* ns = FindNs(t.kind)) {
    switch (t.via) {
      case Via::kUnshare:
        if (unshare(ns->flag) != 0) fail("unshare");
        break;
      case Via::kSyscall:
        if (syscall(SYS_unshare, ns->flag) != 0) fail("syscall(SYS_unshare)");
        break;
      case Via::kSetns:
        // Entering a mount namespace needs a private fs_struct.
        if (ns->flag == CLONE_NEWNS && unshare(CLONE_FS) != 0) fail("unshare(CLONE_FS) before setns");
        if (setns(t.setns_fd, ns->flag) != 0) fail("setns");
        break;
    }
  } else if (t.kind == "fs") {
    if (unshare(CLONE_FS) != 0) fail("unshare(CLONE_FS)");
    if (chdir("/tmp") != 0) fail("chdir(/tmp)");
    umask(077);
  } else if (t.kind == "files") {
    if (unshare(CLONE_FILES) != 0) fail("unshare(CLONE_FILES)");
  } else if (t.kind == "affinity") {
    int count = 0;
    int last = LastAllowedCpu(0, &count);
    if (count < 2) Unsupported("taint affinity needs at least 2 allowed CPUs");
    PinTo(0, last);
  } else if (t.kind == "affinity-remote") {
    if (hs == nullptr) Unsupported("affinity-remote without a handshake");
    int count = 0;
    LastAllowedCpu(0, &count);
    if (count < 2) Unsupported("taint affinity-remote needs at least 2 allowed CPUs");
    hs->tid = Gettid();
    sem_post(&hs->ready);
    while (sem_wait(&hs->go) != 0) {
    }
  } else if (t.kind == "sigmask") {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    int r = pthread_sigmask(SIG_BLOCK, &set, nullptr);
    if (r != 0) { errno = r; fail("pthread_sigmask"); }
  } else if (t.kind == "nice") {
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(Gettid()), 7) != 0) fail("setpriority");
  } else if (t.kind == "name") {
    int r = pthread_setname_np(pthread_self(), "tainted-worker");
    if (r != 0) { errno = r; fail("pthread_setname_np"); }
  } else if (t.kind == "caps") {
    struct __user_cap_header_struct hdr;
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    struct __user_cap_data_struct data[2];
    std::memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0) fail("capget");
    data[0].effective &= ~(1u << CAP_NET_ADMIN);
    data[0].permitted &= ~(1u << CAP_NET_ADMIN);
    if (syscall(SYS_capset, &hdr, data) != 0) fail("capset");
  } else if (t.kind == "nnp") {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
  } else if (t.kind == "seccomp") {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
    struct sock_filter filter[] = {
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog;
    prog.len = static_cast<unsigned short>(sizeof filter / sizeof filter[0]);
    prog.filter = filter;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) fail("PR_SET_SECCOMP");
  } else if (t.kind == "creds") {
    if (syscall(SYS_setgroups, 0, nullptr) != 0) fail("setgroups");
    if (syscall(SYS_setresgid, 65534, 65534, 65534) != 0) fail("setresgid");
    if (syscall(SYS_setresuid, 65534, 65534, 65534) != 0) fail("setresuid");
  } else {
    Unsupported("unknown taint " + t.kind);
  }
}

// ---------------------------------------------------------------------------------------------
// Children

struct ChildCtx {
  State st;
  bool captured = false;
  bool detached = false;
  sem_t done;
  void* stack = nullptr;  // caller-supplied stack, if any
  size_t stack_size = 0;
};

void ChildBody(ChildCtx* c) {
  c->st = Capture(true);
  c->captured = true;
  if (c->detached) sem_post(&c->done);
}

void* ChildPthread(void* p) {
  ChildBody(static_cast<ChildCtx*>(p));
  return nullptr;
}

int ChildThrd(void* p) {
  ChildBody(static_cast<ChildCtx*>(p));
  return 0;
}

const char* ThrdName(int r) {
  switch (r) {
    case thrd_nomem: return "thrd_nomem";
    case thrd_busy: return "thrd_busy";
    case thrd_timedout: return "thrd_timedout";
    default: return "thrd_error";
  }
}

void AttrCheck(int r, const char* what) {
  if (r != 0) Usage(std::string(what) + " rejected the value: " + ErrName(r));
}

// Creates one child as configured; returns "" on success, else the error name.
std::string CreateChild(ChildCtx* c) {
  const Options& o = g_opt;
  if (o.api == "pthread") {
    pthread_attr_t attr;
    pthread_attr_t* ap = nullptr;
    if (o.attr_any) {
      ap = &attr;
      pthread_attr_init(&attr);
      if (o.attr_stacksize >= 0)
        AttrCheck(pthread_attr_setstacksize(&attr, static_cast<size_t>(o.attr_stacksize)), "pthread_attr_setstacksize");
      if (o.attr_guardsize >= 0)
        AttrCheck(pthread_attr_setguardsize(&attr, static_cast<size_t>(o.attr_guardsize)), "pthread_attr_setguardsize");
      if (o.attr_stack) {
        c->stack_size = 1 << 20;
        c->stack = mmap(nullptr, c->stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (c->stack == MAP_FAILED) Unsupported("mmap for --attr-stack");
        AttrCheck(pthread_attr_setstack(&attr, c->stack, c->stack_size), "pthread_attr_setstack");
      }
      if (o.attr_detached) {
        c->detached = true;
        AttrCheck(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), "pthread_attr_setdetachstate");
      }
      if (o.attr_cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(o.attr_cpu, &one);
        AttrCheck(pthread_attr_setaffinity_np(&attr, sizeof one, &one), "pthread_attr_setaffinity_np");
      }
      if (o.attr_sig > 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, o.attr_sig);
        AttrCheck(pthread_attr_setsigmask_np(&attr, &set), "pthread_attr_setsigmask_np");
      }
      if (o.attr_sched) {
        AttrCheck(pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED), "pthread_attr_setinheritsched");
        AttrCheck(pthread_attr_setschedpolicy(&attr, o.attr_sched_policy), "pthread_attr_setschedpolicy");
        struct sched_param sp;
        sp.sched_priority = o.attr_sched_prio;
        AttrCheck(pthread_attr_setschedparam(&attr, &sp), "pthread_attr_setschedparam");
      }
      if (o.attr_invalid) {
        // The setters validate the priority against the policy *current at set time*: set
        // priority 0 under SCHED_OTHER, then switch the policy to SCHED_FIFO. The kernel rejects
        // SCHED_FIFO with priority 0 when the thread is created (EINVAL).
        AttrCheck(pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED), "pthread_attr_setinheritsched");
        struct sched_param sp;
        sp.sched_priority = 0;
        AttrCheck(pthread_attr_setschedpolicy(&attr, SCHED_OTHER), "pthread_attr_setschedpolicy");
        AttrCheck(pthread_attr_setschedparam(&attr, &sp), "pthread_attr_setschedparam");
        AttrCheck(pthread_attr_setschedpolicy(&attr, SCHED_FIFO), "pthread_attr_setschedpolicy");
      }
    }
    if (c->detached) sem_init(&c->done, 0, 0);
    pthread_t th;
    int r = pthread_create(&th, ap, ChildPthread, c);
    if (ap != nullptr) pthread_attr_destroy(ap);
    if (r != 0) return ErrName(r);
    if (c->detached) {
      while (sem_wait(&c->done) != 0) {
      }
    } else {
      pthread_join(th, nullptr);
      // The thread is gone: its caller-supplied stack can go too (the address stays reported).
      if (c->stack != nullptr) munmap(c->stack, c->stack_size);
    }
    return "";
  }
  if (o.api == "std_thread") {
    try {
      std::thread t(ChildBody, c);
      t.join();
    } catch (const std::system_error& e) {
      return ErrName(e.code().value());
    }
    return "";
  }
  if (o.api == "std_async") {
    try {
      auto f = std::async(std::launch::async, ChildBody, c);
      f.get();
    } catch (const std::system_error& e) {
      return ErrName(e.code().value());
    }
    return "";
  }
  // thrd
  thrd_t t;
  int r = thrd_create(&t, ChildThrd, c);
  if (r != thrd_success) return ThrdName(r);
  thrd_join(t, nullptr);
  return "";
}

// The function that creates each child from the (tainted) worker, kept out of line under a clear
// name so that call-site reports (PRISTINE_OPTIONS=report=...) can be checked to name it.
__attribute__((noinline)) std::string create_child_from_tainted_worker(ChildCtx* c) {
  std::string r = CreateChild(c);
  asm volatile("" ::: "memory");  // no tail call: this frame stays on the stack
  return r;
}

// ---------------------------------------------------------------------------------------------
// Workers

pthread_barrier_t g_barrier;

struct Worker {
  int index = 0;
  Handshake hs;
  bool needs_remote = false;
  State caller;
  std::unique_ptr<ChildCtx> pre;  // --pre-create
  std::string pre_error;
  std::vector<std::unique_ptr<ChildCtx>> children;
  std::vector<std::string> errors;  // per child, "" when created
};

void* WorkerMain(void* p) {
  auto* w = static_cast<Worker*>(p);
  if (g_opt.pre_create) {
    w->pre = std::make_unique<ChildCtx>();
    w->pre_error = CreateChild(w->pre.get());
  }
  for (const Taint& t : g_opt.taints) ApplyTaint(t, &w->hs);
  if (g_opt.exhaust) ExhaustArm();
  w->caller = Capture(false);
  if (g_opt.concurrent > 0) pthread_barrier_wait(&g_barrier);
  for (int i = 0; i < g_opt.child_creates; ++i) {
    auto c = std::make_unique<ChildCtx>();
    std::string err = create_child_from_tainted_worker(c.get());
    w->errors.push_back(err);
    w->children.push_back(std::move(c));
  }
  if (g_opt.exhaust) ExhaustDisarm();
  return nullptr;
}

int NsIndex(const char* link) {
  for (int i = 0; i < kNumNsLinks; ++i)
    if (std::strcmp(kNsLinks[i], link) == 0) return i;
  return -1;
}

int CollectPreloaded(struct dl_phdr_info* info, size_t, void* data) {
  auto* names = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "pristine") != nullptr)
    names->push_back(info->dlpi_name);
  return 0;
}

void TaintList(JsonWriter& jw, const std::vector<Taint>& ts) {
  jw.begin_array();
  for (const auto& t : ts) jw.value(FindNs(t.kind) ? t.kind + ":" + ViaName(t.via) : t.kind);
  jw.end_array();
}

}  // namespace

int main(int argc, char** argv) {
  ParseArgs(argc, argv);
  Options& o = g_opt;

  if (o.exhaust && o.exhaust_method == "cgroup") ExhaustSetupCgroup();
  PrepareSetns(o.main_taints);
  PrepareSetns(o.taints);

  State baseline = Capture(false);
  for (const Taint& t : o.main_taints) ApplyTaint(t, nullptr);
  State main_state = Capture(false);

  const int k = o.concurrent > 0 ? o.concurrent : 1;
  if (o.concurrent > 0) pthread_barrier_init(&g_barrier, nullptr, static_cast<unsigned>(k));
  bool remote = false;
  for (const Taint& t : o.taints)
    if (t.kind == "affinity-remote") remote = true;

  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<pthread_t> threads;
  std::string worker_error;
  for (int i = 0; i < k; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    sem_init(&w->hs.ready, 0, 0);
    sem_init(&w->hs.go, 0, 0);
    pthread_t th;
    int r = pthread_create(&th, nullptr, WorkerMain, w.get());
    if (r != 0) {
      worker_error = ErrName(r);
      break;
    }
    threads.push_back(th);
    workers.push_back(std::move(w));
  }
  if (!worker_error.empty() && o.concurrent > 0 && !threads.empty()) {
    // The barrier would never open: nothing sensible to report.
    Unsupported("could not start all workers: " + worker_error);
  }
  if (remote) {
    for (auto& w : workers) {
      for (const Taint& t : o.taints) {
        if (t.kind != "affinity-remote") continue;
        while (sem_wait(&w->hs.ready) != 0) {
        }
        int count = 0;
        int last = LastAllowedCpu(w->hs.tid, &count);
        PinTo(w->hs.tid, last);
        sem_post(&w->hs.go);
      }
    }
  }
  for (pthread_t th : threads) pthread_join(th, nullptr);
  ExhaustCleanup();

  // Aggregate.
  const int net = NsIndex("net");
  std::set<long long> caller_nets;
  long long total = 0, created = 0, ok = 0, baseline_net = 0, caller_net = 0, n_errors = 0;
  std::string first_error;
  for (auto& w : workers) {
    caller_nets.insert(w->caller.ns[net]);
    std::string first_core;
    bool have_first = false;
    for (size_t i = 0; i < w->children.size(); ++i) {
      ++total;
      const ChildCtx& c = *w->children[i];
      if (!w->errors[i].empty() || !c.captured) {
        ++n_errors;
        if (first_error.empty()) first_error = w->errors[i].empty() ? "not-run" : w->errors[i];
        continue;
      }
      ++created;
      std::string core = CoreJson(c.st);
      if (!have_first) {
        first_core = core;
        have_first = true;
      }
      if (core == first_core) ++ok;
      if (c.st.ns[net] == baseline.ns[net]) ++baseline_net;
      if (c.st.ns[net] == w->caller.ns[net]) ++caller_net;
    }
  }

  JsonWriter jw;
  jw.begin_object();
  jw.key("api");
  jw.value(o.api);
  jw.key("taints");
  TaintList(jw, o.taints);
  jw.key("main_taints");
  TaintList(jw, o.main_taints);
  jw.key("pid");
  jw.value(static_cast<long long>(getpid()));
  jw.key("preloaded");  // loaded objects whose path contains "pristine" (the shim, when preloaded)
  {
    std::vector<std::string> names;
    dl_iterate_phdr(CollectPreloaded, &names);
    jw.begin_array();
    for (const auto& n : names) jw.value(n);
    jw.end_array();
  }
  jw.key("baseline");
  WriteState(jw, baseline, false);
  jw.key("main");
  WriteState(jw, main_state, false);
  jw.key("worker_error");
  if (worker_error.empty()) jw.null(); else jw.value(worker_error);
  jw.key("caller");
  if (workers.empty()) jw.null(); else WriteState(jw, workers[0]->caller, false);

  const ChildCtx* last = nullptr;
  std::string last_error = worker_error;
  if (!workers.empty() && !workers[0]->children.empty()) {
    last = workers[0]->children.back().get();
    last_error = workers[0]->errors.back();
  }
  jw.key("child");
  if (last != nullptr && last_error.empty() && last->captured) WriteState(jw, last->st, false); else jw.null();
  if (o.pre_create) {
    const Worker* w0 = workers.empty() ? nullptr : workers[0].get();
    jw.key("pre_child");
    if (w0 != nullptr && w0->pre && w0->pre_error.empty() && w0->pre->captured)
      WriteState(jw, w0->pre->st, false);
    else
      jw.null();
    jw.key("pre_create_error");
    if (w0 == nullptr || w0->pre_error.empty()) jw.null(); else jw.value(w0->pre_error);
  }
  jw.key("create_error");
  if (first_error.empty()) jw.null(); else jw.value(first_error);
  jw.key("create_errors");
  jw.value(n_errors);
  jw.key("children_total");
  jw.value(total);
  jw.key("children_created");
  jw.value(created);
  jw.key("children_ok");  // children equal (but for tid/attr) to their worker's first child
  jw.value(ok);
  jw.key("children_baseline_net");
  jw.value(baseline_net);
  jw.key("children_caller_net");
  jw.value(caller_net);
  jw.key("workers");
  jw.value(static_cast<long long>(workers.size()));
  jw.key("callers_distinct_net");
  jw.value(static_cast<long long>(caller_nets.size()));
  jw.key("supplied_stack");
  if (last != nullptr && last->stack != nullptr) {
    jw.begin_object();
    jw.key("addr");
    jw.value(static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(last->stack)));
    jw.key("size");
    jw.value(static_cast<unsigned long long>(last->stack_size));
    jw.end_object();
  } else {
    jw.null();
  }
  jw.key("exhaust");
  if (o.exhaust) {
    jw.begin_object();
    jw.key("method");
    jw.value(o.exhaust_method);
    jw.key("limit");
    jw.value(g_exhaust.pids_max);
    jw.end_object();
  } else {
    jw.null();
  }
  jw.end_object();
  std::printf("%s\n", jw.str().c_str());
  std::fflush(stdout);
  if (o.exit_normally) std::exit(0);
  // Detached children may still be on their way out: leave without running destructors.
  _exit(0);
}
