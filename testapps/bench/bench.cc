// SPDX-License-Identifier: Apache-2.0
// pristine-bench: the measurement program behind scripts/bench.
//
// It has no dependency on the shim. scripts/bench runs it in separate
// processes with and without LD_PRELOAD=libpristine.so, alternating, and
// takes medians over rounds; each run prints exactly one JSON object.
//
//   pristine-bench create     --mode M [--iters N] [--warmup-ms W]   create+join latency
//   pristine-bench concurrent --mode M --threads T [--ms D]
//   pristine-bench spawn      --cmd true|pipeline [--preload LIB] [--iters N]
//   pristine-bench mem        [--forward N]
//   pristine-bench floor      [--iters N]                futex round trip, bare clone
//
// Modes (who creates, and how):
//   plain    an untainted worker thread calls pthread_create
//   taint    the worker enters another network namespace first, then calls
//            pthread_create (forwarded to the template under the shim)
//   condvar  peer (a): the tainted worker asks a helper thread, started from
//            main in the baseline state, to create the thread, through a
//            mutex + condition variable; the helper replies the same way
//   repair   peer (b): the tainted worker creates the thread itself; the new
//            thread setns()es back to the network namespace saved at start
//            (an fd opened by main) before running its start routine
//
// Tainting: the first tainting thread of the process does
// unshare(CLONE_NEWNET) and keeps an fd to the new namespace; every other
// tainting thread setns()es into it. With --netns PATH (scripts/bench passes
// one namespace held by a helper process for the whole run) every tainting
// thread setns()es into that one instead: no namespace is created or torn
// down per process, so the kernel's slow, asynchronous network namespace
// teardown does not disturb the next interleaved run.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "../json_out.h"

extern char** environ;

namespace {

[[noreturn]] void Die(const char* what, int err) {
  fprintf(stderr, "pristine-bench: %s: %s\n", what, strerror(err));
  exit(1);
}

inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool ShimLoaded() {
  FILE* f = fopen("/proc/self/maps", "r");
  if (f == nullptr) return false;
  char line[512];
  bool found = false;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "libpristine")) { found = true; break; }
  }
  fclose(f);
  return found;
}

// --- command line -----------------------------------------------------------

struct Args {
  std::string cmd;
  std::string mode = "plain";
  std::string spawn_cmd = "true";
  std::string preload;
  long iters = 2000;
  long threads = 1;
  long ms = 300;
  long warmup_ms = 0;  // create: time spent creating before measuring
  long forward = 0;
  std::string netns;  // a namespace to enter instead of unsharing a new one
};

Args Parse(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    fprintf(stderr, "usage: pristine-bench create|concurrent|spawn|mem|floor [options]\n");
    exit(2);
  }
  a.cmd = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) {
      fprintf(stderr, "pristine-bench: %s needs a value\n", k.c_str());
      exit(2);
    }
    std::string v = argv[++i];
    if (k == "--mode") a.mode = v;
    else if (k == "--iters") a.iters = atol(v.c_str());
    else if (k == "--threads") a.threads = atol(v.c_str());
    else if (k == "--ms") a.ms = atol(v.c_str());
    else if (k == "--warmup-ms") a.warmup_ms = atol(v.c_str());
    else if (k == "--cmd") a.spawn_cmd = v;
    else if (k == "--preload") a.preload = v;
    else if (k == "--forward") a.forward = atol(v.c_str());
    else if (k == "--netns") a.netns = v;
    else {
      fprintf(stderr, "pristine-bench: unknown option %s\n", k.c_str());
      exit(2);
    }
  }
  if (a.mode != "plain" && a.mode != "taint" && a.mode != "condvar" && a.mode != "repair") {
    fprintf(stderr, "pristine-bench: --mode is plain, taint, condvar or repair, not %s\n",
            a.mode.c_str());
    exit(2);
  }
  return a;
}

// --- tainting ---------------------------------------------------------------

std::mutex g_taint_mu;
std::string g_netns_path;  // --netns
int g_tainted_ns_fd = -1;  // the namespace tainted threads enter
int g_saved_net_fd = -1;   // the baseline's, opened by main (repair peer)

