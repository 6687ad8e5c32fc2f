// SPDX-License-Identifier: Apache-2.0
// faults: fault injection around thread creation, for pytests/test_thread_limits.py and
// test_interrupted_creates.py. Run with and without
// LD_PRELOAD=libpristine.so; the results must match (the caller sees what glibc gives), nothing may
// leak, nothing may hang.
//
//   faults CASE [--rounds N] [--cgroup DIR]
// CASE:
//   cgroup     in the empty pids cgroup DIR (made by the test), under an absolute limit set
//              before anything is created, a tainted
//              worker creates threads that stay alive until a create fails ("held": how many)
//   nproc      the process drops to uid 65534 (every thread) with RLIMIT_NPROC 1; a tainted
//              worker creates
//   rlimit-as  RLIMIT_AS just above the current size; a tainted worker creates with a 64 MiB
//              stack, which cannot be mapped
//   eintr      a tainted worker creates N threads while a SIGUSR1 storm (no SA_RESTART) hits it
//   cancel     N rounds: a tainted worker is cancelled (deferred) while it is in pthread_create;
//              the create completes, its thread is joinable, the worker dies at pthread_testcancel
//   exit       tainted workers create in a loop; another thread calls exit(7) after N microseconds
//
// Output: one JSON object on stdout (except for `exit`, whose exit status is the result). Keys:
//   rc (the first faulted create's result, an errno name; 20 attempts with explicit attributes,
//   attempts_differing of them gave another result), rc_default_attr (one with a null attr, which a
//   spare thread of the shim may serve), rc_after (a create after the fault is lifted),
//   tasks_before/tasks_after (the program's /proc/self/task entries: the shim's own threads,
//   named pristine-*, are not counted), maps_before/maps_after (/proc/self/maps lines), and
//   per-case counters.
// Exit: 0 done, 2 usage, 3 this machine cannot set the case up.
//
// Every worker taints itself by entering a second network namespace (setns), so that under the
// shim its creates are forwarded to the template thread.

#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "thread_state.h"

