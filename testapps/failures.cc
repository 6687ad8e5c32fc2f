// SPDX-License-Identifier: Apache-2.0
// failures: failure paths of thread creation under the shim.
//
//   failures --mode limit --cgroup DIR
//     The process moves itself into the (empty, test-made) pids cgroup DIR. A worker unshares its
//     net namespace, counts its process's tasks, sets DIR/pids.max to pids.current and tries 3
//     creates (each must fail: "limited_errors"), counts tasks again, sets pids.max back to "max",
//     creates and joins a thread ("after_error", "after_child_net") and counts tasks once more.
//     "tasks_*" count every thread, "program_tasks_*" all but the shim's own (named "pristine-*":
//     the template and its spare threads).
//
//   failures --mode signals [--creates N]
//     A worker unshares its net namespace and creates+joins N (default 200) threads while the main
//     thread sends it SIGUSR1 (handler installed without SA_RESTART) in a loop until it is done.
//
//   failures --mode cancel
//     A worker unshares its net namespace and waits until main has called pthread_cancel on it
//     (deferred cancellation: the cancel stays pending), then calls pthread_create (not a
//     cancellation point: it must complete), records the result and calls pthread_testcancel().
//     main joins the worker (expects PTHREAD_CANCELED) and then the created thread.
//
//   failures --mode exit --exiter main|thread [--code N]
//     4 workers unshare their net namespace and create+join threads in an endless loop; once each
//     has created at least one, the exiter calls exit(N) (default 42). An atexit handler prints
//     {"atexit": true} on stdout. Nothing else is printed.
//
//   failures --mode work [--taint net|files|none] [--cgroup DIR] [--nproc]
//     A process whose template cannot start at its first need: a worker makes the first change
//     of its state (net: unshare(CLONE_NEWNET), files: unshare(CLONE_FILES), unprivileged) while
//     no new task can be created: --cgroup: the process first joins the (empty, test-made) pids
//     cgroup DIR and the worker sets pids.max to pids.current just before the change; --nproc:
//     the worker lowers RLIMIT_NPROC's soft limit to 0 just before the change (a limit only for a
//     non-root uid). Right after the change the limit is lifted, and the worker creates+joins 3
//     threads: "errors", "child_nets".
//
//   failures --mode no-memory
//     A worker pins itself to one CPU (a change the shim repairs in the new thread's attributes),
//     creates and joins a thread, then creates and joins another while every realloc on the
//     worker fails (this program's realloc: glibc's pthread_attr_setaffinity_np allocates the
//     attribute's CPU set with it). "errors" and "child_cpus" (CPUs each thread may run on),
//     "caller_cpus", "baseline_cpus".
//
// One JSON object on stdout (mode exit: see above); exit 0, 2 usage, 3 unsupported here.

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>

#include "thread_state.h"

