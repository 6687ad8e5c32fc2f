// SPDX-License-Identifier: Apache-2.0
// signal_safety: the signal-mask entry points called from a signal handler must never wait on
// anything (issue 12 item 3). A handler that calls pthread_sigmask, sigprocmask or
// syscall(SYS_rt_sigprocmask) may interrupt a thread that is inside the library holding a lock
// (its first change: reading the snapshot, starting the template; a create); if the handler's
// call takes that lock, the thread waits for itself.
//
//   signal_safety --runs N [--workers K] [--creates M] [--hang-after SECONDS (30)]
//
// Runs N fresh processes of itself (fork + exec of /proc/self/exe, so each starts with nothing of
// the library running) one after another. In each, a SIGUSR1 handler calls pthread_sigmask,
// sigprocmask and syscall(SYS_rt_sigprocmask), each blocking SIGUSR2 and restoring the mask; K
// worker threads are released together into different first changes (unshare(CLONE_FS), which
// needs the template; sched_setaffinity of itself; unshare(CLONE_NEWUTS); pthread_sigmask;
// capset of its own sets), then each creates and joins M threads; the main thread sends SIGUSR1
// to every worker with tgkill, round after round, until all workers are done. A run that has not
// exited after --hang-after seconds is taken for hung (a safety net only): it is killed and counted, and the
// driver stops there. One JSON object on stdout:
//   {"runs": completed, "hung": H, "failed": F, "first_failure": "run I: exit/signal ..."|null,
//    "signals_handled_min": fewest handler runs in one process}
// Exit 0 (see the counts), 2 usage.
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <vector>

#include "regress_util.h"

namespace {

std::atomic<long> g_handled{0};

void Handler(int) {
  int saved = errno;
  sigset_t s, old;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &s, &old);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  sigprocmask(SIG_BLOCK, &s, &old);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, &old, _NSIG / 8);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, _NSIG / 8);
  g_handled.fetch_add(1, std::memory_order_relaxed);
  errno = saved;
}

struct Worker {
  int index = 0;
  int creates = 0;
  std::atomic<int> tid{0};
  pthread_t thread;
};

constexpr long kStormIntervalNs = 50000;
long g_first_ns = 1000;  // first signal of the storm, after the barrier (varied per run)

pthread_barrier_t g_start;
std::atomic<int> g_errors{0};

void* Empty(void*) {
  // The new thread also changes its mask once: a create path's child is interrupted too.
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  return nullptr;
}

void FirstChange(int kind) {
  switch (kind % 5) {
    case 0:  // a private fs: only a forwarded create isolates it (the template starts first)
      if (unshare(CLONE_FS) != 0) g_errors++;
      break;
    case 1: {  // its own CPU set (the snapshot is read first)
      cpu_set_t set;
      if (sched_getaffinity(0, sizeof set, &set) != 0 ||
          sched_setaffinity(0, sizeof set, &set) != 0) {
        g_errors++;
      }
      break;
    }
    case 2:  // a namespace a new thread can re-enter
      if (unshare(CLONE_NEWUTS) != 0) g_errors++;
      break;
    case 3: {  // its signal mask
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, SIGUSR2);
      if (pthread_sigmask(SIG_BLOCK, &s, nullptr) != 0) g_errors++;
      break;
    }
    case 4: {  // its own capability sets (unchanged values: a recorded privilege change)
      rg::Privs p = rg::ReadPrivs();
      if (!rg::SetCaps(p.cap_eff, p.cap_prm, p.cap_inh, false)) g_errors++;
      break;
    }
  }
}

// A timer that sends SIGUSR1 to the calling thread `first_ns` from now, then every
// `interval_ns` (SIGEV_THREAD_ID: the kernel delivers it, so the storm needs no other thread to
// be running). Armed right before the thread's first change, so that the first signals land
// while the library handles that change (a handler that ran before it would find nothing to do).
timer_t ArmStorm(long first_ns, long interval_ns) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGUSR1;
  sev._sigev_un._tid = t3::Gettid();
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) t3::Die("timer_create");
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_nsec = first_ns;
  its.it_interval.tv_nsec = interval_ns;
  if (timer_settime(timer, 0, &its, nullptr) != 0) t3::Die("timer_settime");
  return timer;
}

