// SPDX-License-Identifier: Apache-2.0
// fork_stack: nothing of the library's threads in a forked child's stack cache (issue 18
// item 2). In a forked child glibc puts the stacks of the parent's other threads into its stack
// cache and hands them to later creates that ask for up to a quarter of their size; a stack the
// library's template used there would give a thread that asked for a small stack a larger one,
// whose overflow never reaches the guard page it asked for.
//
//   fork_stack
//
// The parent first makes the library start its threads: a worker makes its fs private
// (unshare(CLONE_FS): its creates are forwarded) and creates and joins one thread with default
// attributes (a spare) and one with an explicit stack size (the template); it then ends. The
// main thread forks twice; in each child a thread is created with a PTHREAD_STACK_MIN stack and
// a one-page guard:
//   child 1: the thread reports pthread_getattr_np's stack and guard sizes;
//   child 2: the thread writes every KiB from its frame down to its requested size plus one
//            page below: it must reach the guard page and die of SIGSEGV.
// One JSON object: {"requested": N, "stack_size": N, "guard_size": N,
//   "overflow_status": "signal SEGV"|"exit 0"|..., "parent_tasks": N}
// Exit 0, 2 usage, 3 cannot apply the set-up.
#include <limits.h>
#include <pthread.h>
#include <sched.h>

#include "regress_util.h"

namespace {

// PTHREAD_STACK_MIN is sysconf(_SC_THREAD_STACK_MIN) in glibc 2.34+: read at start-up.
const size_t kRequested = PTHREAD_STACK_MIN;
int g_pipe[2];

void* Nothing(void*) { return nullptr; }

void* Worker(void*) {
  if (unshare(CLONE_FS) != 0) t3::Unsupported("unshare(CLONE_FS)");
  pthread_t t;
  if (pthread_create(&t, nullptr, Nothing, nullptr) != 0) t3::Die("pthread_create(default)");
  pthread_join(t, nullptr);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 1 << 20);
  if (pthread_create(&t, &a, Nothing, nullptr) != 0) t3::Die("pthread_create(attr)");
  pthread_attr_destroy(&a);
  pthread_join(t, nullptr);
  return nullptr;
}

void* ReportSizes(void*) {
  pthread_attr_t a;
  size_t sizes[2] = {0, 0};
  if (pthread_getattr_np(pthread_self(), &a) == 0) {
    pthread_attr_getstacksize(&a, &sizes[0]);
    pthread_attr_getguardsize(&a, &sizes[1]);
    pthread_attr_destroy(&a);
  }
  if (write(g_pipe[1], sizes, sizeof sizes) != sizeof sizes) _exit(1);
  return nullptr;
}

// Writes one byte every KiB from below this frame down to the requested size plus one page
// below it: a stack of the requested size has its guard page in that range.
__attribute__((noinline)) void* Overflow(void*) {
  volatile char* top = static_cast<volatile char*>(__builtin_frame_address(0)) - 512;
  for (size_t off = 0; off <= kRequested + 4096; off += 1024) top[-static_cast<long>(off)] = 1;
  return nullptr;
}

pid_t ForkWithSmallStackThread(void* (*start)(void*)) {
  pid_t pid = fork();
  if (pid < 0) t3::Die("fork");
  if (pid > 0) return pid;
  pthread_attr_t a;
  pthread_attr_init(&a);
  if (pthread_attr_setstacksize(&a, kRequested) != 0 ||
      pthread_attr_setguardsize(&a, static_cast<size_t>(sysconf(_SC_PAGESIZE))) != 0) {
    _exit(4);
  }
  pthread_t t;
  if (pthread_create(&t, &a, start, nullptr) != 0) _exit(5);
  pthread_join(t, nullptr);
  _exit(0);
}

}  // namespace

int main(int argc, char**) {
  if (argc != 1) {
    std::fprintf(stderr, "usage: fork_stack\n");
    return 2;
  }
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, nullptr) != 0) t3::Die("pthread_create(worker)");
  pthread_join(w, nullptr);
  int parent_tasks = t3::CountTasks();
  if (pipe2(g_pipe, O_CLOEXEC) != 0) t3::Die("pipe");

  size_t sizes[2] = {0, 0};
  pid_t sizer = ForkWithSmallStackThread(ReportSizes);
  close(g_pipe[1]);
  if (read(g_pipe[0], sizes, sizeof sizes) != sizeof sizes) sizes[0] = sizes[1] = 0;
  bool hung = false;
  int sizer_status = rg::WaitChild(sizer, 60, &hung);
  if (hung || sizer_status != 0) t3::Die("the first child failed: " + rg::DescribeStatus(sizer_status));

  pid_t overflower = ForkWithSmallStackThread(Overflow);
  int status = rg::WaitChild(overflower, 60, &hung);

  JsonWriter out;
  out.begin_object();
  out.key("requested"); out.value(static_cast<unsigned long>(kRequested));
  out.key("stack_size"); out.value(static_cast<unsigned long>(sizes[0]));
  out.key("guard_size"); out.value(static_cast<unsigned long>(sizes[1]));
  out.key("overflow_status"); out.value(hung ? std::string("hung") : rg::DescribeStatus(status));
  out.key("parent_tasks"); out.value(parent_tasks);
  out.end_object();
  t3::PrintJson(out);
  return 0;
}
