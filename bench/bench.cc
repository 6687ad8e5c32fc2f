// SPDX-License-Identifier: Apache-2.0
// pristine-bench: the measurement program behind scripts/bench (bench/runner.py).
//
// It has no dependency on the library. The runner starts it in separate
// processes with and without LD_PRELOAD=libpristine.so, alternating, and takes
// medians over rounds; each run prints exactly one JSON object on stdout.
//
//   pristine-bench create     --mode M --taint T [--iters N] [--warmup-ms W]
//   pristine-bench concurrent --mode M --taint T --threads N [--ms D]
//   pristine-bench spawn      --cmd true|pipeline --library LIB --empty LIB [--iters N]
//   pristine-bench mem        --taint T [--creates N]
//   pristine-bench libc       --call aio_write|timer_create --taint T [--iters N]
//   pristine-bench floor      [--iters N]
// Every command takes --ns-pid PID: a process whose net, uts, ipc and cgroup
// namespaces tainted threads enter (the runner holds one for the whole run, so
// that no namespace is created or torn down per process; without it the first
// tainting thread unshares its own).
//
// Taints (--taint, a comma-separated list, or "none"): what the creating
// thread changes about itself before it creates, compared with main's state
// at start (the baseline):
//   net uts ipc cgroup   setns() into the held namespace of that kind
//   affinity             sched_setaffinity() to a set other than the
//                        baseline's: one CPU of the baseline's (creator i
//                        takes the i-th from the last), or, when the baseline
//                        is one CPU (under taskset -c 0), every online CPU
//   fs files             unshare(CLONE_FS), unshare(CLONE_FILES)
//
// Modes (--mode; who creates, and how):
//   plain    an untainted creator calls pthread_create (--taint is ignored)
//   taint    the tainted creator calls pthread_create: under the library, a
//            clean thread; without it, the thread inherits the taint
//   condvar  peer: the tainted creator asks a helper thread, started from
//            main in the baseline state, to create the thread, through a
//            mutex + condition variable; the helper replies the same way.
//            Handles every taint.
//   repair   peer: the tainted creator creates the thread itself; the new
//            thread setns()es back to the namespaces main opened at start
//            before its start routine. Handles namespaces only.
//
// Every create and concurrent run first checks what it measures: the
// creator's own state differs from the baseline in exactly the taint, and a
// thread it creates differs in what it reports as "child_dirty" (nothing, for
// the library and the peers). The runner refuses results that do not match.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/kcmp.h>
#include <aio.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
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

#include "../testapps/json_out.h"

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

bool LibraryLoaded() {
  FILE* f = fopen("/proc/self/maps", "r");
  if (f == nullptr) return false;
  char line[512];
  bool found = false;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "libpristine.so")) { found = true; break; }
  }
  fclose(f);
  return found;
}

// --- taints -------------------------------------------------------------------

enum TaintBit : unsigned {
  kNet = 1u << 0,
  kUts = 1u << 1,
  kIpc = 1u << 2,
  kCgroup = 1u << 3,
  kAffinity = 1u << 4,
  kFs = 1u << 5,
  kFiles = 1u << 6,
};
constexpr const char* kTaintNames[] = {"net", "uts", "ipc", "cgroup", "affinity", "fs", "files"};
constexpr int kTaintCount = 7;

// The namespace kinds, in TaintBit order (bit i is kNs[i]).
struct NsKind {
  const char* name;
  int flag;
};
constexpr NsKind kNs[] = {
    {"net", CLONE_NEWNET}, {"uts", CLONE_NEWUTS}, {"ipc", CLONE_NEWIPC}, {"cgroup", CLONE_NEWCGROUP}};
constexpr int kNsCount = 4;
constexpr unsigned kNsBits = kNet | kUts | kIpc | kCgroup;

unsigned ParseTaint(const std::string& s) {
  if (s.empty() || s == "none") return 0;
  unsigned bits = 0;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string name = s.substr(start, end - start);
    int i = 0;
    while (i < kTaintCount && name != kTaintNames[i]) ++i;
    if (i == kTaintCount) {
      fprintf(stderr, "pristine-bench: --taint takes none or a list of net, uts, ipc, cgroup, "
                      "affinity, fs, files; not %s\n", name.c_str());
      exit(2);
    }
    bits |= 1u << i;
    start = end + 1;
  }
  return bits;
}