void* WorkerMain(void* arg) {
  Worker* w = static_cast<Worker*>(arg);
  w->tid.store(t3::Gettid());
  pthread_barrier_wait(&g_start);
  timer_t storm = ArmStorm(g_first_ns + w->index * 3000, kStormIntervalNs);
  FirstChange(w->index);
  for (int i = 0; i < w->creates; ++i) {
    pthread_t t;
    int rc = pthread_create(&t, nullptr, Empty, nullptr);
    if (rc == 0) {
      pthread_join(t, nullptr);
    } else {
      g_errors++;
    }
  }
  timer_delete(storm);
  return nullptr;
}

// One process: exit 0 if every call succeeded, 1 otherwise; prints the handler count on stderr
// for the driver (through a pipe on fd 3).
int RunOne(int workers, int creates) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = Handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  std::vector<Worker> w(workers);
  pthread_barrier_init(&g_start, nullptr, workers + 1);
  for (int i = 0; i < workers; ++i) {
    w[i].index = i;
    w[i].creates = creates;
    if (pthread_create(&w[i].thread, nullptr, WorkerMain, &w[i]) != 0) t3::Die("pthread_create");
  }
  pthread_barrier_wait(&g_start);
  for (auto& x : w) pthread_join(x.thread, nullptr);
  long handled = g_handled.load();
  if (write(3, &handled, sizeof handled) != sizeof handled) return 1;
  return g_errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 0, workers = 4, creates = 4, hang_after_s = 30;
  bool one = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--one") one = true;
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--workers" && i + 1 < argc) workers = std::atoi(argv[++i]);
    else if (a == "--creates" && i + 1 < argc) creates = std::atoi(argv[++i]);
    else if (a == "--hang-after" && i + 1 < argc) hang_after_s = std::atoi(argv[++i]);
    else if (a == "--first-us" && i + 1 < argc) g_first_ns = std::atol(argv[++i]) * 1000;
    else {
      std::fprintf(stderr, "usage: signal_safety --runs N [--workers K] [--creates M]\n");
      return 2;
    }
  }
  if (workers < 1) return 2;
  if (one) return RunOne(workers, creates);

  std::string w = std::to_string(workers), c = std::to_string(creates);
  int completed = 0, hung = 0, failed = 0;
  long handled_min = LONG_MAX;
  std::string first_failure;
  for (int run = 0; run < runs && hung == 0; ++run) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) t3::Die("pipe");
    pid_t pid = fork();
    if (pid < 0) t3::Die("fork");
    if (pid == 0) {
      dup2(p[1], 3);  // dup2 clears close-on-exec on fd 3
      // The first signal comes 1 to 20 us after the barrier, a different delay each run.
      std::string first = std::to_string(1 + run % 20);
      execl("/proc/self/exe", argv[0], "--one", "--workers", w.c_str(), "--creates", c.c_str(),
            "--first-us", first.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(p[1]);
    bool is_hung = false;
    int status = rg::WaitChild(pid, hang_after_s, &is_hung);
    long handled = -1;
    if (read(p[0], &handled, sizeof handled) != sizeof handled) handled = -1;
    close(p[0]);
    if (is_hung) {
      ++hung;
      if (first_failure.empty()) first_failure = "run " + std::to_string(run) + ": hung";
      continue;
    }
    ++completed;
    if (status != 0) {
      ++failed;
      if (first_failure.empty()) {
        first_failure = "run " + std::to_string(run) + ": " + rg::DescribeStatus(status);
      }
    } else if (handled < handled_min) {
      handled_min = handled;
    }
  }
  JsonWriter out;
  out.begin_object();
  out.key("runs"); out.value(completed);
  out.key("hung"); out.value(hung);
  out.key("failed"); out.value(failed);
  out.key("first_failure");
  if (first_failure.empty()) out.null(); else out.value(first_failure);
  out.key("signals_handled_min");
  out.value(handled_min == LONG_MAX ? -1L : handled_min);
  out.end_object();
  t3::PrintJson(out);
  return 0;
}
