// SPDX-License-Identifier: Apache-2.0
// property: random sequences of taints on random threads, creates through random APIs, and a
// check of every new thread against a model of the default policy:
//   isolate  net uts ipc mnt cgroup (namespaces), fs (kcmp with the main thread), files (kcmp),
//            affinity                      -> the new thread has the baseline's
//   inherit  sigmask, nice, name           -> the new thread has its creator's (the model's value)
// The main thread stays in the baseline and only dispatches: one command at a time to one worker,
// waiting for it to finish, so a seed gives the same sequence every time (printed on stderr and in
// the JSON; reproduce with --seed).
//
//   property [--seed N] [--steps N] [--max-workers N]
// Output: one JSON line {"seed", "steps", "creates", "spawns", "taints", "mismatches", "first"}.
// Exit: 0 no mismatch, 1 mismatches, 2 usage, 3 cannot run here (no namespaces: needs root).

#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "thread_state.h"

namespace {

const char* const kNs[] = {"net", "uts", "ipc", "mnt", "cgroup"};
constexpr int kNsCount = 5;

struct Baseline {
  long long ns[kNsCount];
  cpu_set_t affinity;
  pid_t main_tid;
  int net_fd;
} g_base;

using testapp::NsInode;

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// The inherited values the model predicts for a thread's children.
struct Model {
  uint64_t sigmask = 0;
  int nice = 0;
  std::string name;
};

uint64_t ReadMask() {
  sigset_t s;
  pthread_sigmask(SIG_BLOCK, nullptr, &s);
  uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == 32 || sig == 33) continue;
    if (sigismember(&s, sig) == 1) bits |= 1ull << (sig - 1);
  }
  return bits;
}

std::string ReadName() {
  char n[17] = {};
  prctl(PR_GET_NAME, n);
  return n;
}

int ReadNice() {
  errno = 0;
  return getpriority(PRIO_PROCESS, static_cast<id_t>(Tid()));
}

std::mutex g_log_mu;
std::vector<std::string> g_mismatches;
std::atomic<long> g_creates{0};  // workers create at the same time in simultaneous steps
long g_spawns = 0, g_taints = 0;

void Mismatch(const std::string& what) {
  std::lock_guard<std::mutex> l(g_log_mu);
  g_mismatches.push_back(what);
}

// Run on a new thread: compares its state with the policy model. `ctx` names the step.
void CheckNewThread(const Model& m, const std::string& ctx) {
  for (int i = 0; i < kNsCount; ++i) {
    if (NsInode(kNs[i]) != g_base.ns[i]) Mismatch(ctx + ": " + kNs[i] + " is not the baseline's");
  }
  pid_t self = Tid();
  if (syscall(SYS_kcmp, g_base.main_tid, self, KCMP_FS, 0, 0) != 0)
    Mismatch(ctx + ": fs is not shared with the baseline");
  if (syscall(SYS_kcmp, g_base.main_tid, self, KCMP_FILES, 0, 0) != 0)
    Mismatch(ctx + ": files is not shared with the baseline");
  cpu_set_t aff;
  if (sched_getaffinity(0, sizeof aff, &aff) != 0 || !CPU_EQUAL(&aff, &g_base.affinity))
    Mismatch(ctx + ": affinity is not the baseline's");
  if (ReadMask() != m.sigmask) {
    char b[96];
    std::snprintf(b, sizeof b, ": sigmask 0x%llx, creator's 0x%llx",
                  (unsigned long long)ReadMask(), (unsigned long long)m.sigmask);
    Mismatch(ctx + b);
  }
  if (ReadNice() != m.nice)
    Mismatch(ctx + ": nice " + std::to_string(ReadNice()) + ", creator's " + std::to_string(m.nice));
  if (ReadName() != m.name) Mismatch(ctx + ": name '" + ReadName() + "', creator's '" + m.name + "'");
}

// ---------------------------------------------------------------------------------------------

struct Worker {
  int id = 0;
  Model model;
  std::mutex mu;
  std::condition_variable cv;
  std::function<void()> cmd;
  bool busy = false;
  bool quit = false;
  bool exited = false;
  std::thread::id tid;
  pthread_t handle{};
  bool is_pthread = false;  // created with pthread_create (else std::thread `th`)
  std::thread th;