void WriteTaint(JsonWriter* w, unsigned bits) {
  w->begin_array();
  for (int i = 0; i < kTaintCount; ++i) {
    if (bits & (1u << i)) w->value(kTaintNames[i]);
  }
  w->end_array();
}

// The baseline: main's state at start, read by SetUpBaseline before any other
// thread exists.
int g_baseline_ns_fd[kNsCount];     // main's namespaces (repair peer, floors)
ino_t g_baseline_ns_ino[kNsCount];  // ... their identities (checks)
cpu_set_t g_baseline_affinity;
std::vector<int> g_baseline_cpus;   // the CPUs of g_baseline_affinity, ascending
cpu_set_t g_online;                 // every configured CPU (the kernel keeps the usable ones)
pid_t g_main_tid;

unsigned g_taint = 0;   // --taint
long g_ns_pid = 0;      // --ns-pid

std::mutex g_taint_mu;
int g_tainted_ns_fd[kNsCount] = {-1, -1, -1, -1};  // the namespaces tainting threads enter

ino_t NsInode(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

void SetUpBaseline() {
  g_main_tid = getpid();
  for (int i = 0; i < kNsCount; ++i) {
    std::string path = std::string("/proc/self/ns/") + kNs[i].name;
    g_baseline_ns_fd[i] = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (g_baseline_ns_fd[i] < 0) Die(path.c_str(), errno);
    g_baseline_ns_ino[i] = NsInode(path.c_str());
  }
  if (sched_getaffinity(0, sizeof g_baseline_affinity, &g_baseline_affinity) != 0) {
    Die("sched_getaffinity", errno);
  }
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &g_baseline_affinity)) g_baseline_cpus.push_back(c);
  }
  CPU_ZERO(&g_online);
  long n = sysconf(_SC_NPROCESSORS_CONF);
  for (long c = 0; c < n && c < CPU_SETSIZE; ++c) CPU_SET(c, &g_online);
}

// The set tainting creator `index` gives itself (see the header).
cpu_set_t TaintedAffinity(long index) {
  cpu_set_t set;
  CPU_ZERO(&set);
  size_t n = g_baseline_cpus.size();
  if (n > 1) {
    CPU_SET(g_baseline_cpus[n - 1 - static_cast<size_t>(index) % n], &set);
  } else {
    set = g_online;
  }
  return set;
}

// The dimensions in which the calling thread differs from the baseline.
unsigned DirtyDims() {
  unsigned dirty = 0;
  for (int i = 0; i < kNsCount; ++i) {
    std::string path = std::string("/proc/thread-self/ns/") + kNs[i].name;
    if (NsInode(path.c_str()) != g_baseline_ns_ino[i]) dirty |= 1u << i;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0 || !CPU_EQUAL(&set, &g_baseline_affinity)) {
    dirty |= kAffinity;
  }
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  if (syscall(SYS_kcmp, g_main_tid, self, KCMP_FS, 0, 0) != 0) dirty |= kFs;
  if (syscall(SYS_kcmp, g_main_tid, self, KCMP_FILES, 0, 0) != 0) dirty |= kFiles;
  return dirty;
}

// Opens (or, without --ns-pid, makes by unsharing on the calling thread) the
// namespace of kind i that tainting threads enter. Returns true if the calling
// thread unshared it, and is in it already. Under g_taint_mu.
bool TaintedNamespace(int i) {
  if (g_tainted_ns_fd[i] >= 0) return false;
  if (g_ns_pid > 0) {
    std::string path = "/proc/" + std::to_string(g_ns_pid) + "/ns/" + kNs[i].name;
    g_tainted_ns_fd[i] = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (g_tainted_ns_fd[i] < 0) Die(path.c_str(), errno);
    return false;
  }
  if (unshare(kNs[i].flag) != 0) Die("unshare of a namespace (needs CAP_SYS_ADMIN)", errno);
  std::string path = std::string("/proc/thread-self/ns/") + kNs[i].name;
  g_tainted_ns_fd[i] = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (g_tainted_ns_fd[i] < 0) Die(path.c_str(), errno);
  return true;
}

