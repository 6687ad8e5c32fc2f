// SPDX-License-Identifier: Apache-2.0
#include "template_thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <atomic>
#include <cstring>
#include <initializer_list>

#include "baseline.h"
#include "interpose.h"
#include "raw_syscall.h"
#include "spares.h"
#include "state.h"

namespace pristine {
namespace {

constexpr size_t kTemplateStackSize = 64 * 1024;
constexpr char kTemplateName[] = "pristine-tmpl";

HandoffQueue g_queue;
pthread_t g_thread;
std::atomic<bool> g_running{false};
// Posters between their check of g_running and their push. StopTemplate
// waits for it to drain before queueing its stop request, so every request
// admitted is queued ahead of the stop and served.
std::atomic<uint32_t> g_users{0};
FutexWord g_tid{0};  // the template's tid once it runs, 0 before
// Written by StartTemplate before the template exists, read by it.
SchedState g_start_sched;   // the baseline's
SchedState g_thread_sched;  // what the template inherits from its creator

// Set by a stop request, read by the template loop: template thread only.
bool g_stop_requested = false;

// Asks the template loop to return after the current batch. Runs on the
// template thread.
void RunStop(HandoffRequest*) { g_stop_requested = true; }

// The template's body. Runs on the template thread: only raw system calls,
// the queue, and request run functions (which follow the same rules).
void* TemplateMain(void*) {
  RawSyscall(SYS_prctl, PR_SET_NAME, kTemplateName);
  // The thread that started the template may have another nice value or
  // policy than the baseline (those are snapshot dimensions): take the
  // baseline's, so that the threads created here start with it.
  if (!(g_start_sched == g_thread_sched)) {
    struct sched_param param = {};
    param.sched_priority = g_start_sched.priority;
    RawSyscall(SYS_sched_setscheduler, 0, g_start_sched.policy, &param);
    RawSyscall(SYS_setpriority, PRIO_PROCESS, 0, g_start_sched.nice);
  }
  g_tid.store(static_cast<uint32_t>(RawGettid()), std::memory_order_release);
  FutexWakeAll(&g_tid);
  g_stop_requested = false;
  while (!g_stop_requested) {
    HandoffRequest* req = g_queue.TakeAll();
    while (req != nullptr) {
      HandoffRequest* next = req->next;  // read before completion frees it
      req->run(req);
      HandoffQueue::Complete(req);
      req = next;
    }
  }
  return nullptr;
}

}  // namespace

bool StartTemplate() {
  // Everything the template calls is resolved before it exists.
  if (REAL(pthread_create) == nullptr) return false;
  BaselineSched(&g_start_sched.policy, &g_start_sched.priority, &g_start_sched.nice);
  if (!ReadSched(0, &g_thread_sched)) g_thread_sched = g_start_sched;
  // All signals blocked from its first instruction: no handler of the host
  // ever runs on the template. (glibc keeps its own internal signals, so a
  // process-wide setuid still reaches it.)
  sigset_t all;
  memset(&all, 0xff, sizeof all);
  g_tid.store(0, std::memory_order_relaxed);
  int rc = EINVAL;
  // A small stack first; a process with a large static TLS, which lives on
  // every thread's stack, does not fit in it: then the default size.
  for (size_t stack : {kTemplateStackSize, size_t{0}}) {
    pthread_attr_t attr;
    LIBC(pthread_attr_init)(&attr);
    if (stack != 0) LIBC(pthread_attr_setstacksize)(&attr, stack);
    LIBC(pthread_attr_setsigmask_np)(&attr, &all);
    rc = REAL(pthread_create)(&g_thread, &attr, TemplateMain, nullptr);
    LIBC(pthread_attr_destroy)(&attr);
    if (rc != EINVAL) break;
  }
  if (rc != 0) return false;
  // The baseline refers to the template by tid, so wait for it to publish.
  uint32_t tid;
  while ((tid = g_tid.load(std::memory_order_acquire)) == 0) FutexWait(&g_tid, 0);
  BaselineSetTemplate(static_cast<int>(tid));
  g_running.store(true, std::memory_order_release);
  return true;
}

bool TemplateRunning() { return g_running.load(std::memory_order_acquire); }

bool RunOnTemplate(HandoffRequest* req) {
  if (!PostToTemplate(req)) return false;
  // Queued before any stop request (StopTemplate waits for g_users to drain
  // before pushing one), so the template serves it before stopping.
  HandoffQueue::Await(req);
  return true;
}

bool PostToTemplate(HandoffRequest* req) {
  // seq_cst on both sides (here and in StopTemplate): either this sees
  // g_running false, or StopTemplate sees this poster in g_users.
  g_users.fetch_add(1, std::memory_order_seq_cst);
  bool running = g_running.load(std::memory_order_seq_cst);
  if (running) g_queue.Push(req);
  g_users.fetch_sub(1, std::memory_order_release);
  return running;
}

void StopTemplate() {
  if (!TemplateRunning()) return;
  g_running.store(false, std::memory_order_seq_cst);
  // Requests already admitted are served before the template stops.
  while (g_users.load(std::memory_order_seq_cst) != 0) RawSyscall(SYS_sched_yield);
  HandoffRequest stop;
  stop.run = RunStop;
  g_queue.Push(&stop);
  HandoffQueue::Await(&stop);
  LIBC(pthread_join)(g_thread, nullptr);
  RetireAllSpares();
}

void ForgetTemplateAfterFork() {
  g_queue.ResetAfterFork();
  ForgetSparesAfterFork();
  g_running.store(false, std::memory_order_relaxed);
  g_users.store(0, std::memory_order_relaxed);
  g_tid.store(0, std::memory_order_relaxed);
}

}  // namespace pristine