void TaintCallingThread() {
  std::lock_guard<std::mutex> lock(g_taint_mu);
  if (g_tainted_ns_fd < 0 && !g_netns_path.empty()) {
    g_tainted_ns_fd = open(g_netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (g_tainted_ns_fd < 0) Die(g_netns_path.c_str(), errno);
  }
  if (g_tainted_ns_fd < 0) {
    if (unshare(CLONE_NEWNET) != 0) Die("unshare(CLONE_NEWNET) (needs CAP_SYS_ADMIN)", errno);
    g_tainted_ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (g_tainted_ns_fd < 0) Die("open /proc/thread-self/ns/net", errno);
  } else if (setns(g_tainted_ns_fd, CLONE_NEWNET) != 0) {
    Die("setns", errno);
  }
}

// --- the thread creators under test ------------------------------------------

void* Empty(void*) { return nullptr; }

// Peer (a): a helper thread, started from main, creates threads on request.
struct HelperRequest {
  void* (*start)(void*);
  void* arg;
  pthread_t thread;
  int rc;
  bool done = false;
  std::condition_variable cv;
};

class CondvarHelper {
 public:
  void Start() {
    int rc = pthread_create(&thread_, nullptr, &CondvarHelper::Main, this);
    if (rc != 0) Die("helper pthread_create", rc);
  }
  int Create(pthread_t* t, void* (*start)(void*), void* arg) {
    HelperRequest req;
    req.start = start;
    req.arg = arg;
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(&req);
    cv_.notify_one();
    req.cv.wait(lock, [&] { return req.done; });
    *t = req.thread;
    return req.rc;
  }

 private:
  static void* Main(void* p) {
    CondvarHelper* h = static_cast<CondvarHelper*>(p);
    std::unique_lock<std::mutex> lock(h->mu_);
    for (;;) {
      h->cv_.wait(lock, [&] { return !h->queue_.empty(); });
      HelperRequest* r = h->queue_.front();
      h->queue_.pop_front();
      lock.unlock();
      r->rc = pthread_create(&r->thread, nullptr, r->start, r->arg);
      lock.lock();
      r->done = true;
      r->cv.notify_one();
    }
    return nullptr;
  }

  pthread_t thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HelperRequest*> queue_;
};

CondvarHelper g_helper;

// Peer (b): the new thread repairs its own namespace before the start routine.
struct RepairArg {
  void* (*start)(void*);
  void* arg;
};

void* RepairStart(void* p) {
  RepairArg a = *static_cast<RepairArg*>(p);
  delete static_cast<RepairArg*>(p);
  if (setns(g_saved_net_fd, CLONE_NEWNET) != 0) Die("repair setns", errno);
  return a.start(a.arg);
}

int RepairCreate(pthread_t* t, void* (*start)(void*), void* arg) {
  RepairArg* a = new RepairArg{start, arg};
  int rc = pthread_create(t, nullptr, RepairStart, a);
  if (rc != 0) delete a;
  return rc;
}

// Sets up the process for `mode`; call from main before any creator runs.
void SetUpMode(const std::string& mode) {
  if (mode == "condvar") g_helper.Start();
  if (mode == "repair") {
    g_saved_net_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (g_saved_net_fd < 0) Die("open /proc/self/ns/net", errno);
  }
}

// One create in `mode` from a creator already set up by CreatorInit.
inline int CreateOne(const std::string& mode, pthread_t* t) {
  if (mode == "condvar") return g_helper.Create(t, Empty, nullptr);
  if (mode == "repair") return RepairCreate(t, Empty, nullptr);
  return pthread_create(t, nullptr, Empty, nullptr);
}

void CreatorInit(const std::string& mode) {
  if (mode != "plain") TaintCallingThread();
}

// Runs fn on a fresh (untainted) worker thread and waits for it.
template <typename F>
void OnWorker(F fn) {
  struct Box { F* f; };
  Box box{&fn};
  pthread_t t;
  int rc = pthread_create(&t, nullptr, [](void* p) -> void* {
    (*static_cast<Box*>(p)->f)();
    return nullptr;
  }, &box);
  if (rc != 0) Die("worker pthread_create", rc);
  pthread_join(t, nullptr);
}

// --- subcommands --------------------------------------------------------------

// create+join latency and pthread_create call latency, medians over iterations.
void CmdCreate(const Args& a) {
  SetUpMode(a.mode);
  std::vector<double> total, call;
  total.reserve(a.iters);
  call.reserve(a.iters);
  OnWorker([&] {
    CreatorInit(a.mode);
    // Warm-up: at least iters/10 creates and --warmup-ms. On this VM the
    // first ~100 ms of a creating thread run in another regime (the
    // scheduler's load tracking of the new creator settles), which would make
    // a short run measure start-up rather than steady state, for either side.
    long warm = std::max(20L, a.iters / 10);
    int64_t warm_until = NowNs() + a.warmup_ms * 1000000;
    for (long i = 0; i < warm || NowNs() < warm_until; ++i) {
      pthread_t t;
      int rc = CreateOne(a.mode, &t);
      if (rc != 0) Die("pthread_create", rc);
      pthread_join(t, nullptr);
    }
    for (long i = 0; i < a.iters; ++i) {
      pthread_t t;
      int64_t t0 = NowNs();
      int rc = CreateOne(a.mode, &t);
      int64_t t1 = NowNs();
      if (rc != 0) Die("pthread_create", rc);
      pthread_join(t, nullptr);
      int64_t t2 = NowNs();
      call.push_back(static_cast<double>(t1 - t0));
      total.push_back(static_cast<double>(t2 - t0));
    }
  });
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("create");
  w.key("mode"); w.value(a.mode);
  w.key("shim_loaded"); w.value(ShimLoaded());
  w.key("iters"); w.value(a.iters);
  w.key("create_join_ns"); w.value(static_cast<long long>(Median(total)));
  w.key("call_ns"); w.value(static_cast<long long>(Median(call)));
  w.key("create_join_mean_ns"); w.value(static_cast<long long>(Mean(total)));
  w.key("call_mean_ns"); w.value(static_cast<long long>(Mean(call)));
  w.end_object();
  puts(w.str().c_str());
}

// T concurrent creators, each looping create+join for a fixed time.
void CmdConcurrent(const Args& a) {
  SetUpMode(a.mode);
  long n = std::max(1L, a.threads);
  std::atomic<long> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<long> counts(n, 0);
  std::vector<pthread_t> creators(n);
  struct Ctx {
    const Args* a; std::atomic<long>* ready; std::atomic<bool>* go; std::atomic<bool>* stop;
    long* count;
  };
  std::vector<Ctx> ctx(n);
  for (long i = 0; i < n; ++i) {
    ctx[i] = Ctx{&a, &ready, &go, &stop, &counts[i]};
    int rc = pthread_create(&creators[i], nullptr, [](void* p) -> void* {
      Ctx* c = static_cast<Ctx*>(p);
      CreatorInit(c->a->mode);
      c->ready->fetch_add(1);
      while (!c->go->load(std::memory_order_acquire)) sched_yield();
      long k = 0;
      while (!c->stop->load(std::memory_order_relaxed)) {
        pthread_t t;
        int rc2 = CreateOne(c->a->mode, &t);
        if (rc2 != 0) Die("pthread_create", rc2);
        pthread_join(t, nullptr);
        ++k;
      }
      *c->count = k;
      return nullptr;
    }, &ctx[i]);
    if (rc != 0) Die("creator pthread_create", rc);
  }
  while (ready.load() != n) usleep(1000);
  int64_t t0 = NowNs();
  go.store(true, std::memory_order_release);
  usleep(a.ms * 1000);
  stop.store(true);
  for (long i = 0; i < n; ++i) pthread_join(creators[i], nullptr);
  int64_t t1 = NowNs();
  long total = 0;
  for (long c : counts) total += c;
  double secs = static_cast<double>(t1 - t0) / 1e9;
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("concurrent");
  w.key("mode"); w.value(a.mode);
  w.key("shim_loaded"); w.value(ShimLoaded());
  w.key("threads"); w.value(n);
  w.key("creates"); w.value(total);
  w.key("creates_per_s"); w.value(static_cast<long long>(total / secs));
  w.key("ns_per_create"); w.value(static_cast<long long>(secs * 1e9 / std::max(1L, total)));
  w.end_object();
  puts(w.str().c_str());
}

// posix_spawn + waitpid, LD_PRELOAD in the child's environment only.
void CmdSpawn(const Args& a) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "PRISTINE_OPTIONS=", 17) == 0) continue;
    env_store.push_back(*e);
  }
  if (!a.preload.empty()) env_store.push_back("LD_PRELOAD=" + a.preload);
  std::vector<char*> envp;
  for (auto& s : env_store) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  std::vector<const char*> argv;
  if (a.spawn_cmd == "true") {
    argv = {"/bin/true", nullptr};
  } else if (a.spawn_cmd == "pipeline") {
    argv = {"/bin/sh", "-c", "/bin/true | /bin/true", nullptr};
  } else {
    fprintf(stderr, "pristine-bench: --cmd is true or pipeline\n");
    exit(2);
  }
  std::vector<double> v;
  long warm = std::max(3L, a.iters / 10);
  for (long i = 0; i < warm + a.iters; ++i) {
    pid_t pid;
    int64_t t0 = NowNs();
    int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char**>(argv.data()),
                         envp.data());
    if (rc != 0) Die("posix_spawn", rc);
    int status;
    if (waitpid(pid, &status, 0) != pid) Die("waitpid", errno);
    int64_t t1 = NowNs();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "pristine-bench: %s exited with status %d\n", argv[0], status);
      exit(1);
    }
    if (i >= warm) v.push_back(static_cast<double>(t1 - t0));
  }
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("spawn");
  w.key("what"); w.value(a.spawn_cmd);
  w.key("preload"); w.value(a.preload);
  w.key("iters"); w.value(a.iters);
  w.key("spawn_wait_ns"); w.value(static_cast<long long>(Median(v)));
  w.end_object();
  puts(w.str().c_str());
}