// Gives the calling thread the taint `bits`; `index` tells creators apart.
void TaintCallingThread(unsigned bits, long index) {
  {
    std::lock_guard<std::mutex> lock(g_taint_mu);
    for (int i = 0; i < kNsCount; ++i) {
      if (!(bits & (1u << i))) continue;
      if (TaintedNamespace(i)) continue;
      if (setns(g_tainted_ns_fd[i], kNs[i].flag) != 0) Die("setns", errno);
    }
  }
  if (bits & kAffinity) {
    cpu_set_t set = TaintedAffinity(index);
    if (sched_setaffinity(0, sizeof set, &set) != 0) Die("sched_setaffinity", errno);
  }
  if ((bits & kFs) && unshare(CLONE_FS) != 0) Die("unshare(CLONE_FS)", errno);
  if ((bits & kFiles) && unshare(CLONE_FILES) != 0) Die("unshare(CLONE_FILES)", errno);
}

// --- the thread creators under test --------------------------------------------

std::atomic<int64_t> g_started_ns{0};

// The measured routine: records its first instruction's time (start latency).
void* Stamp(void*) {
  g_started_ns.store(NowNs(), std::memory_order_relaxed);
  return nullptr;
}

void* Empty(void*) { return nullptr; }

// The check routine: which dimensions differ from the baseline on a new thread.
void* Check(void* p) {
  static_cast<std::atomic<unsigned>*>(p)->fetch_or(DirtyDims());
  return nullptr;
}

// Peer: a helper thread, started from main, creates threads on request.
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

// Peer: the new thread re-enters the baseline's namespaces before the routine.
struct RepairArg {
  void* (*start)(void*);
  void* arg;
};

void* RepairStart(void* p) {
  RepairArg a = *static_cast<RepairArg*>(p);
  delete static_cast<RepairArg*>(p);
  for (int i = 0; i < kNsCount; ++i) {
    if ((g_taint & (1u << i)) && setns(g_baseline_ns_fd[i], kNs[i].flag) != 0) {
      Die("repair setns", errno);
    }
  }
  return a.start(a.arg);
}

int RepairCreate(pthread_t* t, void* (*start)(void*), void* arg) {
  RepairArg* a = new RepairArg{start, arg};
  int rc = pthread_create(t, nullptr, RepairStart, a);
  if (rc != 0) delete a;
  return rc;
}

enum class Mode { kPlain, kTaint, kCondvar, kRepair };

Mode ParseMode(const std::string& m) {
  if (m == "plain") return Mode::kPlain;
  if (m == "taint") return Mode::kTaint;
  if (m == "condvar") return Mode::kCondvar;
  if (m == "repair") return Mode::kRepair;
  fprintf(stderr, "pristine-bench: --mode is plain, taint, condvar or repair, not %s\n", m.c_str());
  exit(2);
}

// Sets up the process for `mode`; from main, before any creator runs.
void SetUpMode(Mode mode) {
  if (mode == Mode::kRepair && (g_taint & ~kNsBits) != 0) {
    fprintf(stderr, "pristine-bench: the repair peer handles namespaces only\n");
    exit(2);
  }
  if (mode == Mode::kCondvar) g_helper.Start();
}

inline int CreateOne(Mode mode, pthread_t* t, void* (*start)(void*), void* arg) {
  if (mode == Mode::kCondvar) return g_helper.Create(t, start, arg);
  if (mode == Mode::kRepair) return RepairCreate(t, start, arg);
  return pthread_create(t, nullptr, start, arg);
}

void CreateAndJoin(Mode mode, void* (*start)(void*), void* arg) {
  pthread_t t;
  int rc = CreateOne(mode, &t, start, arg);
  if (rc != 0) Die("pthread_create", rc);
  pthread_join(t, nullptr);
}

// Taints a creator (unless plain) and checks it; returns its dirty dimensions.
unsigned CreatorInit(Mode mode, long index) {
  if (mode != Mode::kPlain) TaintCallingThread(g_taint, index);
  return DirtyDims();
}

