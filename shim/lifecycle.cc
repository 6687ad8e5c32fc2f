// SPDX-License-Identifier: Apache-2.0
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

#include "baseline.h"
#include "create.h"
#include "futex.h"
#include "interpose.h"
#include "log.h"
#include "options.h"
#include "raw_syscall.h"
#include "report.h"
#include "spares.h"
#include "template_thread.h"

namespace pristine {
namespace lifecycle_internal {
std::atomic<uint32_t> g_state{kUninitialised};
}  // namespace lifecycle_internal

using namespace lifecycle_internal;

namespace {

// What happens next to the template.
enum class Plan : uint32_t {
  kSettled,        // running, or never again (pass-through)
  kAtFirstChange,  // start before the first change outside the snapshot
  kAtFirstCreate,  // baseline=first-thread: the first create defines the baseline
};

FutexMutex g_mu;  // serialises baseline definitions and template starts/stops
// The baseline's snapshot dimensions still have to be read: at load they are
// read just before the first recorded change (until then every thread is in
// the load state for them too), so that a process that changes nothing pays
// no system call for them. Written under g_mu; read without it as an early
// out, then again under it.
std::atomic<bool> g_snapshot_pending{false};
// The main thread (in a forked child, the forking thread), for OnMainThread.
// Recorded by the library constructor, which the dynamic loader runs on the
// main thread before main (a shim dlopen'ed later from another thread would
// only word its main-thread hint wrongly).
std::atomic<pthread_t> g_main_thread{0};
std::atomic<Plan> g_plan{Plan::kSettled};

void WarnNoTemplate() {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  LogRaw(2, "pristine: could not start the template thread; thread creation passes "
            "through unchanged\n");
}

// Starts the template from the calling thread (see "The first change" in
// lifecycle.h). The plan is settled only once the template runs and the
// baseline knows its tid: a change that reads the settled plan without the
// lock must find the template there. On failure the shim passes every create
// through, for good: there is no thread left in a known state.
bool StartTemplateHere() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  bool started = StartTemplate();
  if (!started) {
    g_state.store(kPassThrough, std::memory_order_release);
    WarnNoTemplate();
  }
  g_plan.store(Plan::kSettled, std::memory_order_release);
  return started;
}

// The calling thread defines the baseline from now on and is clean by
// definition. Where it is the only thread (a forked child, the first create
// with baseline=first-thread, after a single-threaded change) no other thread
// has to compare itself afresh; RebaseToCallingThread advances the epoch.
void DefineBaselineHere(OtherThreads others = OtherThreads::kInBaseline)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  BaselineCaptureSnapshot(others);
  g_snapshot_pending.store(false, std::memory_order_relaxed);
  MarkThreadClean();
  if (CurrentOptions().verify == Verify::kStrict) StartTemplateHere();
  else g_plan.store(Plan::kAtFirstChange, std::memory_order_release);
}

// The calling thread, the only one or the loading one, is the baseline, and
// no thread has recorded a change: the snapshot is read and the template
// started just before the first change (BeforeChange).
void DeferBaselineSnapshot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  g_snapshot_pending.store(true, std::memory_order_relaxed);
  g_plan.store(Plan::kAtFirstChange, std::memory_order_release);
}

// Reads the snapshot dimensions if load left them to the first need.
void CaptureSnapshotIfPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  if (!g_snapshot_pending.load(std::memory_order_relaxed)) return;
  BaselineCaptureSnapshot(OtherThreads::kInBaseline);  // no change recorded yet
  g_snapshot_pending.store(false, std::memory_order_relaxed);
}