  void Loop() {
    std::unique_lock<std::mutex> l(mu);
    while (true) {
      cv.wait(l, [&] { return busy || quit; });
      if (quit && !busy) break;
      auto c = std::move(cmd);
      l.unlock();
      c();
      l.lock();
      busy = false;
      cv.notify_all();
      if (quit) break;
    }
    exited = true;
    cv.notify_all();
  }

  void Run(std::function<void()> c) {
    Start(std::move(c));
    Wait();
  }

  // Start and Wait: several workers run commands at the same time.
  void Start(std::function<void()> c) {
    std::unique_lock<std::mutex> l(mu);
    cmd = std::move(c);
    busy = true;
    cv.notify_all();
  }

  void Wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return !busy; });
  }

  void Quit() {
    std::unique_lock<std::mutex> l(mu);
    quit = true;
    cv.notify_all();
    cv.wait(l, [&] { return exited; });
  }
};

std::vector<std::unique_ptr<Worker>> g_workers;  // main thread only
int g_next_id = 0;

struct SpawnArgs {
  Worker* w;
  std::string ctx;
};

void* WorkerMainP(void* p) {
  auto* a = static_cast<SpawnArgs*>(p);
  CheckNewThread(a->w->model, a->ctx);
  Worker* w = a->w;
  delete a;
  w->Loop();
  return nullptr;
}

// Creates a child through API `api`, which checks itself against `m`; waits for it.
void CreateChild(int api, const Model& m, const std::string& ctx) {
  g_creates++;
  std::string c = ctx;
  switch (api) {
    case 0: {  // pthread, joined
      auto* args = new std::pair<Model, std::string>(m, c);
      pthread_t t;
      int rc = pthread_create(&t, nullptr, [](void* p) -> void* {
        auto* a = static_cast<std::pair<Model, std::string>*>(p);
        CheckNewThread(a->first, a->second);
        delete a;
        return nullptr;
      }, args);
      if (rc != 0) {
        delete args;
        Mismatch(ctx + ": pthread_create failed");
      } else {
        pthread_join(t, nullptr);
      }
      break;
    }
    case 1: {  // pthread, detached: waits on a semaphore instead
      struct A {
        Model m;
        std::string c;
        sem_t done;
      } a{m, c, {}};
      sem_init(&a.done, 0, 0);
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_t t;
      int rc = pthread_create(&t, &attr, [](void* p) -> void* {
        auto* a = static_cast<A*>(p);
        CheckNewThread(a->m, a->c);
        sem_post(&a->done);
        return nullptr;
      }, &a);
      pthread_attr_destroy(&attr);
      if (rc != 0) Mismatch(ctx + ": detached pthread_create failed");
      else while (sem_wait(&a.done) != 0) {}
      sem_destroy(&a.done);
      break;
    }
    case 2: {  // std::thread
      std::thread t([&] { CheckNewThread(m, c); });
      t.join();
      break;
    }
    case 3: {  // C11 thrd_create
      auto* args = new std::pair<Model, std::string>(m, c);
      thrd_t t;
      int rc = thrd_create(&t, [](void* p) -> int {
        auto* a = static_cast<std::pair<Model, std::string>*>(p);
        CheckNewThread(a->first, a->second);
        delete a;
        return 0;
      }, args);
      if (rc != thrd_success) {
        delete args;
        Mismatch(ctx + ": thrd_create failed");
      } else {
        thrd_join(t, nullptr);
      }
      break;
    }
    default: {  // std::async (a new thread with launch::async)
      auto f = std::async(std::launch::async, [&] { CheckNewThread(m, c); });
      f.get();
      break;
    }
  }
}