namespace {

using testapp::CannotRunHere;
using testapp::ErrName;

int g_alt_net_fd = -1;
long long g_base_net = -1;
std::string g_cgroup;  // --cgroup: the empty pids cgroup the cgroup case joins

// The program's threads: /proc/self/task entries, without the shim's own (the template and its
// spare threads, named "pristine-tmpl" until a spare is handed a start routine).
int CountTasks() { return testapp::CountProgramTasks(); }

int CountMaps() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

// Tasks of the process, once every thread that is exiting has gone (a joined thread can still
// be listed for a moment after pthread_join returns: the kernel reaps it asynchronously).
// expect <= 0: until the count stops falling for a few readings.
int SettledTasks(int expect) {
  int n = CountTasks();
  int stable = 0;
  for (int i = 0; i < 2000; ++i) {
    if (expect > 0 ? n <= expect : stable >= 5) break;
    usleep(1000);
    int m = CountTasks();
    stable = m == n ? stable + 1 : 0;
    n = m;
  }
  return n;
}

long long NetInode() { return testapp::NsInode("net"); }

void SetupAltNetns() {
  g_base_net = NetInode();
  if (g_base_net < 0) CannotRunHere("cannot read /proc/thread-self/ns/net");
  std::thread helper([] {
    if (unshare(CLONE_NEWNET) == 0) g_alt_net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  });
  helper.join();
  if (g_alt_net_fd < 0) CannotRunHere("no network namespaces (need CAP_SYS_ADMIN)");
}

void Taint() {
  if (setns(g_alt_net_fd, CLONE_NEWNET) != 0) {
    std::perror("faults: setns");
    std::exit(1);
  }
}

std::atomic<int> g_children_ran{0};
std::atomic<int> g_children_wrong{0};

void* Child(void*) {
  if (NetInode() != g_base_net) g_children_wrong.fetch_add(1);
  g_children_ran.fetch_add(1);
  return nullptr;
}

// A tainted worker thread that runs `body` (created directly by the main thread).
void RunTaintedWorker(const std::function<void()>& body) {
  std::thread t([&] {
    Taint();
    body();
  });
  t.join();
}

int CreateJoin(const pthread_attr_t* attr = nullptr) {
  pthread_t t;
  int rc = pthread_create(&t, attr, Child, nullptr);
  if (rc == 0) pthread_join(t, nullptr);
  return rc;
}

constexpr int kFaultedAttempts = 20;

// The faulted creates, under a limit: kFaultedAttempts with explicit (default-valued) attributes,
// which glibc fails; then one with a null attr, which under the shim a spare thread made earlier
// may serve (that slot is already counted against the limit). Records the results in `r`.
void FaultedCreates(struct Result* r, const pthread_attr_t* attr);

struct Result;
struct Result {
  std::vector<std::pair<std::string, std::string>> kv;
  void Add(const std::string& k, long v) { kv.emplace_back(k, std::to_string(v)); }
  void AddStr(const std::string& k, const std::string& v) { kv.emplace_back(k, "\"" + v + "\""); }
  void Print() {
    Add("children_ran", g_children_ran.load());
    Add("children_wrong", g_children_wrong.load());
    std::string s = "{";
    for (size_t i = 0; i < kv.size(); ++i) {
      s += (i ? ", \"" : "\"") + kv[i].first + "\": " + kv[i].second;
    }
    std::printf("%s}\n", s.c_str());
    std::fflush(stdout);
  }
};

void FaultedCreates(Result* r, const pthread_attr_t* attr) {
  pthread_attr_t plain;
  pthread_attr_init(&plain);
  if (attr == nullptr) attr = &plain;
  int first = CreateJoin(attr), other = 0;
  for (int i = 1; i < kFaultedAttempts; ++i) {
    if (CreateJoin(attr) != first) ++other;
  }
  int rc_default = CreateJoin(nullptr);
  pthread_attr_destroy(&plain);
  r->AddStr("rc", ErrName(first));
  r->Add("attempts", kFaultedAttempts);
  r->Add("attempts_differing", other);
  r->AddStr("rc_default_attr", ErrName(rc_default));
}

// ---------------------------------------------------------------------------------------------
// pids cgroup

// Threads a tainted worker can hold alive at once, until a create fails.
struct Held {
  std::atomic<bool> release{false};
  std::vector<pthread_t> threads;
};

void* HeldChild(void* p) {
  Held* h = static_cast<Held*>(p);
  if (NetInode() != g_base_net) g_children_wrong.fetch_add(1);
  g_children_ran.fetch_add(1);
  while (!h->release.load()) usleep(1000);
  return nullptr;
}

int CaseCgroup() {
  // The test makes the (empty) cgroup, and removes it once the process has exited.
  const std::string& dir = g_cgroup;
  if (dir.empty()) CannotRunHere("the cgroup case needs --cgroup DIR");
  if (!testapp::WriteFile(dir + "/cgroup.procs", std::to_string(getpid())))
    CannotRunHere("cannot join " + dir + ": " + ErrName(errno));
  // An absolute limit, set before the program creates anything: room for kRoom more tasks. The
  // shim's own threads (template, spares) count against it too; a spare is given back when a
  // create would fail, so the program can hold as many threads as without the shim, or one fewer
  // (the template).
  constexpr int kRoom = 12;
  std::string cur = testapp::ReadFirstLine(dir + "/pids.current");
  long max = std::atol(cur.c_str()) + kRoom;
  if (!testapp::WriteFile(dir + "/pids.max", std::to_string(max))) {
    std::fprintf(stderr, "faults: cannot set pids.max\n");
    std::exit(1);
  }
  Result r;
  int tasks0 = SettledTasks(0), maps0 = 0;
  RunTaintedWorker([&] {
    maps0 = CountMaps();
    Held held;
    pthread_attr_t plain;
    pthread_attr_init(&plain);
    int rc = 0, held_default = 0;
    // Alternate explicit attributes (never a spare) and a null attr (a spare if one is ready).
    for (int i = 0; i < 4 * kRoom && rc == 0; ++i) {
      pthread_t t;
      rc = pthread_create(&t, i % 2 ? nullptr : &plain, HeldChild, &held);
      if (rc == 0) {
        held.threads.push_back(t);
        if (i % 2) ++held_default;
      }
    }
    pthread_attr_destroy(&plain);
    r.AddStr("rc", ErrName(rc));
    r.Add("held", static_cast<long>(held.threads.size()));
    r.Add("held_default_attr", held_default);
    held.release.store(true);
    for (pthread_t t : held.threads) pthread_join(t, nullptr);
    testapp::WriteFile(dir + "/pids.max", "max");
    r.AddStr("rc_after", ErrName(CreateJoin()));
  });
  r.Add("pids_max", max);
  r.Add("tasks_before", tasks0);
  r.Add("tasks_after", SettledTasks(tasks0));
  r.Add("maps_before", maps0);
  r.Add("maps_after", CountMaps());
  r.Print();
  return 0;
}

// ---------------------------------------------------------------------------------------------

int CaseNproc() {
  if (getuid() != 0) CannotRunHere("needs root to drop to uid 65534");
  Result r;
  std::atomic<int> phase{0};
  int rc_after = -1, tasks0 = 0, maps0 = 0, tasks1 = 0, maps1 = 0;
  std::thread worker([&] {
    Taint();
    CreateJoin();  // warm-up
    phase = 1;
    while (phase.load() != 2) usleep(100);
    tasks0 = SettledTasks(0);
    maps0 = CountMaps();
    FaultedCreates(&r, nullptr);
    struct rlimit rl;
    getrlimit(RLIMIT_NPROC, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NPROC, &rl);
    tasks1 = SettledTasks(tasks0);
    maps1 = CountMaps();
    rc_after = CreateJoin();
  });
  while (phase.load() != 1) usleep(100);
  // Every thread of the process (the template too) becomes uid 65534 and loses its capabilities;
  // RLIMIT_NPROC then counts this process's tasks against a limit of 1.
  if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
      setresuid(65534, 65534, 65534) != 0) {
    std::perror("faults: setresuid");
    std::exit(1);
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NPROC, &rl);
  rl.rlim_cur = 1;
  if (setrlimit(RLIMIT_NPROC, &rl) != 0) {
    std::perror("faults: setrlimit");
    std::exit(1);
  }
  phase = 2;
  worker.join();
  r.AddStr("rc_after", ErrName(rc_after));
  r.Add("tasks_before", tasks0);
  r.Add("tasks_after", tasks1);
  r.Add("maps_before", maps0);
  r.Add("maps_after", maps1);
  r.Print();
  return 0;
}

