// SPDX-License-Identifier: Apache-2.0
// stress: many tainted and clean creators at once, under (or without) libpristine.so.
//
// Threads:
//   creators   create children in a loop through a random API (pthread joined/detached,
//              std::thread joined/detached, thrd_create joined/detached). Half of them are
//              "tainted": they enter a second network namespace (setns), pin themselves to one CPU,
//              and keep changing their name and signal mask, sometimes going back to the baseline
//              netns. Every creator exits after a random number of creates and is replaced.
//   forker     forks (from a tainted or a clean state); the child checks its own state, creates one
//              thread that checks its state against the forking thread's (the child's baseline),
//              and exits with a status the parent checks. Every other child first releases 2-4
//              threads at once into different first changes (netns, fs, fd table, affinity),
//              each creating a thread that must be in the child's baseline; half of those with
//              the library already running in the child (a tainted create before the race).
//   signaller  sends SIGUSR1 (handler without SA_RESTART) to random creators, which spend most of
//              their time inside pthread_create (the handoff wait, under the shim).
//   watchdog   if no progress for --hang-seconds, dumps every thread's state (and gdb backtraces if
//              gdb is installed), prints the counters, and exits 4.
//
// Every created thread checks its own state against the default policy: net namespace and CPU
// affinity are the baseline's (isolate), name and signal mask are the creator's (inherit).
//
// Counters printed at the end (one "stress: key=value ..." line and one JSON line):
//   creates (successful create calls), started/finished (children that ran), forks,
//   wrong_states (children whose state broke the policy), lost (created but never started),
//   doubled (started more than once), fork_failures (a forked child that reported a problem),
//   create_errors (create calls that failed), hangs, signals.
// Exit: 0 all figures clean, 1 wrong states / lost / doubled / fork failures / create errors,
//       2 bad usage, 3 the machine cannot run it (no netns), 4 hang (watchdog).
//
//   stress [--creates N] [--forks N] [--creators N] [--seconds S] [--hang-seconds S] [--seed N]
//          [--quiet] [--simulate-hang]
// --simulate-hang is the watchdog's self-test: children block forever after 100 creates.
// Runs until both --creates and --forks are reached (or --seconds passed, if given).

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <threads.h>
#include <unistd.h>
#include <dirent.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "thread_state.h"

namespace {

struct Config {
  uint64_t creates = 20000;
  uint64_t forks = 20;
  int creators = 8;
  double seconds = 0;  // 0: no time limit
  int hang_seconds = 60;
  uint64_t seed = 0;
  bool quiet = false;
  bool simulate_hang = false;  // self-test of the watchdog: children block forever
} g_cfg;

// Baseline, recorded by the main thread before anything else.
long long g_base_net = -1;
cpu_set_t g_base_affinity;
int g_base_net_fd = -1;
int g_alt_net_fd = -1;
int g_ncpus = 1;

std::atomic<uint64_t> g_created{0}, g_started{0}, g_finished{0}, g_doubled{0}, g_wrong{0};
std::atomic<uint64_t> g_create_errors{0}, g_forks{0}, g_fork_failures{0}, g_signals_sent{0};
std::atomic<uint64_t> g_signals_received{0}, g_detached_live{0}, g_creators_started{0};
std::atomic<bool> g_stop{false};
std::atomic<int> g_wrong_printed{0};

void Wrong(const char* what, const char* detail) {
  g_wrong.fetch_add(1);
  if (g_wrong_printed.fetch_add(1) < 10) {
    std::fprintf(stderr, "stress: wrong state: %s %s\n", what, detail);
  }
}

long long NetInode() { return testapp::NsInode("net"); }

uint64_t SigmaskBits() {
  sigset_t s;
  pthread_sigmask(SIG_BLOCK, nullptr, &s);
  uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == 32 || sig == 33) continue;  // glibc internal
    if (sigismember(&s, sig) == 1) bits |= 1ull << (sig - 1);
  }
  return bits;
}

void ThreadName(char out[16]) {
  std::memset(out, 0, 16);
  prctl(PR_GET_NAME, out);
}

// What a child must see: the creator's name and mask (inherit), the baseline's net and affinity.
struct Task {
  char name[16];
  uint64_t sigmask;
  std::atomic<int> runs{0};
  bool detached = false;
};

