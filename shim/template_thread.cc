// SPDX-License-Identifier: Apache-2.0
#include "template_thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <atomic>
#include <cstring>
#include <initializer_list>

#include <sys/mman.h>

#include "absl/base/attributes.h"

#include "annotate.h"
#include "baseline.h"
#include "interpose.h"
#include "raw_syscall.h"
#include "spares.h"
#include "thread_role.h"
#include "state.h"

namespace pristine {
namespace {

constexpr char kTemplateName[] = "pristine-tmpl";

ABSL_CONST_INIT HandoffQueue g_queue;
ABSL_CONST_INIT pthread_t g_thread = 0;
ABSL_CONST_INIT std::atomic<bool> g_running{false};
// Posters between their check of g_running and their push. StopTemplate
// waits for it to drain before queueing its stop request, so every request
// admitted is queued ahead of the stop and served.
ABSL_CONST_INIT std::atomic<uint32_t> g_users{0};
// The template's answer to its start: its tid once it serves, or kFailed.
constexpr uint32_t kStarting = 0, kFailed = 0xffffffff;
ABSL_CONST_INIT FutexWord g_started{kStarting};
ABSL_CONST_INIT std::atomic<long> g_securebits{0};

// The template's privileges (TemplateSecurity), written by the template.
struct SecurityCache {
  FutexMutex mu;
  bool valid ABSL_GUARDED_BY(mu) = false;
  SecurityState state ABSL_GUARDED_BY(mu);
};
ABSL_CONST_INIT SecurityCache g_security;

// Runs on the template: reads its own privileges into the cache. The lock is
// never held by a thread that waits for the template.
void ReadOwnSecurity() PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  SecurityState s;
  bool ok = ReadSecurity(Whose::kCallingThread, &s);
  FutexLock lock(&g_security.mu);
  g_security.valid = ok;
  g_security.state = s;
}

void RunReadSecurity(HandoffRequest*) PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  PRISTINE_CHECK_ROLE(Bits(Role::kTemplate));
  ReadOwnSecurity();
}

// Written by StartTemplate before the template exists, read by it.
ABSL_CONST_INIT SchedState g_start_sched;   // the baseline's
ABSL_CONST_INIT SchedState g_thread_sched;  // what the template inherits from its creator
ABSL_CONST_INIT TemplateRepairs g_repairs = {};

// The template's stack: mapped by the library, not by glibc, so that glibc
// never caches it and hands it to a thread of the program (a 64 KiB stack
// given to a thread that asked for less, with its guard out of reach), and so
// that a forked child, where glibc forgets threads with caller-supplied
// stacks, can unmap it. A guard page below.
struct Stack {
  void* base = nullptr;  // the mapping, guard page included
  size_t size = 0;       // of the mapping
};
ABSL_CONST_INIT Stack g_stack;
constexpr size_t kGuard = 4096;

bool MapStack(size_t usable, Stack* out) {
  size_t size = usable + kGuard;
  long mem = RawSyscall6(SYS_mmap, 0, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (mem < 0 && mem > -4096) return false;
  RawSyscall(SYS_mprotect, mem, kGuard, PROT_NONE);
  out->base = reinterpret_cast<void*>(mem);
  out->size = size;
  return true;
}

void UnmapStack(Stack* s) {
  if (s->base != nullptr) RawSyscall(SYS_munmap, s->base, s->size);
  *s = Stack();
}

// Set by a stop request, read by the template loop: template thread only.
ABSL_CONST_INIT bool g_stop_requested = false;

// NoteMainThreadExit: the template watches for the end of the program's last
// thread. A request with nothing to do wakes it into that mode.
ABSL_CONST_INIT std::atomic<bool> g_main_exited{false};
ABSL_CONST_INIT HandoffRequest g_wake_request;
ABSL_CONST_INIT std::atomic<bool> g_wake_queued{false};
constexpr struct timespec kWatchPeriod = {0, 100 * 1000 * 1000};

void RunWake(HandoffRequest*) PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  g_wake_queued.store(false, std::memory_order_relaxed);
}