// Resident memory of this process, from /proc/self/smaps_rollup.
void CmdMem(const Args& a) {
  // A process that never forwards still creates one thread (the shim's
  // untainted path); one that does makes --forward tainted creates.
  OnWorker([&] {
    if (a.forward > 0) TaintCallingThread();
    for (long i = 0; i < std::max(1L, a.forward); ++i) {
      pthread_t t;
      int rc = pthread_create(&t, nullptr, Empty, nullptr);
      if (rc != 0) Die("pthread_create", rc);
      pthread_join(t, nullptr);
    }
  });
  long rss = -1, pss = -1, anon = -1;
  FILE* f = fopen("/proc/self/smaps_rollup", "r");
  if (f != nullptr) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      sscanf(line, "Rss: %ld kB", &rss);
      sscanf(line, "Pss: %ld kB", &pss);
      sscanf(line, "Anonymous: %ld kB", &anon);
    }
    fclose(f);
  }
  long threads = -1;
  f = fopen("/proc/self/status", "r");
  if (f != nullptr) {
    char line[256];
    while (fgets(line, sizeof line, f)) sscanf(line, "Threads: %ld", &threads);
    fclose(f);
  }
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("mem");
  w.key("shim_loaded"); w.value(ShimLoaded());
  w.key("forward"); w.value(a.forward);
  w.key("rss_kb"); w.value(rss);
  w.key("pss_kb"); w.value(pss);
  w.key("anon_kb"); w.value(anon);
  w.key("threads"); w.value(threads);
  w.end_object();
  puts(w.str().c_str());
}