namespace {

long long Net() { return testapp::NsInode("net"); }

void TaintNet() {
  if (unshare(CLONE_NEWNET) != 0) testapp::CannotRunHere("unshare(CLONE_NEWNET): " + testapp::ErrName(errno));
}

void* RecordNet(void* p) {
  *static_cast<long long*>(p) = Net();
  return nullptr;
}

// Creates and joins a thread; returns 0 or the error; *net gets the thread's net inode.
int CreateJoin(long long* net) {
  pthread_t th;
  int r = pthread_create(&th, nullptr, RecordNet, net);
  if (r == 0) pthread_join(th, nullptr);
  return r;
}

std::string g_cgroup;

// ---------------------------------------------------------------------------------------------
struct LimitOut {
  int tasks_before = -1, tasks_after_fail = -1, tasks_end = -1;
  int program_tasks_before = -1, program_tasks_after_fail = -1, program_tasks_end = -1;
  std::vector<std::string> limited_errors;
  std::string after_error;
  long long after_child_net = -1, caller_net = -1;
  std::string pids_max;
};

void* LimitWorker(void* p) {
  auto* o = static_cast<LimitOut*>(p);
  TaintNet();
  o->caller_net = Net();
  o->tasks_before = testapp::CountTasks();
  o->program_tasks_before = testapp::CountProgramTasks();
  std::string cur = testapp::ReadFirstLine(g_cgroup + "/pids.current");
  o->pids_max = cur;
  if (cur.empty() || !testapp::WriteFile(g_cgroup + "/pids.max", cur)) testapp::CannotRunHere("cannot set pids.max");
  for (int i = 0; i < 3; ++i) {
    long long net = -1;
    int r = CreateJoin(&net);
    o->limited_errors.push_back(testapp::ErrName(r));
  }
  o->tasks_after_fail = testapp::CountTasks();
  o->program_tasks_after_fail = testapp::CountProgramTasks();
  if (!testapp::WriteFile(g_cgroup + "/pids.max", "max")) testapp::Die("cannot reset pids.max");
  o->after_error = testapp::ErrName(CreateJoin(&o->after_child_net));
  o->tasks_end = testapp::CountTasks();
  o->program_tasks_end = testapp::CountProgramTasks();
  return nullptr;
}

void ModeLimit() {
  if (g_cgroup.empty()) testapp::CannotRunHere("--mode limit needs --cgroup");
  if (!testapp::WriteFile(g_cgroup + "/cgroup.procs", std::to_string(getpid())))
    testapp::CannotRunHere("cannot join " + g_cgroup + ": " + testapp::ErrName(errno));
  LimitOut o;
  pthread_t th;
  if (pthread_create(&th, nullptr, LimitWorker, &o) != 0) testapp::Die("worker");
  pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(Net());
  w.key("caller_net"); w.value(o.caller_net);
  w.key("pids_max_set"); w.value(o.pids_max);
  w.key("limited_errors");
  w.begin_array();
  for (auto& e : o.limited_errors) w.value(e);
  w.end_array();
  w.key("tasks_before"); w.value(o.tasks_before);
  w.key("tasks_after_fail"); w.value(o.tasks_after_fail);
  w.key("after_error"); w.value(o.after_error);
  w.key("after_child_net"); w.value(o.after_child_net);
  w.key("tasks_end"); w.value(o.tasks_end);
  w.key("program_tasks_before"); w.value(o.program_tasks_before);
  w.key("program_tasks_after_fail"); w.value(o.program_tasks_after_fail);
  w.key("program_tasks_end"); w.value(o.program_tasks_end);
  w.end_object();
  testapp::PrintJson(w);
}

// ---------------------------------------------------------------------------------------------
std::atomic<long> g_signals{0};
std::atomic<bool> g_worker_done{false};
int g_creates = 200;

void OnSignal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

struct SigOut {
  long long caller_net = -1;
  long ok = 0, failed = 0, child_caller_net = 0, child_other_net = 0;
  std::vector<long long> nets;
  std::string first_error;
};

void* SignalWorker(void* p) {
  auto* o = static_cast<SigOut*>(p);
  TaintNet();
  o->caller_net = Net();
  while (g_signals.load() == 0) sched_yield();  // the storm has started
  for (int i = 0; i < g_creates; ++i) {
    long long net = -1;
    int r = CreateJoin(&net);
    if (r != 0) {
      ++o->failed;
      if (o->first_error.empty()) o->first_error = testapp::ErrName(r);
      continue;
    }
    ++o->ok;
    if (net == o->caller_net) ++o->child_caller_net;
    else o->nets.push_back(net);
  }
  g_worker_done.store(true);
  return nullptr;
}

void ModeSignals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: interrupted system calls return EINTR
  sigaction(SIGUSR1, &sa, nullptr);
  SigOut o;
  pthread_t th;
  if (pthread_create(&th, nullptr, SignalWorker, &o) != 0) testapp::Die("worker");
  long sent = 0;
  while (!g_worker_done.load()) {
    if (pthread_kill(th, SIGUSR1) == 0) ++sent;
    sched_yield();
  }
  pthread_join(th, nullptr);
  long long base = Net();
  long baseline_children = 0;
  for (long long n : o.nets)
    if (n == base) ++baseline_children;
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(base);
  w.key("caller_net"); w.value(o.caller_net);
  w.key("creates"); w.value(g_creates);
  w.key("ok"); w.value(o.ok);
  w.key("failed"); w.value(o.failed);
  w.key("first_error");
  if (o.first_error.empty()) w.null(); else w.value(o.first_error);
  w.key("children_caller_net"); w.value(o.child_caller_net);
  w.key("children_baseline_net"); w.value(baseline_children);
  w.key("signals_sent"); w.value(sent);
  w.key("signals_handled"); w.value(g_signals.load());
  w.end_object();
  testapp::PrintJson(w);
}

// ---------------------------------------------------------------------------------------------
struct CancelCtx {
  std::atomic<bool> cancel_sent{false};
  long long caller_net = -1;
  long long child_net = -1;
  int create_rc = -1;
  pthread_t child;
  bool reached_testcancel = false;
};