void ChildCheck(Task* t) {
  if (t->runs.fetch_add(1) != 0) g_doubled.fetch_add(1);
  if (g_started.fetch_add(1) >= 100 && g_cfg.simulate_hang) {
    for (;;) pause();
  }
  long long net = NetInode();
  if (net != g_base_net) {
    char d[96];
    std::snprintf(d, sizeof d, "(inode %lu, baseline %lu)", (unsigned long)net,
                  (unsigned long)g_base_net);
    Wrong("net", d);
  }
  cpu_set_t aff;
  if (sched_getaffinity(0, sizeof aff, &aff) != 0 || !CPU_EQUAL(&aff, &g_base_affinity)) {
    Wrong("affinity", "(not the baseline CPU set)");
  }
  char name[16];
  ThreadName(name);
  if (std::strncmp(name, t->name, 16) != 0) {
    char d[64];
    std::snprintf(d, sizeof d, "('%s', creator '%s')", name, t->name);
    Wrong("name", d);
  }
  uint64_t mask = SigmaskBits();
  if (mask != t->sigmask) {
    char d[64];
    std::snprintf(d, sizeof d, "(0x%llx, creator 0x%llx)", (unsigned long long)mask,
                  (unsigned long long)t->sigmask);
    Wrong("sigmask", d);
  }
  bool detached = t->detached;
  g_finished.fetch_add(1);
  if (detached) {
    delete t;
    g_detached_live.fetch_sub(1);
  }
}

void* PthreadChild(void* p) {
  ChildCheck(static_cast<Task*>(p));
  return nullptr;
}

int ThrdChild(void* p) {
  ChildCheck(static_cast<Task*>(p));
  return 0;
}

// One create through `api` (0..5). Returns false if the create failed.
bool CreateOne(int api, std::mt19937_64& rng) {
  bool detached = (api & 1) != 0;
  if (detached && g_detached_live.load() > 128) detached = false;  // bound outstanding threads
  Task* t = new Task;
  ThreadName(t->name);
  t->sigmask = SigmaskBits();
  t->detached = detached;
  if (detached) g_detached_live.fetch_add(1);
  int kind = api / 2;
  (void)rng;
  if (kind == 0) {
    pthread_t th;
    int rc = pthread_create(&th, nullptr, PthreadChild, t);
    if (rc != 0) {
      if (detached) g_detached_live.fetch_sub(1);
      delete t;
      g_create_errors.fetch_add(1);
      return false;
    }
    g_created.fetch_add(1);
    if (detached) pthread_detach(th);
    else {
      pthread_join(th, nullptr);
      if (t->runs.load() != 1) g_doubled.fetch_add(t->runs.load() > 1 ? 1 : 0);
      delete t;
    }
  } else if (kind == 1) {
    try {
      std::thread th(ChildCheck, t);
      g_created.fetch_add(1);
      if (detached) th.detach();
      else {
        th.join();
        delete t;
      }
    } catch (const std::system_error&) {
      if (detached) g_detached_live.fetch_sub(1);
      delete t;
      g_create_errors.fetch_add(1);
      return false;
    }
  } else {
    thrd_t th;
    int rc = thrd_create(&th, ThrdChild, t);
    if (rc != thrd_success) {
      if (detached) g_detached_live.fetch_sub(1);
      delete t;
      g_create_errors.fetch_add(1);
      return false;
    }
    g_created.fetch_add(1);
    if (detached) thrd_detach(th);
    else {
      thrd_join(th, nullptr);
      delete t;
    }
  }
  return true;
}

// Creator slots, for the signaller.
std::mutex g_slots_mu;
std::vector<pthread_t> g_slots;
std::vector<bool> g_slot_live;

void SetTainted(bool on, std::mt19937_64& rng) {
  if (on) {
    if (setns(g_alt_net_fd, CLONE_NEWNET) != 0) std::perror("stress: setns alt");
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(static_cast<int>(rng() % g_ncpus), &one);
    // Only CPUs of the baseline set.
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &g_base_affinity) && n++ == static_cast<int>(rng() % g_ncpus)) {
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        break;
      }
    }
    sched_setaffinity(0, sizeof one, &one);
  } else {
    if (setns(g_base_net_fd, CLONE_NEWNET) != 0) std::perror("stress: setns base");
    sched_setaffinity(0, sizeof g_base_affinity, &g_base_affinity);
  }
}