// Whether a thread of the program is alive: the kernel's count, less the
// main thread (a zombie until the process ends), the template and the spares.
// Runs on the template, in watch mode only.
bool ProgramThreadsRemain() PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  int n = ProcessThreadCount();
  return n < 0 || n - 1 > 1 + SpareThreadCount() || !MainThreadExited();
}

// Asks the template loop to return after the current batch. Runs on the
// template thread.
void RunStop(HandoffRequest*) PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  PRISTINE_CHECK_ROLE(Bits(Role::kTemplate));
  g_stop_requested = true;
}

// Brings the template to the baseline where its creator differed in what a
// thread can repair on itself. Runs on the template, before it serves.
bool RepairSelf() PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  for (int i = 0; i < kDimCount; ++i) {
    int fd = g_repairs.reenter_fd[i];
    if (fd >= 0 && RawSyscall(SYS_setns, fd, NamespaceCloneFlag(static_cast<Dim>(i))) != 0) {
      return false;
    }
  }
  if (g_repairs.set_affinity &&
      RawSyscall(SYS_sched_setaffinity, 0, sizeof g_repairs.affinity, &g_repairs.affinity) != 0) {
    return false;
  }
  // The thread that started the template may have another nice value or
  // policy than the baseline (those follow their creator): take the
  // baseline's, so that the threads created here start with it.
  if (!(g_start_sched == g_thread_sched)) {
    struct sched_param param = {};
    param.sched_priority = g_start_sched.priority;
    RawSyscall(SYS_sched_setscheduler, 0, g_start_sched.policy, &param);
    RawSyscall(SYS_setpriority, PRIO_PROCESS, 0, g_start_sched.nice);
  }
  return true;
}

// Sets up the template's state in the allocator before anyone can wait on it.
// glibc's pthread_create, which the template calls, allocates the new
// thread's TLS vector through whatever malloc comes first in lookup order,
// and an allocator takes global locks when it first sees a thread (jemalloc
// picks an arena, and with background threads enabled takes the
// background_thread_lock that it holds itself while it creates its first
// background thread). Only the thread starting the template waits now, and
// it is making a change of its own state, not allocating. Later allocations
// here use the template's thread cache and arena. Runs on the template.
void SetUpAllocator() {
  void* volatile block = malloc(64);  // bound at load (-z now): no loader entry
  free(block);
}