void* CancelWorker(void* p) {
  auto* c = static_cast<CancelCtx*>(p);
  int old;
  pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
  TaintNet();
  c->caller_net = Net();
  while (!c->cancel_sent.load()) sched_yield();  // sched_yield is not a cancellation point
  c->create_rc = pthread_create(&c->child, nullptr, RecordNet, &c->child_net);
  c->reached_testcancel = true;
  pthread_testcancel();
  return nullptr;  // not reached while the cancel is pending
}

void ModeCancel() {
  CancelCtx c;
  pthread_t th;
  if (pthread_create(&th, nullptr, CancelWorker, &c) != 0) testapp::Die("worker");
  int cr = pthread_cancel(th);
  c.cancel_sent.store(true);
  void* ret = nullptr;
  pthread_join(th, &ret);
  if (c.create_rc == 0) pthread_join(c.child, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(Net());
  w.key("caller_net"); w.value(c.caller_net);
  w.key("cancel_rc"); w.value(cr);
  w.key("create_error"); w.value(testapp::ErrName(c.create_rc));
  w.key("reached_testcancel"); w.value(c.reached_testcancel);
  w.key("worker_canceled"); w.value(ret == PTHREAD_CANCELED);
  w.key("child_net"); w.value(c.child_net);
  w.end_object();
  testapp::PrintJson(w);
}

// ---------------------------------------------------------------------------------------------
constexpr int kExitWorkers = 4;
std::atomic<int> g_started{0};
int g_code = 42;

void* Nothing(void*) { return nullptr; }

void* LoopWorker(void*) {
  TaintNet();
  bool counted = false;
  for (;;) {
    pthread_t th;
    if (pthread_create(&th, nullptr, Nothing, nullptr) == 0) pthread_join(th, nullptr);
    if (!counted) {
      counted = true;
      g_started.fetch_add(1);
    }
  }
  return nullptr;
}

void AtExit() {
  // Raw write: stdio may be in any state while other threads run.
  const char msg[] = "{\"atexit\": true}\n";
  if (write(1, msg, sizeof msg - 1) < 0) {
  }
}

void* Exiter(void*) {
  while (g_started.load() < kExitWorkers) sched_yield();
  exit(g_code);
}

void ModeExit(bool from_main) {
  atexit(AtExit);
  for (int i = 0; i < kExitWorkers; ++i) {
    pthread_t th;
    if (pthread_create(&th, nullptr, LoopWorker, nullptr) != 0) testapp::Die("worker");
    pthread_detach(th);
  }
  if (from_main) Exiter(nullptr);
  pthread_t th;
  if (pthread_create(&th, nullptr, Exiter, nullptr) != 0) testapp::Die("exiter");
  for (;;) pause();
}

// ---------------------------------------------------------------------------------------------
std::string g_work_taint = "net";
bool g_work_nproc = false;

struct WorkOut {
  long long caller_net = -1;
  std::vector<std::string> errors;
  std::vector<long long> nets;
  std::string limit;
};

void* WorkWorker(void* p) {
  auto* o = static_cast<WorkOut*>(p);
  struct rlimit saved;
  getrlimit(RLIMIT_NPROC, &saved);
  if (!g_cgroup.empty()) {
    std::string cur = testapp::ReadFirstLine(g_cgroup + "/pids.current");
    o->limit = "pids.max=" + cur;
    if (cur.empty() || !testapp::WriteFile(g_cgroup + "/pids.max", cur)) testapp::CannotRunHere("cannot set pids.max");
  }
  if (g_work_nproc) {
    struct rlimit zero = saved;
    zero.rlim_cur = 0;
    if (setrlimit(RLIMIT_NPROC, &zero) != 0) testapp::CannotRunHere("setrlimit(RLIMIT_NPROC): " + testapp::ErrName(errno));
    o->limit = "RLIMIT_NPROC=0";
  }
  // The first change of this thread's state: the shim wants its template now.
  if (g_work_taint == "net") TaintNet();
  else if (g_work_taint == "files" && unshare(CLONE_FILES) != 0)
    testapp::CannotRunHere("unshare(CLONE_FILES): " + testapp::ErrName(errno));
  if (!g_cgroup.empty() && !testapp::WriteFile(g_cgroup + "/pids.max", "max")) testapp::Die("cannot reset pids.max");
  if (g_work_nproc && setrlimit(RLIMIT_NPROC, &saved) != 0) testapp::Die("setrlimit back: " + testapp::ErrName(errno));
  o->caller_net = Net();
  for (int i = 0; i < 3; ++i) {
    long long net = -1;
    o->errors.push_back(testapp::ErrName(CreateJoin(&net)));
    o->nets.push_back(net);
  }
  return nullptr;
}

void ModeWork() {
  if (!g_cgroup.empty() && !testapp::WriteFile(g_cgroup + "/cgroup.procs", std::to_string(getpid())))
    testapp::CannotRunHere("cannot join " + g_cgroup + ": " + testapp::ErrName(errno));
  WorkOut o;
  pthread_t th;
  int r = pthread_create(&th, nullptr, WorkWorker, &o);
  if (r != 0) testapp::Die("worker: " + testapp::ErrName(r));
  pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("baseline_net"); w.value(Net());
  w.key("caller_net"); w.value(o.caller_net);
  w.key("limit"); w.value(o.limit);
  w.key("errors");
  w.begin_array();
  for (auto& e : o.errors) w.value(e);
  w.end_array();
  w.key("child_nets");
  w.begin_array();
  for (long long n : o.nets) w.value(n);
  w.end_array();
  w.key("uid"); w.value(static_cast<long long>(getuid()));
  w.end_object();
  testapp::PrintJson(w);
}

// ---------------------------------------------------------------------------------------------
// Interposes realloc for the whole process (the shim's libc calls included); fails on a thread
// that asked for it.
thread_local bool t_realloc_fails = false;

int CpuCount() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
}

