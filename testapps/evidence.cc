// SPDX-License-Identifier: Apache-2.0
// evidence: the test program for reports, logs and pristine-scan
// (pytests/test_evidence.py). Built with -O2 -g on purpose: three creating
// sites in one function must still get three source lines.
//
//   evidence MODE [--hold] [ARGS...]
//
// Modes (the worker is a second thread; "tainted" means it entered a new
// network namespace with unshare first, in EnterNetns):
//   three-sites         the tainted worker creates three std::threads in
//                       SpawnThree, one per SITE-n line below
//   exit-race           the tainted worker creates a SCHED_FIFO thread that
//                       calls exit(0) at once (run pinned to one CPU: it runs
//                       before the create can return)
//   reuse-stderr FILE   closes stderr, opens FILE as descriptor 2 and writes
//                       DATA to it, then the main thread is tainted and creates
//                       a thread (which makes the library hint on its log)
//   chroot JAIL         the worker unshares its fs, chroots into JAIL and
//                       creates a thread; with --exit-from-worker it calls
//                       exit(0) there
//   anon-frame          the tainted worker creates a thread through code in an
//                       anonymous executable mapping (x86_64 only)
//   drift               no library needed: the worker enters a new network
//                       namespace, then everything waits (for pristine-scan)
//   clean               a worker that changes nothing, then waits
// --hold: print "ready" once done and wait for a line (or EOF) on stdin before
// exiting normally. --fs: "tainted" means a private fs_struct (unshare(CLONE_FS)),
// which only a forwarded create isolates, instead of a network namespace. Exit status 0; 3 when the machine cannot do the set-up.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::string g_mode;
std::string g_arg;
bool g_hold = false;
bool g_exit_from_worker = false;
bool g_fs = false;  // --fs: taint with a private fs_struct instead of a network namespace
sem_t g_worker_ready;

[[noreturn]] void Unsupported(const char* what) {
  fprintf(stderr, "evidence: cannot %s: %s\n", what, strerror(errno));
  exit(3);
}

void Hold() {
  if (!g_hold) return;
  printf("ready\n");
  fflush(stdout);
  char buf[16];
  while (read(0, buf, sizeof buf) < 0 && errno == EINTR) {
  }
}

void Nothing() {}

__attribute__((noinline)) void EnterNetns() {
  if (g_fs) {
    if (unshare(CLONE_FS) != 0) Unsupported("unshare(CLONE_FS)");
  } else if (unshare(CLONE_NEWNET) != 0) {
    Unsupported("unshare(CLONE_NEWNET)");
  }
}

__attribute__((noinline)) void SpawnThree() {
  std::thread a(Nothing);  // SITE-1
  a.join();
  std::thread b(Nothing);  // SITE-2
  b.join();
  std::thread c(Nothing);  // SITE-3
  c.join();
}

void* ExitAtOnce(void*) { exit(0); }

void ExitRace() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
  pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
  sched_param param{};
  param.sched_priority = 10;
  pthread_attr_setschedparam(&attr, &param);
  pthread_t t;
  int rc = pthread_create(&t, &attr, ExitAtOnce, nullptr);
  if (rc != 0) {
    errno = rc;
    Unsupported("create a SCHED_FIFO thread");
  }
  for (;;) pause();  // the new thread ends the process
}

void* Empty(void*) { return nullptr; }

void CreateAndJoin() {
  pthread_t t;
  if (pthread_create(&t, nullptr, Empty, nullptr) != 0) Unsupported("create a thread");
  pthread_join(t, nullptr);
}

void Chroot() {
  if (unshare(CLONE_FS) != 0) Unsupported("unshare(CLONE_FS)");
  if (chroot(g_arg.c_str()) != 0 || chdir("/") != 0) Unsupported("chroot");
  CreateAndJoin();
  if (g_exit_from_worker) exit(0);
}

using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

void AnonFrame() {
#if defined(__x86_64__)
  // sub rsp,8; movabs rax,imm64; call rax; add rsp,8; ret
  unsigned char code[] = {0x48, 0x83, 0xec, 0x08, 0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                          0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
  CreateFn target = pthread_create;
  memcpy(code + 6, &target, sizeof target);
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) Unsupported("mmap");
  memcpy(mem, code, sizeof code);
  if (mprotect(mem, 4096, PROT_READ | PROT_EXEC) != 0) Unsupported("mprotect");
  pthread_t t;
  if (reinterpret_cast<CreateFn>(mem)(&t, nullptr, Empty, nullptr) != 0) {
    Unsupported("create a thread");
  }
  pthread_join(t, nullptr);
#else
  errno = ENOSYS;
  Unsupported("run anonymous code on this architecture");
#endif
}

void* Worker(void*) {
  if (g_mode == "three-sites") {
    EnterNetns();
    SpawnThree();
  } else if (g_mode == "exit-race") {
    EnterNetns();
    ExitRace();
  } else if (g_mode == "chroot") {
    Chroot();
  } else if (g_mode == "anon-frame") {
    EnterNetns();
    AnonFrame();
  } else if (g_mode == "drift" || g_mode == "clean") {
    if (g_mode == "drift") EnterNetns();
    sem_post(&g_worker_ready);
    for (;;) pause();  // stays, in its state, until the process exits
  }
  return nullptr;
}

void ReuseStderr() {
  close(2);
  int fd = open(g_arg.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd != 2) Unsupported("reopen descriptor 2");
  if (write(2, "DATA\n", 5) != 5) Unsupported("write");
  EnterNetns();
  CreateAndJoin();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: evidence MODE [--hold] [--exit-from-worker] [ARG]\n");
    return 2;
  }
  g_mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    if (strcmp(argv[i], "--hold") == 0) g_hold = true;
    else if (strcmp(argv[i], "--exit-from-worker") == 0) g_exit_from_worker = true;
    else if (strcmp(argv[i], "--fs") == 0) g_fs = true;
    else g_arg = argv[i];
  }
  if (g_mode == "reuse-stderr") {
    ReuseStderr();
    return 0;
  }
  sem_init(&g_worker_ready, 0, 0);
  pthread_t worker;
  if (pthread_create(&worker, nullptr, Worker, nullptr) != 0) Unsupported("start the worker");
  if (g_mode == "drift" || g_mode == "clean") {
    // The worker stays alive (in its namespace) while the scan looks.
    while (sem_wait(&g_worker_ready) != 0) {
    }
    Hold();
    exit(0);
  }
  pthread_join(worker, nullptr);
  Hold();
  exit(0);
}