// What threads this creator makes differ in from the baseline (a few creates).
unsigned CheckChildren(Mode mode) {
  std::atomic<unsigned> dirty{0};
  for (int i = 0; i < 3; ++i) CreateAndJoin(mode, Check, &dirty);
  return dirty.load();
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

void WriteHeader(JsonWriter* w, const char* cmd) {
  w->key("cmd"); w->value(cmd);
  w->key("library_loaded"); w->value(LibraryLoaded());
  w->key("taint"); WriteTaint(w, g_taint);
}

// --- command line ---------------------------------------------------------------

struct Args {
  std::string cmd;
  std::string mode = "plain";
  std::string spawn_cmd = "true";
  std::string library;  // spawn: the library, and an empty library, to preload
  std::string empty;
  std::string call = "aio_write";
  long iters = 2000;
  long threads = 1;
  long ms = 300;
  long warmup_ms = 0;
  long creates = 0;
};

Args Parse(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    fprintf(stderr, "usage: pristine-bench create|concurrent|spawn|mem|libc|floor [options]\n");
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
    else if (k == "--taint") g_taint = ParseTaint(v);
    else if (k == "--ns-pid") g_ns_pid = atol(v.c_str());
    else if (k == "--iters") a.iters = atol(v.c_str());
    else if (k == "--threads") a.threads = atol(v.c_str());
    else if (k == "--ms") a.ms = atol(v.c_str());
    else if (k == "--warmup-ms") a.warmup_ms = atol(v.c_str());
    else if (k == "--cmd") a.spawn_cmd = v;
    else if (k == "--library") a.library = v;
    else if (k == "--empty") a.empty = v;
    else if (k == "--creates") a.creates = atol(v.c_str());
    else if (k == "--call") a.call = v;
    else {
      fprintf(stderr, "pristine-bench: unknown option %s\n", k.c_str());
      exit(2);
    }
  }
  return a;
}

// --- subcommands ------------------------------------------------------------------

// create+join, the pthread_create call, and the start latency (the call to the
// routine's first instruction): medians over iterations.
void CmdCreate(const Args& a) {
  Mode mode = ParseMode(a.mode);
  SetUpMode(mode);
  std::vector<double> total, call, start;
  total.reserve(a.iters);
  call.reserve(a.iters);
  start.reserve(a.iters);
  unsigned creator_dirty = 0, child_dirty = 0;
  OnWorker([&] {
    creator_dirty = CreatorInit(mode, 0);
    child_dirty = CheckChildren(mode);
    // Warm-up: at least iters/10 creates and --warmup-ms. On this VM the
    // first ~100 ms of a creating thread run in another regime (the
    // scheduler's load tracking of the new creator settles), which would make
    // a short run measure start-up rather than steady state, for either side.
    long warm = std::max(20L, a.iters / 10);
    int64_t warm_until = NowNs() + a.warmup_ms * 1000000;
    for (long i = 0; i < warm || NowNs() < warm_until; ++i) CreateAndJoin(mode, Empty, nullptr);
    for (long i = 0; i < a.iters; ++i) {
      pthread_t t;
      int64_t t0 = NowNs();
      int rc = CreateOne(mode, &t, Stamp, nullptr);
      int64_t t1 = NowNs();
      if (rc != 0) Die("pthread_create", rc);
      pthread_join(t, nullptr);
      int64_t t2 = NowNs();
      call.push_back(static_cast<double>(t1 - t0));
      total.push_back(static_cast<double>(t2 - t0));
      start.push_back(static_cast<double>(g_started_ns.load(std::memory_order_relaxed) - t0));
    }
  });
  JsonWriter w;
  w.begin_object();
  WriteHeader(&w, "create");
  w.key("mode"); w.value(a.mode);
  w.key("creator_dirty"); WriteTaint(&w, creator_dirty);
  w.key("child_dirty"); WriteTaint(&w, child_dirty);
  w.key("iters"); w.value(a.iters);
  w.key("create_join_ns"); w.value(static_cast<long long>(Median(total)));
  w.key("call_ns"); w.value(static_cast<long long>(Median(call)));
  w.key("start_ns"); w.value(static_cast<long long>(Median(start)));
  w.key("create_join_mean_ns"); w.value(static_cast<long long>(Mean(total)));
  w.key("call_mean_ns"); w.value(static_cast<long long>(Mean(call)));
  w.key("start_mean_ns"); w.value(static_cast<long long>(Mean(start)));
  w.end_object();
  puts(w.str().c_str());
}