void* RecordCpus(void* p) {
  *static_cast<int*>(p) = CpuCount();
  return nullptr;
}

struct NoMemoryOut {
  int caller_cpus = -1;
  std::vector<std::string> errors;
  std::vector<int> child_cpus;
};

void* NoMemoryWorker(void* p) {
  auto* o = static_cast<NoMemoryOut*>(p);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) testapp::Die("sched_setaffinity: " + testapp::ErrName(errno));
  o->caller_cpus = CpuCount();
  for (bool fail : {false, true}) {
    int cpus = -1;
    pthread_t th;
    t_realloc_fails = fail;
    int r = pthread_create(&th, nullptr, RecordCpus, &cpus);
    t_realloc_fails = false;
    if (r == 0) pthread_join(th, nullptr);
    o->errors.push_back(testapp::ErrName(r));
    o->child_cpus.push_back(cpus);
  }
  return nullptr;
}

void ModeNoMemory() {
  int baseline = CpuCount();
  if (baseline < 2) testapp::CannotRunHere("one CPU: no affinity to change");
  NoMemoryOut o;
  pthread_t th;
  int r = pthread_create(&th, nullptr, NoMemoryWorker, &o);
  if (r != 0) testapp::Die("worker: " + testapp::ErrName(r));
  pthread_join(th, nullptr);
  JsonWriter w;
  w.begin_object();
  w.key("baseline_cpus"); w.value(static_cast<long long>(baseline));
  w.key("caller_cpus"); w.value(static_cast<long long>(o.caller_cpus));
  w.key("errors");
  w.begin_array();
  for (auto& e : o.errors) w.value(e);
  w.end_array();
  w.key("child_cpus");
  w.begin_array();
  for (int n : o.child_cpus) w.value(static_cast<long long>(n));
  w.end_array();
  w.end_object();
  testapp::PrintJson(w);
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: failures --mode limit|signals|cancel|exit|work|no-memory [--cgroup DIR] [--creates N]\n"
               "                [--exiter main|thread] [--code N] [--taint net|files|none] [--nproc]\n");
  std::exit(2);
}

}  // namespace

extern "C" void* __libc_realloc(void* p, size_t size);

extern "C" void* realloc(void* p, size_t size) {
  if (t_realloc_fails) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_realloc(p, size);
}

int main(int argc, char** argv) {
  std::string mode;
  bool exit_from_main = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--nproc") { g_work_nproc = true; continue; }
    if (i + 1 >= argc) Usage();
    std::string v = argv[++i];
    if (a == "--mode") mode = v;
    else if (a == "--cgroup") g_cgroup = v;
    else if (a == "--creates") g_creates = std::atoi(v.c_str());
    else if (a == "--code") g_code = std::atoi(v.c_str());
    else if (a == "--exiter" && (v == "main" || v == "thread")) exit_from_main = v == "main";
    else if (a == "--taint" && (v == "net" || v == "files" || v == "none")) g_work_taint = v;
    else Usage();
  }
  if (mode == "limit") ModeLimit();
  else if (mode == "signals") ModeSignals();
  else if (mode == "cancel") ModeCancel();
  else if (mode == "exit") ModeExit(exit_from_main);
  else if (mode == "work") ModeWork();
  else if (mode == "no-memory") ModeNoMemory();
  else Usage();
  return 0;
}