// Forked child, on the forking thread (now the only thread): the template did
// not survive; the child's baseline is the forking thread's state.
void AfterForkInChild() {
  g_mu.ResetAfterFork();
  g_main_thread.store(pthread_self(), std::memory_order_relaxed);
  ForgetTemplateAfterFork();
  BaselineForgetAfterFork();
  ForgetSetupBlocksAfterFork();
  if (g_state.load(std::memory_order_relaxed) != kActive) return;
  FutexLock lock(&g_mu);
  if (CurrentOptions().verify == Verify::kStrict) {
    DefineBaselineHere();
  } else {
    // As at load, read at the first recorded change: this thread, the only
    // one, is in the child's baseline state until then (fork+exec pays
    // nothing).
    DeferBaselineSnapshot();
    MarkThreadClean();
  }
}

void Initialise() {
  LoadOptions();
  ReportInit();
  const Options& options = CurrentOptions();
  if (options.mode == Mode::kOff) {
    g_state.store(kPassThrough, std::memory_order_release);
    return;
  }
  pthread_atfork(nullptr, nullptr, AfterForkInChild);
  FutexLock lock(&g_mu);
  if (options.baseline == BaselineMode::kFirstThread) {
    // The first create takes the slow path (CreatePassesStraightThrough is
    // false until then), which defines the baseline.
    g_plan.store(Plan::kAtFirstCreate, std::memory_order_release);
    g_state.store(kAwaitingFirstCreate, std::memory_order_release);
    return;
  }
  if (options.verify == Verify::kStrict) DefineBaselineHere();
  else DeferBaselineSnapshot();
  if (g_state.load(std::memory_order_relaxed) == kInitialising) {
    g_state.store(kActive, std::memory_order_release);
  }
}

// Runs in a half-initialised process, before main, on the loading thread.
__attribute__((constructor)) void OnLibraryLoad() {
  g_main_thread.store(pthread_self(), std::memory_order_relaxed);
  EnsureInitialized();
}

// The number of threads in the process (/proc/self/stat field 20), or -1.
int ThreadCount() {
  char buf[1024];
  long fd = RawSyscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long n = RawSyscall(SYS_read, fd, buf, sizeof buf - 1);
  RawSyscall(SYS_close, fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // Fields after the command name, which is in parentheses and may hold spaces.
  const char* p = nullptr;
  for (long i = n - 1; i >= 0; --i) {
    if (buf[i] == ')') { p = buf + i + 1; break; }
  }
  if (p == nullptr) return -1;
  for (int field = 2; field < 20 && *p; ++p) {
    if (*p == ' ') ++field;
  }
  int count = 0;
  while (*p >= '0' && *p <= '9') count = count * 10 + (*p++ - '0');
  return count;
}

// After StopTemplate the exiting thread may still be counted for a moment
// (pthread_join returns when the kernel clears its tid, before it is
// unhashed). Waits, bounded, until the calling thread is alone.
void WaitUntilAlone() {
  for (int i = 0; i < 100000; ++i) {
    int n = ThreadCount();
    if (n == 1 || n < 0) return;
    RawSyscall(SYS_sched_yield);
  }
}

}  // namespace

void EnsureInitialized() {
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (state == kActive || state == kPassThrough || state == kAwaitingFirstCreate) return;
  if (state == kUninitialised &&
      g_state.compare_exchange_strong(state, kInitialising, std::memory_order_acq_rel)) {
    Initialise();
    return;
  }
  // Another thread is initialising; it waits on nothing of ours.
  while (g_state.load(std::memory_order_acquire) == kInitialising) {
    RawSyscall(SYS_sched_yield);
  }
}

bool PrepareForCreate() {
  EnsureInitialized();
  if (g_plan.load(std::memory_order_acquire) == Plan::kAtFirstCreate) {
    FutexLock lock(&g_mu);
    if (g_plan.load(std::memory_order_relaxed) == Plan::kAtFirstCreate) {
      // Whatever the process did before its first thread is its baseline.
      StopTemplate();
      DefineBaselineHere();
      uint32_t awaiting = kAwaitingFirstCreate;
      g_state.compare_exchange_strong(awaiting, kActive, std::memory_order_acq_rel);
    }
  }
  EnsureBaselineSnapshot();
  return g_state.load(std::memory_order_acquire) == kActive;
}