// N concurrent creators, each looping create+join for a fixed time.
void CmdConcurrent(const Args& a) {
  Mode mode = ParseMode(a.mode);
  SetUpMode(mode);
  long n = std::max(1L, a.threads);
  std::atomic<long> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<unsigned> creator_dirty{0}, child_dirty{0};
  std::vector<long> counts(n, 0);
  std::vector<pthread_t> creators(n);
  struct Ctx {
    Mode mode; long index; std::atomic<long>* ready; std::atomic<bool>* go;
    std::atomic<bool>* stop; std::atomic<unsigned>* creator_dirty;
    std::atomic<unsigned>* child_dirty; long* count;
  };
  std::vector<Ctx> ctx(n);
  for (long i = 0; i < n; ++i) {
    ctx[i] = Ctx{mode, i, &ready, &go, &stop, &creator_dirty, &child_dirty, &counts[i]};
    int rc = pthread_create(&creators[i], nullptr, [](void* p) -> void* {
      Ctx* c = static_cast<Ctx*>(p);
      c->creator_dirty->fetch_or(CreatorInit(c->mode, c->index));
      pthread_t t;
      int rc2 = CreateOne(c->mode, &t, Check, c->child_dirty);
      if (rc2 != 0) Die("pthread_create", rc2);
      pthread_join(t, nullptr);
      c->ready->fetch_add(1);
      while (!c->go->load(std::memory_order_acquire)) sched_yield();
      long k = 0;
      while (!c->stop->load(std::memory_order_relaxed)) {
        CreateAndJoin(c->mode, Empty, nullptr);
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
  WriteHeader(&w, "concurrent");
  w.key("mode"); w.value(a.mode);
  w.key("creator_dirty"); WriteTaint(&w, creator_dirty.load());
  w.key("child_dirty"); WriteTaint(&w, child_dirty.load());
  w.key("threads"); w.value(n);
  w.key("creates"); w.value(total);
  w.key("creates_per_s"); w.value(static_cast<long long>(total / secs));
  w.key("ns_per_create"); w.value(static_cast<long long>(secs * 1e9 / std::max(1L, total)));
  w.end_object();
  puts(w.str().c_str());
}

// posix_spawn + waitpid of the command with nothing, the library and the
// empty library preloaded, in turn (the first of the three changes every
// iteration), so that each is measured beside the others at the same moment
// of a shared machine. LD_PRELOAD is set in the child's environment only.
void CmdSpawn(const Args& a) {
  if (a.library.empty() || a.empty.empty()) {
    fprintf(stderr, "pristine-bench: spawn needs --library and --empty\n");
    exit(2);
  }
  std::vector<std::string> base;
  for (char** e = environ; *e; ++e) {
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "PRISTINE_OPTIONS=", 17) == 0) continue;
    base.push_back(*e);
  }
  const char* names[3] = {"none", "library", "empty"};
  std::vector<std::string> env_store[3] = {base, base, base};
  env_store[1].push_back("LD_PRELOAD=" + a.library);
  env_store[2].push_back("LD_PRELOAD=" + a.empty);
  std::vector<char*> envp[3];
  for (int k = 0; k < 3; ++k) {
    for (auto& s : env_store[k]) envp[k].push_back(const_cast<char*>(s.c_str()));
    envp[k].push_back(nullptr);
  }
  std::vector<const char*> argv;
  if (a.spawn_cmd == "true") {
    argv = {"/bin/true", nullptr};
  } else if (a.spawn_cmd == "pipeline") {
    argv = {"/bin/sh", "-c", "/bin/true | /bin/true", nullptr};
  } else {
    fprintf(stderr, "pristine-bench: --cmd is true or pipeline\n");
    exit(2);
  }
  std::vector<double> v[3];
  long warm = std::max(3L, a.iters / 10);
  for (long i = 0; i < warm + a.iters; ++i) {
    for (int j = 0; j < 3; ++j) {
      int k = static_cast<int>((i + j) % 3);
      pid_t pid;
      int64_t t0 = NowNs();
      int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char**>(argv.data()),
                           envp[k].data());
      if (rc != 0) Die("posix_spawn", rc);
      int status;
      if (waitpid(pid, &status, 0) != pid) Die("waitpid", errno);
      int64_t t1 = NowNs();
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pristine-bench: %s (preload: %s) exited with status %d\n", argv[0],
                names[k], status);
        exit(1);
      }
      if (i >= warm) v[k].push_back(static_cast<double>(t1 - t0));
    }
  }
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("spawn");
  w.key("what"); w.value(a.spawn_cmd);
  w.key("iters"); w.value(a.iters);
  for (int k = 0; k < 3; ++k) {
    w.key(std::string(names[k]) + "_ns"); w.value(static_cast<long long>(Median(v[k])));
  }
  w.end_object();
  puts(w.str().c_str());
}

