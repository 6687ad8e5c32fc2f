// SPDX-License-Identifier: Apache-2.0
// as_limit: how many threads a tainted thread can create under an address-space limit
// (pytests/test_contexts.py). Run with and without libpristine.so: the counts are compared.
//
//   as_limit TAINT [MIB [alloc]]
// TAINT: net (the worker enters a new network namespace: it creates the threads itself), fs (a
//        private cwd: threads made by a thread in the baseline), none.
// MIB:   RLIMIT_AS in MiB (default 512), set by main before anything else is created.
// alloc: each thread allocates (and frees) 64 bytes before it waits, so that glibc gives it a
//        malloc arena as it would to most real threads.
//
// The worker creates threads with default attributes that wait until released, until a create
// fails; then it releases and joins them all, and creates one more (which must succeed).
// Unless `alloc`, nothing in the threads allocates.
//
// Output: one JSON object: created (threads alive at the first failure), rc (that failure, an
// errno name), rc_after (the create after the release), tasks (entries of /proc/self/task at the
// failure, all threads), pristine_tasks (those named pristine-*: the library's own), arenas (the
// heap mappings of malloc arenas other than the main one, at the failure: 64 MiB reservations
// each, counted from /proc/self/maps). Exit: 0 done, 1 error, 2 usage, 3 cannot apply the taint.

#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

constexpr int kMaxThreads = 1000;
pthread_t g_threads[kMaxThreads];
std::atomic<uint32_t> g_release{0};
const char* g_taint;
bool g_alloc = false;

void* Wait(void*) {
  if (g_alloc) {
    void* volatile p = std::malloc(64);
    std::free(p);
  }
  while (g_release.load() == 0) syscall(SYS_futex, &g_release, FUTEX_WAIT_PRIVATE, 0, nullptr);
  return nullptr;
}

struct Result {
  int created = 0;
  int rc = 0;
  int rc_after = -1;
  int tasks = 0;
  int pristine_tasks = 0;
  int arenas = 0;
};

void CountTasks(Result* r) {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++r->tasks;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string comm;
    std::getline(in, comm);
    if (comm.rfind("pristine-", 0) == 0) ++r->pristine_tasks;
  }
  closedir(d);
}

// A non-main malloc arena is a heap of HEAP_MAX_SIZE (64 MiB on 64-bit) reserved at once and
// aligned to its size: a mapping whose start is 64 MiB-aligned, made of a read-write part and a
// PROT_NONE rest, whose two parts add up to 64 MiB. Counted by their aligned starts.
int CountArenas() {
  constexpr unsigned long kHeap = 64ul << 20;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  unsigned long run_start = 0, run_end = 0;
  auto close_run = [&]() {
    if (run_end - run_start == kHeap) ++n;
    run_start = run_end = 0;
  };
  while (std::getline(maps, line)) {
    unsigned long lo, hi;
    char perms[8] = "", path[16] = "";
    int fields = std::sscanf(line.c_str(), "%lx-%lx %7s %*s %*s %*s %15s", &lo, &hi, perms, path);
    bool anonymous = fields == 3;
    if (anonymous && lo % kHeap == 0 && perms[0] == 'r' && perms[1] == 'w') {
      close_run();
      run_start = lo;
      run_end = hi;
    } else if (anonymous && run_end == lo && std::strncmp(perms, "---", 3) == 0) {
      run_end = hi;
      close_run();
    } else {
      close_run();
    }
  }
  close_run();
  return n;
}

void* Worker(void* arg) {
  Result* r = static_cast<Result*>(arg);
  if (std::strcmp(g_taint, "net") == 0) {
    if (unshare(CLONE_NEWNET) != 0) {
      std::perror("as_limit: cannot run here: unshare(CLONE_NEWNET)");
      std::exit(3);
    }
  } else if (std::strcmp(g_taint, "fs") == 0) {
    if (unshare(CLONE_FS) != 0 || chdir("/") != 0) {
      std::perror("as_limit: cannot run here: unshare(CLONE_FS)");
      std::exit(3);
    }
  }
  while (r->created < kMaxThreads) {
    int rc = pthread_create(&g_threads[r->created], nullptr, Wait, nullptr);
    if (rc != 0) {
      r->rc = rc;
      break;
    }
    ++r->created;
  }
  CountTasks(r);
  r->arenas = CountArenas();
  g_release.store(1);
  syscall(SYS_futex, &g_release, FUTEX_WAKE_PRIVATE, 0x7fffffff);
  for (int i = 0; i < r->created; ++i) pthread_join(g_threads[i], nullptr);
  pthread_t t;
  r->rc_after = pthread_create(&t, nullptr, Wait, nullptr);
  if (r->rc_after == 0) pthread_join(t, nullptr);
  return nullptr;
}

const char* ErrName(int e) {
  if (e == 0) return "0";
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : "?";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4 || (argc == 4 && std::strcmp(argv[3], "alloc") != 0)) {
    std::fprintf(stderr, "usage: as_limit net|fs|none [MIB [alloc]]\n");
    return 2;
  }
  g_taint = argv[1];
  long mib = argc >= 3 ? std::atol(argv[2]) : 512;
  g_alloc = argc == 4;
  struct rlimit lim = {static_cast<rlim_t>(mib) << 20, static_cast<rlim_t>(mib) << 20};
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    std::perror("as_limit: setrlimit");
    return 1;
  }
  Result r;
  pthread_t w;
  // The worker itself with a small stack, so that the limit is spent on the threads it creates.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 << 10);
  int rc = pthread_create(&w, &attr, Worker, &r);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    std::fprintf(stderr, "as_limit: cannot start the worker: %s\n", ErrName(rc));
    return 1;
  }
  pthread_join(w, nullptr);
  std::printf(
      "{\"created\": %d, \"rc\": \"%s\", \"rc_after\": \"%s\", \"tasks\": %d, "
      "\"pristine_tasks\": %d, \"arenas\": %d}\n",
      r.created, ErrName(r.rc), ErrName(r.rc_after), r.tasks, r.pristine_tasks, r.arenas);
  return 0;
}