void EnsureBaselineSnapshot() {
  if (!g_snapshot_pending.load(std::memory_order_relaxed)) return;
  FutexLock lock(&g_mu);
  CaptureSnapshotIfPending();
}

void BeforeChange(DimSet dims, bool self) {
  EnsureInitialized();
  // A thread's own snapshot dimensions are compared with the snapshot, and a
  // forwarded thread gets them from its caller: no template needed, unless
  // the options isolate one of them.
  DimSet needs_template = (dims - kSnapshotDims) | (dims & CurrentOptions().isolated);
  bool want_template = g_plan.load(std::memory_order_acquire) == Plan::kAtFirstChange &&
                       (!self || !needs_template.empty());
  if (!want_template && !g_snapshot_pending.load(std::memory_order_relaxed)) return;
  FutexLock lock(&g_mu);
  // Until now no thread recorded any change (each comes here first), so this
  // one is still in the baseline state: for the snapshot dimensions, and,
  // until the template runs, for every dimension the template provides.
  CaptureSnapshotIfPending();
  if (want_template && g_plan.load(std::memory_order_relaxed) == Plan::kAtFirstChange) {
    StartTemplateHere();
  }
}

int RunSingleThreadedChange(int (*change)(void* ctx), void* ctx) {
  EnsureInitialized();
  // In a multi-threaded process this is an ordinary change of the calling
  // thread (setns into a mount namespace after unshare(CLONE_FS)), or one the
  // kernel refuses: the template must exist before it, as for any change.
  if (g_plan.load(std::memory_order_acquire) == Plan::kAtFirstChange && ThreadCount() > 1) {
    BeforeChange(DimSet::All(), true);
  }
  int rc = change(ctx);
  if (g_state.load(std::memory_order_acquire) != kActive) return rc;
  int saved_errno = errno;
  FutexLock lock(&g_mu);
  if (rc != 0) {
    // Refused because the template (and its spares) are the only other
    // threads: stop them, retry.
    // (EUSERS: a time namespace's way of saying it.)
    if ((saved_errno != EINVAL && saved_errno != EUSERS) || !TemplateRunning() ||
        ThreadCount() != 2 + SpareThreadCount()) {
      errno = saved_errno;
      return rc;
    }
    bool caller_clean = !ThreadRecordedChanges();
    StopTemplate();
    WaitUntilAlone();
    rc = change(ctx);
    saved_errno = errno;
    if (rc != 0) {
      // Still refused: bring the template back in the old baseline, which
      // needs a thread in it; a tainted caller is the only thread left, and
      // then its state has to become the baseline (said so, not silently).
      if (caller_clean) {
        StartTemplateHere();
      } else {
        LogRaw(2, "pristine: the template thread could not be restored after a failed "
                  "single-threaded namespace change; the calling thread's state is the new "
                  "baseline\n");
        DefineBaselineHere();
      }
      errno = saved_errno;
      return rc;
    }
  }
  // It succeeded. In a single-threaded process it changed the whole process.
  if (!TemplateRunning() && ThreadCount() == 1) DefineBaselineHere();
  errno = saved_errno;
  return rc;
}

bool OnMainThread() {
  return pthread_equal(pthread_self(), g_main_thread.load(std::memory_order_relaxed));
}

bool RebaseToCallingThread() {
  EnsureInitialized();
  if (g_state.load(std::memory_order_acquire) != kActive) return false;
  FutexLock lock(&g_mu);
  StopTemplate();
  NoteRebase();  // other threads exist: each compares itself afresh
  DefineBaselineHere(OtherThreads::kMayDiffer);
  // Other threads may compare themselves at any moment: start it right away.
  return TemplateRunning() || StartTemplateHere();
}

}  // namespace pristine