// Resident memory of this process after --creates creates (at least one) by a
// worker with --taint, from /proc/self/smaps_rollup.
void CmdMem(const Args& a) {
  OnWorker([&] {
    TaintCallingThread(g_taint, 0);
    for (long i = 0; i < std::max(1L, a.creates); ++i) CreateAndJoin(Mode::kTaint, Empty, nullptr);
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
  WriteHeader(&w, "mem");
  w.key("creates"); w.value(std::max(1L, a.creates));
  w.key("rss_kb"); w.value(rss);
  w.key("pss_kb"); w.value(pss);
  w.key("anon_kb"); w.value(anon);
  w.key("threads"); w.value(threads);
  w.end_object();
  puts(w.str().c_str());
}

void Notify(union sigval) {}

// A libc call that makes glibc start helper threads, from a worker with
// --taint: the call's own latency (aio_write: also until the write is done).
void CmdLibc(const Args& a) {
  if (a.call != "aio_write" && a.call != "timer_create") {
    fprintf(stderr, "pristine-bench: --call is aio_write or timer_create\n");
    exit(2);
  }
  std::vector<double> call, done;
  OnWorker([&] {
    TaintCallingThread(g_taint, 0);
    long warm = std::max(10L, a.iters / 10);
    if (a.call == "aio_write") {
      // /dev/null: the call's machinery, not the device.
      int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (fd < 0) Die("/dev/null", errno);
      static char buf[64];
      for (long i = 0; i < warm + a.iters; ++i) {
        struct aiocb cb;
        memset(&cb, 0, sizeof cb);
        cb.aio_fildes = fd;
        cb.aio_buf = buf;
        cb.aio_nbytes = sizeof buf;
        int64_t t0 = NowNs();
        if (aio_write(&cb) != 0) Die("aio_write", errno);
        int64_t t1 = NowNs();
        const struct aiocb* list[1] = {&cb};
        while (aio_error(&cb) == EINPROGRESS) aio_suspend(list, 1, nullptr);
        int64_t t2 = NowNs();
        if (aio_return(&cb) != static_cast<ssize_t>(sizeof buf)) Die("aio_return", errno);
        if (i >= warm) {
          call.push_back(static_cast<double>(t1 - t0));
          done.push_back(static_cast<double>(t2 - t0));
        }
      }
      close(fd);
    } else {
      // A timer with SIGEV_THREAD, never armed: glibc's helper thread is
      // started by the first; each call is glibc's bookkeeping plus the
      // kernel's timer.
      for (long i = 0; i < warm + a.iters; ++i) {
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD;
        sev.sigev_notify_function = Notify;
        timer_t timer;
        int64_t t0 = NowNs();
        if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) Die("timer_create", errno);
        int64_t t1 = NowNs();
        timer_delete(timer);
        if (i >= warm) {
          call.push_back(static_cast<double>(t1 - t0));
          done.push_back(static_cast<double>(t1 - t0));
        }
      }
    }
  });
  JsonWriter w;
  w.begin_object();
  WriteHeader(&w, "libc");
  w.key("call"); w.value(a.call);
  w.key("iters"); w.value(a.iters);
  w.key("call_ns"); w.value(static_cast<long long>(Median(call)));
  w.key("call_mean_ns"); w.value(static_cast<long long>(Mean(call)));
  w.key("done_ns"); w.value(static_cast<long long>(Median(done)));
  w.end_object();
  puts(w.str().c_str());
}

// --- physical floors --------------------------------------------------------------

long Futex(std::atomic<uint32_t>* w, int op, uint32_t v) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op, v, nullptr, nullptr, 0);
}

#if defined(__x86_64__)
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
#endif