// ---------------------------------------------------------------------------------------------

long VmSizeBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::atol(line.c_str() + 7) * 1024;
  }
  return -1;
}

int CaseRlimitAs() {
  Result r;
  RunTaintedWorker([&] {
    pthread_attr_t big;
    pthread_attr_init(&big);
    pthread_attr_setstacksize(&big, 64 << 20);
    CreateJoin();  // warm-up
    int tasks0 = SettledTasks(0), maps0 = CountMaps();
    struct rlimit old;
    getrlimit(RLIMIT_AS, &old);
    long vm = VmSizeBytes();
    struct rlimit lim = {static_cast<rlim_t>(vm + (4 << 20)), old.rlim_max};
    if (setrlimit(RLIMIT_AS, &lim) != 0) {
      std::perror("faults: setrlimit RLIMIT_AS");
      std::exit(1);
    }
    FaultedCreates(&r, &big);
    setrlimit(RLIMIT_AS, &old);
    int tasks1 = SettledTasks(tasks0), maps1 = CountMaps();
    int rc_after = CreateJoin(&big);
    pthread_attr_destroy(&big);
    r.AddStr("rc_after", ErrName(rc_after));
    r.Add("tasks_before", tasks0);
    r.Add("tasks_after", tasks1);
    r.Add("maps_before", maps0);
    r.Add("maps_after", maps1);
  });
  r.Print();
  return 0;
}

// ---------------------------------------------------------------------------------------------

std::atomic<long> g_sigusr1{0};
void OnSigusr1(int) { g_sigusr1.fetch_add(1, std::memory_order_relaxed); }

void InstallSigusr1() {
  struct sigaction sa = {};
  sa.sa_handler = OnSigusr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  sigaction(SIGUSR1, &sa, nullptr);
}

int CaseEintr(int rounds) {
  InstallSigusr1();
  Result r;
  std::atomic<bool> done{false};
  std::atomic<bool> ready{false};
  pthread_t worker_handle;
  int failures = 0;
  int tasks0 = 0, maps0 = 0, tasks1 = 0, maps1 = 0;
  std::thread worker([&] {
    Taint();
    CreateJoin();
    tasks0 = SettledTasks(0);
    maps0 = CountMaps();
    worker_handle = pthread_self();
    ready = true;
    for (int i = 0; i < rounds; ++i) {
      if (CreateJoin() != 0) ++failures;
    }
    tasks1 = SettledTasks(tasks0 + 1);  // the signaller still runs: it stops on `done`
    maps1 = CountMaps();
    done = true;
  });
  while (!ready.load()) usleep(100);
  std::thread signaller([&] {
    long sent = 0;
    while (!done.load()) {
      if (pthread_kill(worker_handle, SIGUSR1) == 0) ++sent;
      if ((sent & 15) == 0) sched_yield();
    }
    r.Add("signals_sent", sent);
  });
  worker.join();
  signaller.join();
  r.Add("rounds", rounds);
  r.Add("failures", failures);
  r.Add("signals_received", g_sigusr1.load());
  r.Add("tasks_before", tasks0);
  r.Add("tasks_after", tasks1 - 1);
  r.Add("maps_before", maps0);
  r.Add("maps_after", maps1);
  r.Print();
  return 0;
}

