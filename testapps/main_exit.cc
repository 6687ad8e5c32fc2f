// SPDX-License-Identifier: Apache-2.0
// main_exit: the main thread leaves with pthread_exit (or thrd_exit) while other threads run,
// the common C idiom. POSIX: the process ends when its last thread does, with status 0.
//
// A worker first makes the library start its threads (a private fs_struct, which only a
// forwarded create isolates, and one forwarded create), then the main thread leaves, then:
//   --then exit     the worker returns after a moment: the process must end with status 0
//   --then wait     the worker waits for SIGTERM (default action): a SIGTERM sent to the process
//                   must end it (by the signal), and no handler may run on the library's threads
//   --then handler  as wait, with a SIGUSR1 handler that records the thread it ran on: a
//                   process-directed SIGUSR1 must run it on the worker, never on a library thread
// --via thrd: thrd_exit instead of pthread_exit. Prints "ready <pid>" on stdout when the main
// thread is about to leave, and what the handler saw on stderr.
//
//   main_exit --then exit|wait|handler [--via pthread|thrd]

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string g_then = "exit";
std::atomic<pid_t> g_worker_tid{0};
std::atomic<bool> g_main_left{false};

void* Child(void*) { return nullptr; }

void OnUsr1(int) {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  char line[96];
  int n = std::snprintf(line, sizeof line, "handler ran on %s (%s)\n",
                        self == g_worker_tid.load() ? "the worker" : "another thread", name);
  if (write(2, line, static_cast<size_t>(n)) < 0) _exit(9);
  _exit(self == g_worker_tid.load() ? 0 : 8);
}

void* Worker(void*) {
  g_worker_tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (unshare(CLONE_FS) != 0 || chdir("/") != 0) {
    std::perror("main_exit: unshare(CLONE_FS)");
    std::exit(3);
  }
  pthread_t t;
  if (pthread_create(&t, nullptr, Child, nullptr) != 0) std::exit(2);
  pthread_join(t, nullptr);
  if (g_then == "exit") {
    while (!g_main_left.load()) sched_yield();
    usleep(200 * 1000);  // the main thread is gone by now; nothing depends on it
    return nullptr;
  }
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) {
  bool thrd = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--then") g_then = v;
    else if (a == "--via") thrd = v == "thrd";
  }
  if (g_then == "handler") {
    struct sigaction sa = {};
    sa.sa_handler = OnUsr1;
    sigaction(SIGUSR1, &sa, nullptr);
  }
  // The worker unblocks what it waits for; the main thread blocks it, so that the signal can
  // only go to the worker or to the library's threads.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, nullptr);
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, nullptr) != 0) return 2;
  while (g_worker_tid.load() == 0) sched_yield();
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  g_main_left = true;
  if (thrd) thrd_exit(0);
  pthread_exit(nullptr);
}