// The template's body. Runs on the template thread: only raw system calls,
// the queue, and request run functions (which follow the same rules).
void* TemplateMain(void*) {
  ScopedRole role(kTemplateRole);
  RawSyscall(SYS_prctl, PR_SET_NAME, kTemplateName);
  if (!RepairSelf()) {
    HappensBefore(&g_started);
    g_started.store(kFailed, std::memory_order_release);
    FutexWakeAll(&g_started);
    return nullptr;
  }
  SetUpAllocator();
  g_securebits.store(RawSyscall(SYS_prctl, PR_GET_SECUREBITS), std::memory_order_relaxed);
  ReadOwnSecurity();
  HappensBefore(&g_started);
  g_started.store(static_cast<uint32_t>(RawGettid()), std::memory_order_release);
  FutexWakeAll(&g_started);
  g_stop_requested = false;
  while (!g_stop_requested) {
    bool watching = g_main_exited.load(std::memory_order_acquire);
    HandoffRequest* req = g_queue.TakeAll(watching ? &kWatchPeriod : nullptr);
    if (req == nullptr && watching && !ProgramThreadsRemain()) {
      // Nobody is left to post: refuse requests, let the spares go, and go.
      g_running.store(false, std::memory_order_seq_cst);
      RetireAllSpares();
      return nullptr;
    }
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

bool StartTemplate(const TemplateRepairs& repairs) {
  // Everything the template calls is resolved before it exists.
  if (REAL(pthread_create) == nullptr || LIBC(pthread_join) == nullptr) return false;
  ResolveThreadMaking();
  BaselineSched(&g_start_sched);
  if (!ReadSched(0, &g_thread_sched)) g_thread_sched = g_start_sched;
  g_repairs = repairs;
  // All signals blocked from its first instruction: no handler of the host
  // ever runs on the template. (glibc keeps its own internal signals, so a
  // process-wide setuid still reaches it.)
  sigset_t all;
  memset(&all, 0xff, sizeof all);
  SyncWord(&g_started, sizeof g_started);  // for race detectors (annotate.h)
  g_started.store(kStarting, std::memory_order_relaxed);
  int rc = EINVAL;
  // A small stack first; a process with a large static TLS, which lives on
  // every thread's stack, does not fit in it: then larger ones.
  // (ThreadSanitizer's is about 900 KiB, and its runtime warns about a stack
  // it cannot fit in: start above it.)
  for (size_t usable : {size_t{64} << 10, size_t{1} << 20, size_t{8} << 20}) {
    if (TsanLoaded() && usable < (size_t{1} << 20)) continue;
    if (!MapStack(usable, &g_stack)) return false;
    pthread_attr_t attr;
    LIBC(pthread_attr_init)(&attr);
    LIBC(pthread_attr_setstack)(&attr, static_cast<char*>(g_stack.base) + kGuard, usable);
    LIBC(pthread_attr_setsigmask_np)(&attr, &all);
    rc = CreateLibraryThread(&g_thread, &attr, TemplateMain, nullptr);
    LIBC(pthread_attr_destroy)(&attr);
    if (rc == 0) break;
    UnmapStack(&g_stack);
    if (rc != EINVAL) break;
  }
  if (rc != 0) return false;
  // The baseline refers to the template by tid, so wait for it to publish.
  uint32_t tid;
  while ((tid = g_started.load(std::memory_order_acquire)) == kStarting) {
    FutexWait(&g_started, kStarting);
  }
  HappensAfter(&g_started);
  if (tid == kFailed) {
    JoinLibraryThread(g_thread, nullptr);
    UnmapStack(&g_stack);
    return false;
  }
  BaselineSetTemplate(static_cast<int>(tid));
  g_running.store(true, std::memory_order_release);
  return true;
}

long TemplateSecurebits() { return g_securebits.load(std::memory_order_relaxed); }

bool TemplateSecurity(SecurityState* out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      FutexLock lock(&g_security.mu);
      if (g_security.valid) {
        *out = g_security.state;
        return true;
      }
    }
    HandoffRequest req;
    req.run = RunReadSecurity;
    if (!RunOnTemplate(&req)) return false;
  }
  return false;
}

void ForgetTemplateSecurity() {
  FutexLock lock(&g_security.mu);
  g_security.valid = false;
}

void NoteMainThreadExit() {
  g_main_exited.store(true, std::memory_order_release);
  if (g_wake_queued.exchange(true, std::memory_order_acq_rel)) return;
  g_wake_request.run = RunWake;
  if (!PostToTemplate(&g_wake_request)) g_wake_queued.store(false, std::memory_order_relaxed);
}

bool RunOnTemplate(HandoffRequest* req) {
  PRISTINE_CHECK_NOT_ROLE(Bits(Role::kTemplate));
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
  if (!g_running.load(std::memory_order_acquire)) return;
  g_running.store(false, std::memory_order_seq_cst);
  // Requests already admitted are served before the template stops.
  while (g_users.load(std::memory_order_seq_cst) != 0) RawSyscall(SYS_sched_yield);
  HandoffRequest stop;
  stop.run = RunStop;
  g_queue.Push(&stop);
  HandoffQueue::Await(&stop);
  JoinLibraryThread(g_thread, nullptr);
  UnmapStack(&g_stack);  // glibc forgot it at the join: a caller-supplied stack
  WaitUntilThreadReleased(static_cast<int>(g_started.load(std::memory_order_relaxed)));
  RetireAllSpares();
}

void ForgetTemplateAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  PRISTINE_CHECK_ROLE(Bits(Role::kForkChild));
  g_queue.ResetAfterFork();
  ForgetSparesAfterFork();
  g_running.store(false, std::memory_order_relaxed);
  g_users.store(0, std::memory_order_relaxed);
  g_started.store(kStarting, std::memory_order_relaxed);
  g_main_exited.store(false, std::memory_order_relaxed);  // the child's main is alive
  g_wake_queued.store(false, std::memory_order_relaxed);
  g_security.mu.ResetAfterFork();
  ForgetTemplateSecurity();
  // glibc drops threads with caller-supplied stacks in a child without
  // caching their stacks: the mapping is the library's to remove.
  UnmapStack(&g_stack);
}

}  // namespace pristine