void ChangeInherited(std::mt19937_64& rng, int id) {
  char name[16];
  std::snprintf(name, sizeof name, "cr%d-%u", id, static_cast<unsigned>(rng() % 1000));
  pthread_setname_np(pthread_self(), name);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask((rng() & 1) ? SIG_BLOCK : SIG_UNBLOCK, &s, nullptr);
}

void Creator(int slot, uint64_t seed) {
  std::mt19937_64 rng(seed);
  bool tainted_kind = (slot % 2) == 0;
  int id = slot;
  ChangeInherited(rng, id);
  bool tainted = false;
  if (tainted_kind) {
    SetTainted(true, rng);
    tainted = true;
  }
  int budget = 200 + static_cast<int>(rng() % 2000);
  for (int i = 0; i < budget && !g_stop.load(std::memory_order_relaxed); ++i) {
    int r = static_cast<int>(rng() % 100);
    if (r < 2) ChangeInherited(rng, id);
    else if (r < 4 && tainted_kind) {
      tainted = !tainted;
      SetTainted(tainted, rng);
    }
    CreateOne(static_cast<int>(rng() % 6), rng);
  }
  std::lock_guard<std::mutex> l(g_slots_mu);
  g_slot_live[slot] = false;
}

void* CreatorMain(void* p) {
  auto* args = static_cast<std::pair<int, uint64_t>*>(p);
  Creator(args->first, args->second);
  delete args;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Fork: the child runs single-threaded; its baseline is the forking thread's state.

struct ForkChildResult {
  long long expect_net;
  std::atomic<int> bad{0};
};

void* ForkChildThread(void* p) {
  auto* r = static_cast<ForkChildResult*>(p);
  if (NetInode() != r->expect_net) r->bad |= 4;
  return nullptr;
}

// In a forked child: K threads released at once into different first changes (the child's
// first: nothing of the library runs in it yet, unless `warm`), each then creating a thread
// that must be in the child's baseline: net namespace, fs and fd table shared with the child's
// main thread, its CPU affinity.
struct FirstChangeRace {
  long long net;
  pid_t main_tid;
  cpu_set_t affinity;
  pthread_barrier_t barrier;
  ForkChildResult* result;
};

struct RaceWorker {
  FirstChangeRace* race;
  int kind;
};

void* RaceChild(void* p) {
  auto* race = static_cast<FirstChangeRace*>(p);
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  cpu_set_t aff;
  if (NetInode() != race->net) race->result->bad |= 8;
  if (syscall(SYS_kcmp, race->main_tid, self, KCMP_FILES, 0, 0) != 0 ||
      syscall(SYS_kcmp, race->main_tid, self, KCMP_FS, 0, 0) != 0) {
    race->result->bad |= 16;
  }
  if (sched_getaffinity(0, sizeof aff, &aff) != 0 || !CPU_EQUAL(&aff, &race->affinity)) {
    race->result->bad |= 32;
  }
  return nullptr;
}

void* RaceWorkerMain(void* p) {
  auto* w = static_cast<RaceWorker*>(p);
  pthread_barrier_wait(&w->race->barrier);
  switch (w->kind) {
    case 0: unshare(CLONE_NEWNET); break;
    case 1: setns(g_alt_net_fd, CLONE_NEWNET); break;
    case 2: {
      if (unshare(CLONE_FS) == 0 && chdir("/") != 0) std::perror("stress: chdir");
      break;
    }
    case 3: unshare(CLONE_FILES); break;
    default: {
      // Another CPU set than the child's: one CPU, or all of them when it has one.
      cpu_set_t set;
      CPU_ZERO(&set);
      if (CPU_COUNT(&w->race->affinity) > 1) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
          if (CPU_ISSET(c, &w->race->affinity)) {
            CPU_SET(c, &set);
            break;
          }
        }
      } else {
        for (int c = 0; c < g_ncpus; ++c) CPU_SET(c, &set);
      }
      sched_setaffinity(0, sizeof set, &set);
      break;
    }
  }
  pthread_t t;
  if (pthread_create(&t, nullptr, RaceChild, w->race) != 0) w->race->result->bad |= 64;
  else pthread_join(t, nullptr);
  return nullptr;
}

void* WarmChild(void*) { return nullptr; }