// The futex wake round trip between two threads: A wakes B, B wakes A.
double FutexRoundTripNs(long n) {
  std::atomic<uint32_t> ping{0}, pong{0};
  pthread_t peer;
  struct PP { std::atomic<uint32_t>* ping; std::atomic<uint32_t>* pong; long n; };
  PP pp{&ping, &pong, n + n / 10};
  int rc = pthread_create(&peer, nullptr, [](void* p) -> void* {
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
  if (rc != 0) Die("pthread_create", rc);
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
  return Median(rt);
}

// One setns() into namespace kind i: half of a switch to another namespace and
// back. Runs on a worker thread, which ends in the baseline's namespace.
double SetnsNs(int i, long n) {
  double result = -1;
  OnWorker([&] {
    int other;
    {
      std::lock_guard<std::mutex> lock(g_taint_mu);
      TaintedNamespace(i);
      other = g_tainted_ns_fd[i];
    }
    int base = g_baseline_ns_fd[i];
    int flag = kNs[i].flag;
    if (setns(base, flag) != 0) Die("setns", errno);
    std::vector<double> v;
    for (long k = 0; k < n + n / 10; ++k) {
      int64_t t0 = NowNs();
      if (setns(other, flag) != 0 || setns(base, flag) != 0) Die("setns", errno);
      int64_t t1 = NowNs();
      if (k >= n / 10) v.push_back(static_cast<double>(t1 - t0) / 2);
    }
    result = Median(v);
  });
  return result;
}

// One sched_setaffinity() of the calling thread to a set that keeps its CPU:
// half of a switch between {its CPU} and every CPU. -1 with one CPU.
double SetAffinityNs(long n) {
  double result = -1;
  OnWorker([&] {
    cpu_set_t one, all = g_online;
    CPU_ZERO(&one);
    int cpu = sched_getcpu();
    if (cpu < 0) Die("sched_getcpu", errno);
    CPU_SET(cpu, &one);
    if (CPU_EQUAL(&one, &all)) return;
    if (sched_setaffinity(0, sizeof one, &one) != 0) Die("sched_setaffinity", errno);
    std::vector<double> v;
    for (long k = 0; k < n + n / 10; ++k) {
      int64_t t0 = NowNs();
      if (sched_setaffinity(0, sizeof all, &all) != 0 ||
          sched_setaffinity(0, sizeof one, &one) != 0) {
        Die("sched_setaffinity", errno);
      }
      int64_t t1 = NowNs();
      if (k >= n / 10) v.push_back(static_cast<double>(t1 - t0) / 2);
    }
    result = Median(v);
  });
  return result;
}

void CmdFloor(const Args& a) {
  long n = a.iters;
  double futex_rt = FutexRoundTripNs(n);

  // A bare clone + exit + wait, and the clone call alone.
  double clone_wait = -1, clone_call = -1;
#if defined(__x86_64__)
  {
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
    clone_wait = Median(cl);
    clone_call = Median(cl_call);
  }
#endif

  // One system call (getppid).
  std::vector<double> sc;
  for (long i = 0; i < 1000; ++i) {
    int64_t t0 = NowNs();
    for (int j = 0; j < 100; ++j) syscall(SYS_getppid);
    sc.push_back(static_cast<double>(NowNs() - t0) / 100);
  }

  double setns_ns[kNsCount];
  for (int i = 0; i < kNsCount; ++i) setns_ns[i] = SetnsNs(i, n);
  double affinity = SetAffinityNs(n);

  auto put = [](JsonWriter* w, const char* key, double ns) {
    w->key(key);
    if (ns < 0) w->null();
    else w->value(static_cast<long long>(ns));
  };
  JsonWriter w;
  w.begin_object();
  w.key("cmd"); w.value("floor");
  w.key("library_loaded"); w.value(LibraryLoaded());
  put(&w, "futex_round_trip_ns", futex_rt);
  put(&w, "clone_exit_wait_ns", clone_wait);
  put(&w, "clone_call_ns", clone_call);
  put(&w, "syscall_ns", Median(sc));
  for (int i = 0; i < kNsCount; ++i) {
    put(&w, (std::string("setns_") + kNs[i].name + "_ns").c_str(), setns_ns[i]);
  }
  put(&w, "sched_setaffinity_ns", affinity);
  w.end_object();
  puts(w.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  SetUpBaseline();
  if (a.cmd == "create") CmdCreate(a);
  else if (a.cmd == "concurrent") CmdConcurrent(a);
  else if (a.cmd == "spawn") CmdSpawn(a);
  else if (a.cmd == "mem") CmdMem(a);
  else if (a.cmd == "libc") CmdLibc(a);
  else if (a.cmd == "floor") CmdFloor(a);
  else {
    fprintf(stderr, "pristine-bench: unknown command %s\n", a.cmd.c_str());
    return 2;
  }
  fflush(stdout);
  // The condvar helper and glibc's aio and timer helpers never exit: leave
  // without joining them.
  _exit(0);
}