// ---------------------------------------------------------------------------------------------

struct CancelRound {
  std::atomic<int> stage{0};  // 1: about to create, 2: create returned
  pthread_t child{};
  int rc = -1;
};

void* CancelWorker(void* p) {
  auto* c = static_cast<CancelRound*>(p);
  Taint();
  c->stage = 1;
  c->rc = pthread_create(&c->child, nullptr, Child, nullptr);
  c->stage = 2;
  pthread_testcancel();
  return nullptr;
}

int CaseCancel(int rounds) {
  Result r;
  // Keep the template busy so that cancellations land while callers wait in the queue.
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; ++i) {
    busy.emplace_back([&] {
      Taint();
      while (!stop.load()) CreateJoin();
    });
  }
  int tasks0 = -1, maps0 = 0;
  int cancelled = 0, not_cancelled = 0, create_failed = 0, child_joined = 0, child_missing = 0;
  for (int i = 0; i < rounds; ++i) {
    CancelRound c;
    pthread_t w;
    if (pthread_create(&w, nullptr, CancelWorker, &c) != 0) {
      std::fprintf(stderr, "faults: cannot start a worker\n");
      return 1;
    }
    while (c.stage.load() == 0) sched_yield();
    pthread_cancel(w);
    void* ret = nullptr;
    pthread_join(w, &ret);
    if (ret == PTHREAD_CANCELED) ++cancelled;
    else ++not_cancelled;
    if (c.stage.load() != 2) ++child_missing;  // the create never returned: cancelled inside it
    else if (c.rc != 0) ++create_failed;
    else if (pthread_join(c.child, nullptr) == 0) ++child_joined;
    if (i == 0) {
      stop = true;  // measure leaks without the busy threads
      for (auto& t : busy) t.join();
      busy.clear();
      tasks0 = SettledTasks(0);
      maps0 = CountMaps();
      stop = false;
      for (int j = 0; j < 2; ++j) {
        busy.emplace_back([&] {
          Taint();
          while (!stop.load()) CreateJoin();
        });
      }
    }
  }
  stop = true;
  for (auto& t : busy) t.join();
  int tasks1 = SettledTasks(tasks0), maps1 = CountMaps();
  r.Add("rounds", rounds);
  r.Add("cancelled", cancelled);
  r.Add("not_cancelled", not_cancelled);
  r.Add("create_failed", create_failed);
  r.Add("child_joined", child_joined);
  r.Add("child_missing", child_missing);
  r.Add("tasks_before", tasks0);
  r.Add("tasks_after", tasks1);
  r.Add("maps_before", maps0);
  r.Add("maps_after", maps1);
  r.Print();
  return 0;
}

// ---------------------------------------------------------------------------------------------

int CaseExit(int delay_us) {
  for (int i = 0; i < 4; ++i) {
    std::thread([i] {
      Taint();
      for (;;) {
        pthread_t t;
        if (pthread_create(&t, nullptr, Child, nullptr) == 0) {
          if (i & 1) pthread_detach(t);
          else pthread_join(t, nullptr);
        }
      }
    }).detach();
  }
  std::thread([delay_us] {
    usleep(static_cast<useconds_t>(delay_us));
    std::exit(7);
  }).detach();
  for (;;) pause();
}

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "faults: %s\nusage: faults cgroup|nproc|rlimit-as|eintr|cancel|exit [--rounds N] "
               "[--cgroup DIR]\n",
               msg);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Usage("missing case");
  std::string c = argv[1];
  int rounds = -1;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) g_cgroup = argv[++i];
    else Usage("bad option");
  }
  SetupAltNetns();
  if (c == "cgroup") return CaseCgroup();
  if (c == "nproc") return CaseNproc();
  if (c == "rlimit-as") return CaseRlimitAs();
  if (c == "eintr") return CaseEintr(rounds > 0 ? rounds : 2000);
  if (c == "cancel") return CaseCancel(rounds > 0 ? rounds : 300);
  if (c == "exit") return CaseExit(rounds >= 0 ? rounds : 1000);
  Usage("unknown case");
}