void* WarmUp(void*) {
  pthread_t t;
  if (unshare(CLONE_NEWUTS) == 0 && pthread_create(&t, nullptr, WarmChild, nullptr) == 0) {
    pthread_join(t, nullptr);
  }
  return nullptr;
}

void RaceFirstChanges(ForkChildResult* r, std::mt19937_64& rng, bool warm) {
  FirstChangeRace race;
  race.net = NetInode();
  race.main_tid = static_cast<pid_t>(syscall(SYS_gettid));
  sched_getaffinity(0, sizeof race.affinity, &race.affinity);
  race.result = r;
  if (warm) {
    pthread_t t;
    if (pthread_create(&t, nullptr, WarmUp, nullptr) == 0) pthread_join(t, nullptr);
  }
  int k = 2 + static_cast<int>(rng() % 3);
  pthread_barrier_init(&race.barrier, nullptr, static_cast<unsigned>(k));
  RaceWorker workers[4];
  pthread_t threads[4];
  int first_kind = static_cast<int>(rng() % 5);
  for (int i = 0; i < k; ++i) {
    workers[i] = RaceWorker{&race, (first_kind + i) % 5};
    if (pthread_create(&threads[i], nullptr, RaceWorkerMain, &workers[i]) != 0) {
      r->bad |= 2;
      _exit(r->bad);  // the barrier would never open
    }
  }
  for (int i = 0; i < k; ++i) pthread_join(threads[i], nullptr);
}

void Forker(uint64_t seed) {
  std::mt19937_64 rng(seed);
  if (g_cfg.simulate_hang) return;
  while (!g_stop.load()) {
    bool tainted = (rng() & 1) != 0;
    if (tainted) SetTainted(true, rng);
    long long my_net = NetInode();
    pid_t pid = fork();
    if (pid == 0) {
      alarm(60);  // a hung child dies of SIGALRM, which the parent counts as a failure
      ForkChildResult r;
      r.expect_net = my_net;
      if (NetInode() != my_net) r.bad |= 1;
      // Every other child races first changes, half of them with the library's machinery
      // already running.
      uint64_t n = g_forks.load();
      if (n % 2 == 1) RaceFirstChanges(&r, rng, n % 4 == 3);
      pthread_t th;
      if (pthread_create(&th, nullptr, ForkChildThread, &r) != 0) r.bad |= 2;
      else pthread_join(th, nullptr);
      _exit(r.bad);
    }
    if (tainted) SetTainted(false, rng);
    if (pid < 0) {
      g_fork_failures.fetch_add(1);
      std::perror("stress: fork");
      continue;
    }
    int status = 0;
    pid_t w;
    do {
      w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    g_forks.fetch_add(1);
    if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      g_fork_failures.fetch_add(1);
      std::fprintf(stderr, "stress: forked child failed (status 0x%x)\n", status);
    }
    if (g_forks.load() >= g_cfg.forks && g_created.load() < g_cfg.creates) {
      // Enough forks: slow down, so the creators get the CPU.
      usleep(20000);
    }
  }
}

// ---------------------------------------------------------------------------------------------

void OnSigusr1(int) { g_signals_received.fetch_add(1, std::memory_order_relaxed); }

void Signaller(uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (!g_stop.load()) {
    {
      std::lock_guard<std::mutex> l(g_slots_mu);
      size_t i = rng() % g_slots.size();
      if (g_slot_live[i] && pthread_kill(g_slots[i], SIGUSR1) == 0) g_signals_sent.fetch_add(1);
    }
    usleep(100);
  }
}

uint64_t Progress() { return g_started.load() + g_finished.load() + g_forks.load(); }

