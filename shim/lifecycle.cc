#include "lifecycle.h"

#include <pthread.h>

#include "baseline.h"
#include "futex.h"
#include "interpose.h"
#include "log.h"
#include "options.h"
#include "raw_syscall.h"
#include "template_thread.h"

namespace pristine {
namespace lifecycle_internal {
std::atomic<uint32_t> g_state{kUninitialised};
}  // namespace lifecycle_internal

using namespace lifecycle_internal;

namespace {

// When the template is (re)started, if it is not running.
enum class Plan : uint32_t {
  kRunning,        // started (or never wanted: see g_state)
  kAtFirstCreate,  // baseline=first-thread: the first create starts it
  kAtFirstNeed,    // forked child: the first create or state change starts it
};

FutexMutex g_mu;  // serialises template starts, stops and plan changes
std::atomic<Plan> g_plan{Plan::kRunning};

void WarnNoTemplate() {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  LogRaw(2, "pristine: could not start the template thread; thread creation passes "
            "through unchanged\n");
}

// Starts the template from the calling thread, which becomes the baseline.
// On failure the shim passes every create through.
bool StartTemplateHere() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  g_plan.store(Plan::kRunning, std::memory_order_relaxed);
  if (!StartTemplate()) {
    g_state.store(kPassThrough, std::memory_order_release);
    WarnNoTemplate();
    return false;
  }
  NoteRebase();       // every other thread compares itself afresh
  MarkThreadClean();  // this one is the baseline
  return true;
}

// Forked child, on the forking thread (now the only thread).
void AfterForkInChild() {
  g_mu.ResetAfterFork();
  ForgetTemplateAfterFork();
  BaselineForgetAfterFork();
  if (g_state.load(std::memory_order_relaxed) != kActive) return;
  g_plan.store(Plan::kAtFirstNeed, std::memory_order_relaxed);
  MarkThreadClean();
  NoteRebase();  // sends this thread's next create to the slow path
}

void Initialise() {
  LoadOptions();
  ResolveRealFunctions();
  const Options& options = CurrentOptions();
  if (options.mode == Mode::kOff) {
    g_state.store(kPassThrough, std::memory_order_release);
    return;
  }
  pthread_atfork(nullptr, nullptr, AfterForkInChild);
  FutexLock lock(&g_mu);
  if (options.baseline == BaselineMode::kFirstThread) {
    g_plan.store(Plan::kAtFirstCreate, std::memory_order_relaxed);
    NoteRebase();  // the first create takes the slow path, which starts it
    g_state.store(kActive, std::memory_order_release);
    return;
  }
  if (StartTemplateHere()) g_state.store(kActive, std::memory_order_release);
}

// Runs in a half-initialised process, before main, on the loading thread.
__attribute__((constructor)) void OnLibraryLoad() { EnsureInitialized(); }

}  // namespace

void EnsureInitialized() {
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (state == kActive || state == kPassThrough) return;
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
  if (g_plan.load(std::memory_order_acquire) != Plan::kRunning) {
    FutexLock lock(&g_mu);
    Plan plan = g_plan.load(std::memory_order_relaxed);
    // baseline=first-thread: whatever the thread did so far is the baseline.
    // Forked child: only a thread that recorded no change may define it.
    if (plan == Plan::kAtFirstCreate ||
        (plan == Plan::kAtFirstNeed && !ThreadRecordedChanges())) {
      StartTemplateHere();
    } else if (plan == Plan::kAtFirstNeed) {
      g_plan.store(Plan::kRunning, std::memory_order_relaxed);
      g_state.store(kPassThrough, std::memory_order_release);
      WarnNoTemplate();
    }
  }
  return g_state.load(std::memory_order_acquire) == kActive && TemplateRunning();
}

void BeforeSelfChange() {
  EnsureInitialized();
  if (g_plan.load(std::memory_order_acquire) != Plan::kAtFirstNeed) return;
  FutexLock lock(&g_mu);
  if (g_plan.load(std::memory_order_relaxed) == Plan::kAtFirstNeed && !ThreadRecordedChanges()) {
    StartTemplateHere();
  }
}

bool RebaseToCallingThread() {
  EnsureInitialized();
  if (g_state.load(std::memory_order_acquire) != kActive) return false;
  FutexLock lock(&g_mu);
  StopTemplate();
  return StartTemplateHere();
}

}  // namespace pristine