// --- physical floors ------------------------------------------------------------

long Futex(std::atomic<uint32_t>* w, int op, uint32_t v) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op, v, nullptr, nullptr, 0);
}

// clone() a thread that exits at once, without glibc: the child never touches
// its stack (it goes straight to exit), so one stack serves every iteration.
// CLONE_CHILD_CLEARTID makes the kernel clear *ctid and wake it at exit: the
// "join" is a futex wait on it, as in glibc.
long RawCloneThatExits(unsigned long flags, void* stack_top, int* ptid, int* ctid) {
  long ret;
  register long r10 asm("r10") = reinterpret_cast<long>(ctid);
  register long r8 asm("r8") = 0;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "mov $60, %%eax\n\t"  // SYS_exit: this thread only
      "xor %%edi, %%edi\n\t"
      "syscall\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"(static_cast<long>(SYS_clone)), "D"(flags), "S"(stack_top), "d"(ptid), "r"(r10),
        "r"(r8)
      : "rcx", "r11", "memory");
  return ret;
}

void CmdFloor(const Args& a) {
  long n = a.iters;
  // 1. futex wake round trip between two threads: A wakes B, B wakes A.
  std::atomic<uint32_t> ping{0}, pong{0};
  pthread_t peer;
  struct PP { std::atomic<uint32_t>* ping; std::atomic<uint32_t>* pong; long n; };
  PP pp{&ping, &pong, n + n / 10};
  pthread_create(&peer, nullptr, [](void* p) -> void* {
    PP* c = static_cast<PP*>(p);
    for (long i = 1; i <= c->n; ++i) {
      while (c->ping->load(std::memory_order_acquire) != static_cast<uint32_t>(i)) {
        Futex(c->ping, FUTEX_WAIT_PRIVATE, static_cast<uint32_t>(i - 1));
      }
      c->pong->store(static_cast<uint32_t>(i), std::memory_order_release);
      Futex(c->pong, FUTEX_WAKE_PRIVATE, 1);
    }
    return nullptr;
  }, &pp);
  std::vector<double> rt;
  for (long i = 1; i <= pp.n; ++i) {
    int64_t t0 = NowNs();
    ping.store(static_cast<uint32_t>(i), std::memory_order_release);
    Futex(&ping, FUTEX_WAKE_PRIVATE, 1);
    while (pong.load(std::memory_order_acquire) != static_cast<uint32_t>(i)) {
      Futex(&pong, FUTEX_WAIT_PRIVATE, static_cast<uint32_t>(i - 1));
    }
    int64_t t1 = NowNs();
    if (i > n / 10) rt.push_back(static_cast<double>(t1 - t0));
  }
  pthread_join(peer, nullptr);

  // 2. bare clone + exit + wait, and the syscall floor (getppid).
  const unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                              CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  static char stack[64 * 1024] __attribute__((aligned(64)));
  std::vector<double> cl, cl_call;
  for (long i = 0; i < n + n / 10; ++i) {
    static std::atomic<int> ctid;
    ctid.store(0);
    int64_t t0 = NowNs();
    long r = RawCloneThatExits(flags, stack + sizeof stack, reinterpret_cast<int*>(&ctid),
                               reinterpret_cast<int*>(&ctid));
    int64_t t1 = NowNs();
    if (r < 0) Die("clone", static_cast<int>(-r));
    int v;
    while ((v = ctid.load(std::memory_order_acquire)) != 0) {
      syscall(SYS_futex, reinterpret_cast<int*>(&ctid), FUTEX_WAIT, v, nullptr, nullptr, 0);
    }
    int64_t t2 = NowNs();
    if (i >= n / 10) {
      cl_call.push_back(static_cast<double>(t1 - t0));
      cl.push_back(static_cast<double>(t2 - t0));
    }
  }
  std::vector<double> sc;
  for (long i = 0; i < 1000; ++i) {
    int64_t t0 = NowNs();
    for (int j = 0; j < 100; ++j) syscall(SYS_getppid);
    sc.push_back(static_cast<double>(NowNs() - t0) / 100);
  }
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("floor");
  w.key("shim_loaded"); w.value(ShimLoaded());
  w.key("futex_round_trip_ns"); w.value(static_cast<long long>(Median(rt)));
  w.key("clone_exit_wait_ns"); w.value(static_cast<long long>(Median(cl)));
  w.key("clone_call_ns"); w.value(static_cast<long long>(Median(cl_call)));
  w.key("syscall_ns"); w.value(static_cast<long long>(Median(sc)));
  w.end_object();
  puts(w.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  g_netns_path = a.netns;
  if (a.cmd == "create") CmdCreate(a);
  else if (a.cmd == "concurrent") CmdConcurrent(a);
  else if (a.cmd == "spawn") CmdSpawn(a);
  else if (a.cmd == "mem") CmdMem(a);
  else if (a.cmd == "floor") CmdFloor(a);
  else {
    fprintf(stderr, "pristine-bench: unknown command %s\n", a.cmd.c_str());
    return 2;
  }
  fflush(stdout);
  // The condvar helper never exits: leave without joining it.
  _exit(0);
}