void DumpStacks() {
  std::fprintf(stderr, "stress: HANG: no progress for %d s; thread states:\n", g_cfg.hang_seconds);
  DIR* d = opendir("/proc/self/task");
  if (d != nullptr) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string base = std::string("/proc/self/task/") + e->d_name;
      char stat[512] = {}, wchan[128] = {}, sc[256] = {};
      auto slurp = [](const std::string& path, char* buf, size_t cap) {
        int fd = open(path.c_str(), O_RDONLY);
        if (fd < 0) return;
        ssize_t n = read(fd, buf, cap - 1);
        if (n > 0) buf[n] = '\0';
        close(fd);
        for (char* c = buf; *c; ++c)
          if (*c == '\n') *c = ' ';
      };
      slurp(base + "/stat", stat, sizeof stat);
      slurp(base + "/wchan", wchan, sizeof wchan);
      slurp(base + "/syscall", sc, sizeof sc);
      std::fprintf(stderr, "  tid %s: stat=%.120s wchan=%s syscall=%.60s\n", e->d_name, stat,
                   wchan, sc);
    }
    closedir(d);
  }
  if (access("/usr/bin/gdb", X_OK) == 0) {
    std::fflush(stderr);
    std::string cmd = "timeout 60 /usr/bin/gdb -batch -nx -p " + std::to_string(getpid()) +
                      " -ex 'thread apply all bt' 1>&2 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "stress: gdb failed\n");
  }
}

void PrintFigures(bool hang, double secs) {
  uint64_t created = g_created.load(), started = g_started.load();
  uint64_t lost = created > started ? created - started : 0;
  uint64_t doubled = g_doubled.load() + (started > created ? started - created : 0);
  std::printf(
      "stress: creates=%llu started=%llu finished=%llu forks=%llu wrong_states=%llu lost=%llu "
      "doubled=%llu fork_failures=%llu create_errors=%llu hangs=%d signals_sent=%llu "
      "signals_received=%llu creators=%llu seconds=%.1f seed=%llu\n",
      (unsigned long long)created, (unsigned long long)started,
      (unsigned long long)g_finished.load(), (unsigned long long)g_forks.load(),
      (unsigned long long)g_wrong.load(), (unsigned long long)lost, (unsigned long long)doubled,
      (unsigned long long)g_fork_failures.load(), (unsigned long long)g_create_errors.load(),
      hang ? 1 : 0, (unsigned long long)g_signals_sent.load(),
      (unsigned long long)g_signals_received.load(), (unsigned long long)g_creators_started.load(),
      secs, (unsigned long long)g_cfg.seed);
  std::printf(
      "{\"creates\": %llu, \"started\": %llu, \"finished\": %llu, \"forks\": %llu, "
      "\"wrong_states\": %llu, \"lost\": %llu, \"doubled\": %llu, \"fork_failures\": %llu, "
      "\"create_errors\": %llu, \"hangs\": %d, \"signals_sent\": %llu, \"signals_received\": %llu, "
      "\"seconds\": %.1f, \"seed\": %llu}\n",
      (unsigned long long)created, (unsigned long long)started,
      (unsigned long long)g_finished.load(), (unsigned long long)g_forks.load(),
      (unsigned long long)g_wrong.load(), (unsigned long long)lost, (unsigned long long)doubled,
      (unsigned long long)g_fork_failures.load(), (unsigned long long)g_create_errors.load(),
      hang ? 1 : 0, (unsigned long long)g_signals_sent.load(),
      (unsigned long long)g_signals_received.load(), secs, (unsigned long long)g_cfg.seed);
  std::fflush(stdout);
}

std::chrono::steady_clock::time_point g_t0;

double Elapsed() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - g_t0).count();
}

void Watchdog() {
  uint64_t last = Progress();
  int still = 0;
  while (true) {
    sleep(1);
    uint64_t now = Progress();
    if (now != last) {
      last = now;
      still = 0;
      continue;
    }
    if (g_stop.load() && g_finished.load() == g_created.load() && g_detached_live.load() == 0)
      still = 0;  // finished: main is about to exit
    if (++still >= g_cfg.hang_seconds) {
      DumpStacks();
      PrintFigures(true, Elapsed());
      std::fflush(stderr);
      _exit(4);
    }
  }
}

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "stress: %s\nusage: stress [--creates N] [--forks N] [--creators N] [--seconds S] "
               "[--hang-seconds S] [--seed N] [--quiet]\n",
               msg);
  std::exit(2);
}