// A taint (isolated or inherited dimension) of kind `kind` (0..11), applied by worker `w` to
// itself, on its own thread; `r` chooses the values. Updates the worker's model.
void ApplyTaint(Worker* w, int kind, uint64_t r, const std::vector<int>& cpus) {
  static const int sigs[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGTERM, SIGRTMIN + 2};
  switch (kind) {
    case 0: unshare(CLONE_NEWNET); break;
    case 1: unshare(CLONE_NEWUTS); break;
    case 2: unshare(CLONE_NEWIPC); break;
    case 3: unshare(CLONE_NEWNS); break;
    case 4: unshare(CLONE_NEWCGROUP); break;
    case 5:
      unshare(CLONE_FS);
      if (chdir("/tmp") != 0) std::perror("property: chdir");
      umask(077);
      break;
    case 6: unshare(CLONE_FILES); break;
    case 7: {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[r % cpus.size()], &one);
      sched_setaffinity(0, sizeof one, &one);
      break;
    }
    case 8: setns(g_base.net_fd, CLONE_NEWNET); break;  // back to the baseline netns
    case 9: {
      sigset_t s;
      sigemptyset(&s);
      int sig = sigs[r % 5];
      sigaddset(&s, sig);
      bool unblock = (r >> 8) & 1;
      if (pthread_sigmask(unblock ? SIG_UNBLOCK : SIG_BLOCK, &s, nullptr) == 0) {
        uint64_t bit = 1ull << (sig - 1);
        w->model.sigmask = unblock ? (w->model.sigmask & ~bit) : (w->model.sigmask | bit);
      }
      break;
    }
    case 10: {
      int n = static_cast<int>(r % 20);
      if (setpriority(PRIO_PROCESS, static_cast<id_t>(Tid()), n) == 0) w->model.nice = n;
      break;
    }
    default: {
      std::string name = "w" + std::to_string(w->id) + "-" + std::to_string(r % 1000);
      if (pthread_setname_np(pthread_self(), name.c_str()) == 0) w->model.name = name;
      break;
    }
  }
}

const char* const kApis[] = {"pthread", "pthread-detached", "std::thread", "thrd_create",
                             "std::async"};

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 0;
  int steps = 200, max_workers = 6;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "property: missing value for %s\n", a.c_str());
      return 2;
    }
    if (a == "--seed") seed = std::strtoull(argv[++i], nullptr, 0);
    else if (a == "--steps") steps = std::atoi(argv[++i]);
    else if (a == "--max-workers") max_workers = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: property [--seed N] [--steps N] [--max-workers N]\n");
      return 2;
    }
  }
  if (seed == 0) seed = static_cast<uint64_t>(time(nullptr)) ^ (static_cast<uint64_t>(getpid()) << 20);
  std::fprintf(stderr, "property: seed %llu (reproduce with --seed %llu)\n",
               (unsigned long long)seed, (unsigned long long)seed);
  std::mt19937_64 rng(seed);

  for (int i = 0; i < kNsCount; ++i) g_base.ns[i] = NsInode(kNs[i]);
  for (long long ino : g_base.ns)
    if (ino < 0) testapp::CannotRunHere("cannot read /proc/thread-self/ns");
  sched_getaffinity(0, sizeof g_base.affinity, &g_base.affinity);
  g_base.main_tid = Tid();
  g_base.net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (geteuid() != 0 || g_base.net_fd < 0) {
    std::fprintf(stderr, "property: cannot run here: needs root (namespaces)\n");
    return 3;
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &g_base.affinity)) cpus.push_back(c);

  Model main_model{ReadMask(), ReadNice(), ReadName()};

  auto spawn_from_main = [&]() {
    auto w = std::make_unique<Worker>();
    w->id = g_next_id++;
    w->model = main_model;
    auto* args = new SpawnArgs{w.get(), "worker " + std::to_string(w->id) + " (from main)"};
    pthread_create(&w->handle, nullptr, WorkerMainP, args);
    w->is_pthread = true;
    g_workers.push_back(std::move(w));
  };
  spawn_from_main();
  spawn_from_main();
  // Half the seeds start with simultaneous first changes (nothing of the library runs yet);
  // later simultaneous steps find it running.
  bool cold_start = (rng() & 1) != 0;

  for (int step = 0; step < steps; ++step) {
    Worker* w = g_workers[rng() % g_workers.size()].get();
    int op = static_cast<int>(rng() % 100);
    std::string ctx = "step " + std::to_string(step) + " worker " + std::to_string(w->id);
    if (step == 0 && cold_start) op = 40;  // the process's first change, made by several at once
    if (op >= 40 && op < 48 && g_workers.size() > 1) {
      // Several workers change their state at the same moment (released through a barrier),
      // each with its own kind of taint, and create a thread right after: at step 0 these are
      // the process's first changes.
      size_t n = std::min<size_t>(g_workers.size(), 2 + rng() % 3);
      std::vector<Worker*> chosen;
      for (size_t i = 0; i < g_workers.size() && chosen.size() < n; ++i) {
        if (rng() % (g_workers.size() - i) < n - chosen.size()) chosen.push_back(g_workers[i].get());
      }
      pthread_barrier_t barrier;
      pthread_barrier_init(&barrier, nullptr, static_cast<unsigned>(chosen.size()));
      for (Worker* c : chosen) {
        int kind = static_cast<int>(rng() % 12);
        uint64_t r = rng();
        int api = static_cast<int>(rng() % 5);
        std::string cc = ctx + " together with " + std::to_string(chosen.size() - 1) +
                         " other workers, then create via " + kApis[api];
        g_taints++;
        c->Start([&, c, kind, r, api, cc] {
          pthread_barrier_wait(&barrier);
          ApplyTaint(c, kind, r, cpus);
          CreateChild(api, c->model, cc);
        });
      }
      for (Worker* c : chosen) c->Wait();
      pthread_barrier_destroy(&barrier);
      continue;
    }
    if (op < 40) {
      // A taint (isolated or inherited dimension), applied by the worker to itself.
      int kind = static_cast<int>(rng() % 12);
      uint64_t r = rng();
      g_taints++;
      w->Run([&, kind, r] { ApplyTaint(w, kind, r, cpus); });
    } else if (op < 85) {
      int api = static_cast<int>(rng() % 5);
      std::string c = ctx + " create via " + kApis[api];
      w->Run([&, api, c] { CreateChild(api, w->model, c); });
    } else if (op < 95 && static_cast<int>(g_workers.size()) < max_workers) {
      // The worker starts a new worker: the new thread is itself checked, then takes commands.
      g_spawns++;
      auto nw = std::make_unique<Worker>();
      nw->id = g_next_id++;
      Worker* raw = nw.get();
      bool use_pthread = rng() & 1;
      std::string c = ctx + " spawns worker " + std::to_string(nw->id) +
                      (use_pthread ? " via pthread" : " via std::thread");
      w->Run([&, raw, use_pthread, c] {
        raw->model = w->model;  // what the new thread should inherit
        if (use_pthread) {
          auto* args = new SpawnArgs{raw, c};
          if (pthread_create(&raw->handle, nullptr, WorkerMainP, args) != 0) {
            delete args;
            Mismatch(c + ": pthread_create failed");
            raw->exited = true;
          }
          raw->is_pthread = true;
        } else {
          raw->th = std::thread([raw, c] {
            CheckNewThread(raw->model, c);
            raw->Loop();
          });
        }
      });
      g_workers.push_back(std::move(nw));
    } else if (g_workers.size() > 1) {
      // The worker exits.
      size_t idx = 0;
      while (g_workers[idx].get() != w) ++idx;
      w->Quit();
      if (w->is_pthread) pthread_join(w->handle, nullptr);
      else if (w->th.joinable()) w->th.join();
      g_workers.erase(g_workers.begin() + static_cast<long>(idx));
    }
  }
  for (auto& w : g_workers) {
    w->Quit();
    if (w->is_pthread) pthread_join(w->handle, nullptr);
    else if (w->th.joinable()) w->th.join();
  }
  std::string first;
  for (size_t i = 0; i < g_mismatches.size() && i < 20; ++i) {
    std::string m = g_mismatches[i];
    for (char& ch : m)
      if (ch == '"' || ch == '\\') ch = '\'';
    first += (i ? ", \"" : "\"") + m + "\"";
  }
  std::printf("{\"seed\": %llu, \"steps\": %d, \"creates\": %ld, \"spawns\": %ld, \"taints\": %ld, "
              "\"mismatches\": %zu, \"first\": [%s]}\n",
              (unsigned long long)seed, steps, g_creates.load(), g_spawns, g_taints,
              g_mismatches.size(), first.c_str());
  return g_mismatches.empty() ? 0 : 1;
}