void ParseArgs(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto num = [&]() -> double {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      char* end;
      double v = std::strtod(argv[++i], &end);
      if (*end != '\0' || v < 0) Usage(("bad value for " + a).c_str());
      return v;
    };
    if (a == "--creates") g_cfg.creates = static_cast<uint64_t>(num());
    else if (a == "--forks") g_cfg.forks = static_cast<uint64_t>(num());
    else if (a == "--creators") g_cfg.creators = std::max(2, static_cast<int>(num()));
    else if (a == "--seconds") g_cfg.seconds = num();
    else if (a == "--hang-seconds") g_cfg.hang_seconds = std::max(1, static_cast<int>(num()));
    else if (a == "--seed") g_cfg.seed = static_cast<uint64_t>(num());
    else if (a == "--quiet") g_cfg.quiet = true;
    else if (a == "--simulate-hang") g_cfg.simulate_hang = true;
    else Usage(("unknown option " + a).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  ParseArgs(argc, argv);
  if (g_cfg.seed == 0) g_cfg.seed = static_cast<uint64_t>(time(nullptr)) ^ getpid();
  std::fprintf(stderr, "stress: seed %llu\n", (unsigned long long)g_cfg.seed);
  g_t0 = std::chrono::steady_clock::now();

  g_base_net = NetInode();
  if (g_base_net < 0) testapp::CannotRunHere("cannot read /proc/thread-self/ns/net");
  sched_getaffinity(0, sizeof g_base_affinity, &g_base_affinity);
  g_ncpus = CPU_COUNT(&g_base_affinity);
  g_base_net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  // The second network namespace, made by a helper thread (the main thread stays in the baseline).
  std::thread helper([] {
    if (unshare(CLONE_NEWNET) == 0) g_alt_net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  });
  helper.join();
  if (g_base_net == 0 || g_base_net_fd < 0 || g_alt_net_fd < 0) {
    std::fprintf(stderr, "stress: cannot run here: no network namespaces (need CAP_SYS_ADMIN)\n");
    return 3;
  }

  struct sigaction sa = {};
  sa.sa_handler = OnSigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);  // no SA_RESTART: interrupted waits see EINTR

  std::thread(Watchdog).detach();

  std::mt19937_64 rng(g_cfg.seed);
  int n = g_cfg.creators;
  g_slots.assign(n, pthread_t{});
  g_slot_live.assign(n, false);
  std::vector<bool> joinable(n, false);
  auto start_creator = [&](int slot) {
    auto* args = new std::pair<int, uint64_t>(slot, rng());
    pthread_t th;
    {
      std::lock_guard<std::mutex> l(g_slots_mu);
      if (pthread_create(&th, nullptr, CreatorMain, args) != 0) {
        delete args;
        g_create_errors.fetch_add(1);
        return;
      }
      g_slots[slot] = th;
      g_slot_live[slot] = true;
    }
    joinable[slot] = true;
    g_creators_started.fetch_add(1);
  };
  for (int s = 0; s < n; ++s) start_creator(s);
  std::thread forker(Forker, rng());
  std::thread signaller(Signaller, rng());

  uint64_t last_report = 0;
  while (true) {
    bool done = g_created.load() >= g_cfg.creates && g_forks.load() >= g_cfg.forks;
    if (g_cfg.seconds > 0 && Elapsed() >= g_cfg.seconds) done = true;
    if (done) break;
    for (int s = 0; s < n; ++s) {
      bool live;
      {
        std::lock_guard<std::mutex> l(g_slots_mu);
        live = g_slot_live[s];
      }
      if (!live && joinable[s]) {
        pthread_join(g_slots[s], nullptr);
        joinable[s] = false;
        start_creator(s);
      }
    }
    if (!g_cfg.quiet && g_created.load() / 100000 != last_report) {
      last_report = g_created.load() / 100000;
      std::fprintf(stderr, "stress: %llu creates, %llu forks, %.0f s\n",
                   (unsigned long long)g_created.load(), (unsigned long long)g_forks.load(),
                   Elapsed());
    }
    usleep(2000);
  }
  g_stop.store(true);
  forker.join();
  signaller.join();
  for (int s = 0; s < n; ++s) {
    if (joinable[s]) pthread_join(g_slots[s], nullptr);
  }
  // Detached children still running: wait for them (the watchdog covers a hang).
  while (g_detached_live.load() != 0) usleep(1000);
  PrintFigures(false, Elapsed());
  uint64_t created = g_created.load(), started = g_started.load();
  bool clean = g_wrong.load() == 0 && created == started && g_doubled.load() == 0 &&
               g_fork_failures.load() == 0 && g_create_errors.load() == 0 &&
               g_finished.load() == started;
  return clean ? 0 : 1;
}
