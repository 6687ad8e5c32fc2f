// SPDX-License-Identifier: Apache-2.0
#include "lifecycle.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#include "absl/base/attributes.h"
#include "baseline.h"
#include "child_start.h"
#include "dlsym.h"
#include "futex.h"
#include "interpose.h"
#include "log.h"
#include "options.h"
#include "policy.h"
#include "proc_fd.h"
#include "raw_syscall.h"
#include "report.h"
#include "spares.h"
#include "template_thread.h"

namespace pristine {
namespace lifecycle_internal {
ABSL_CONST_INIT std::atomic<uint32_t> g_state{kUninitialised};
ABSL_CONST_INIT std::atomic<bool> g_forward_all{false};
ABSL_CONST_INIT std::atomic<bool> g_no_fast_path{false};
ABSL_CONST_INIT FutexMutex g_lifecycle_mu;
}  // namespace lifecycle_internal

using namespace lifecycle_internal;

namespace {

// The main thread (in a forked child, the forking thread), for OnMainThread.
// Recorded by the library constructor, which the dynamic loader runs on the
// main thread before main (a library dlopen'ed later from another thread
// would only word its main-thread hint wrongly).
ABSL_CONST_INIT std::atomic<pthread_t> g_main_thread{0};
// The process the library's records belong to: a vfork child (or any child
// that shares the parent's memory without a fork handler) has another pid
// and must neither start threads nor take the parent's locks.
ABSL_CONST_INIT std::atomic<int> g_pid{0};
// Whether any thread has changed a namespace of kRepairableDims: then a
// process-wide privilege drop may leave it unable to re-enter the baseline's.
ABSL_CONST_INIT std::atomic<bool> g_repairable_changed{false};

// Set on the thread running Initialise, so that a signal handler
// interrupting it does not wait for itself.
__thread bool t_initialising __attribute__((tls_model("initial-exec"))) = false;

bool InVforkChild() { return RawGetpid() != g_pid.load(std::memory_order_relaxed); }

void WarnNoTemplate() {
  ABSL_CONST_INIT static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  LogRaw(2, "pristine: could not start the template thread; thread creation passes "
            "through unchanged\n");
}

// The template and the snapshot are wanted from the start: verify=strict must
// be ready for changes no entry point sees. forward=all starts the template at
// the first create instead (PrepareForCreate), so that a program that creates
// no thread, or a forked child that only execs or exits, stays
// single-threaded as without the library: glibc's fork, for one, takes locks
// over the fork only in a multi-threaded process.
bool WantedAtDefinition(const Options& o) { return o.verify == Verify::kStrict; }

bool ForwardAll() { return g_forward_all.load(std::memory_order_relaxed); }

// What a thread may have changed and still start the template: the template
// repairs itself or sets its own (template_thread.h, TemplateMain).
constexpr DimSet kRepairedByTemplate =
    kRepairableDims | Dim::kAffinity | Dim::kSigmask | Dim::kSched | Dim::kName;

// Whether a change of `dims` by the calling thread (of itself if `self`)
// needs the template to run first.
bool ChangeNeedsTemplate(DimSet dims, bool self) {
  const Options& o = CurrentOptions();
  if (o.mode != Mode::kEnforce || !self) return false;  // another thread: affinity, sched, name
  // Known once the snapshot is taken, which BeforeChange makes sure of first.
  if (dims.intersects((kForwardedDims | BaselineUnenterable()) & o.isolated)) return true;
  // A thread in another namespace that gives up its capabilities cannot
  // re-enter the baseline's for its new threads any more: they will be
  // forwarded, and the template must exist before the drop (this thread,
  // which can still repair, starts it).
  constexpr DimSet kPrivilegeDrops = DimSet(Dim::kCaps) | Dim::kCreds;
  return dims.intersects(kPrivilegeDrops) &&
         ThreadRecordedDims().intersects(kRepairableDims & o.isolated);
}

// Starts the template from the calling thread (see "The first change" in
// lifecycle.h): it repairs itself where this thread differs in what it can
// repair. The state says kTemplateRunning only once the template runs and
// the baseline knows its tid. On failure the library passes every create
// through, for good: there is no thread left in a known state.
bool StartTemplateHere() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_lifecycle_mu) {
  TemplateRepairs repairs;
  for (int& fd : repairs.reenter_fd) fd = -1;
  DimSet differs = BaselineDifferences(kRepairableDims);
  // Affinity always: another thread may change this one's until the clone.
  repairs.set_affinity = BaselineAffinity(&repairs.affinity);
  bool started = (differs.empty() || BaselineReentryDescriptors(differs, repairs.reenter_fd)) &&
                 StartTemplate(repairs);
  g_state.store(started ? kTemplateRunning : kPassThrough, std::memory_order_release);
  if (!started) WarnNoTemplate();
  return started;
}

// Advances the state to `needed` (kSnapshotTaken or kTemplateRunning) from
// the calling thread, which has recorded no change the steps below cannot
// handle (lifecycle.h, invariant 1).
void AdvanceTo(uint32_t needed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_lifecycle_mu) {
  uint32_t state = g_state.load(std::memory_order_relaxed);
  if (state < kBaselineDefined || state >= needed) return;
  if (state == kBaselineDefined) {
    BaselineCaptureSnapshot();
    g_state.store(kSnapshotTaken, std::memory_order_release);
  }
  if (needed == kTemplateRunning) StartTemplateHere();
}

// The calling thread defines the baseline from now on and is clean by
// definition. Where it is the only thread (load, a forked child, the first
// create with baseline=first-thread, after a single-threaded change) no other
// thread has to compare itself afresh; a rebase says so with kMayRun.
void DefineBaselineHere(OtherThreads others, int tid = RawGettid())
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_lifecycle_mu) {
  BaselineDefine(others, tid);
  g_state.store(others == OtherThreads::kMayRun ? kSnapshotTaken : kBaselineDefined,
                std::memory_order_release);
  MarkThreadClean();
  const Options& o = CurrentOptions();
  if (WantedAtDefinition(o)) {
    AdvanceTo(o.mode == Mode::kEnforce ? kTemplateRunning : kSnapshotTaken);
  }
}

// Forked child, on the forking thread (now the only thread): the template did
// not survive; the child's baseline is the forking thread's state.
void AfterForkInChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ScopedRole role(kForkChildRole);
  g_lifecycle_mu.ResetAfterFork();
  g_main_thread.store(pthread_self(), std::memory_order_relaxed);
  g_pid.store(RawGetpid(), std::memory_order_relaxed);
  ForgetTemplateAfterFork();
  BaselineForgetAfterFork();
  ForgetChildSetupsAfterFork();
  if (g_state.load(std::memory_order_relaxed) < kBaselineDefined) return;
  FutexLock lock(&g_lifecycle_mu);
  // The forking thread is the child's main thread: its tid is the pid.
  DefineBaselineHere(OtherThreads::kNone, g_pid.load(std::memory_order_relaxed));
}

// Whether this copy stands aside for another copy of the library that came
// first (dlsym.h): the program's calls reach that copy, whose calls to "the
// real function" reach this one. This copy then passes everything on and
// writes no report, so that the process gets one set of figures. Said once.
bool StandAsideForAnotherCopy() {
  if (!AnotherCopyCameFirst()) return false;
  Dl_info other = {}, mine = {};
  LIBC(dladdr1)(FirstCopyEntry(), &other, nullptr, 0);
  LIBC(dladdr1)(ThisCopyEntry(), &mine, nullptr, 0);
  LogLine line;
  line << "pristine: another copy of the library is active in this process ("
       << (other.dli_fname != nullptr ? other.dli_fname : "?") << "); this one ("
       << (mine.dli_fname != nullptr ? mine.dli_fname : "?") << ") stands aside";
  LogRaw(2, line.Finish());
  return true;
}

void Initialise() {
  g_pid.store(RawGetpid(), std::memory_order_relaxed);
  if (StandAsideForAnotherCopy()) {
    g_state.store(kPassThrough, std::memory_order_release);
    return;
  }
  LoadOptions();
  ReportInit();
  const Options& options = CurrentOptions();
  if (options.mode == Mode::kOff) {
    g_state.store(kPassThrough, std::memory_order_release);
    return;
  }
  g_forward_all.store(options.forward_all && options.mode == Mode::kEnforce,
                      std::memory_order_relaxed);
  g_no_fast_path.store(g_forward_all.load(std::memory_order_relaxed) ||
                           options.verify == Verify::kStrict,
                       std::memory_order_relaxed);
  pthread_atfork(nullptr, nullptr, AfterForkInChild);
  if (options.baseline == BaselineMode::kFirstThread) {
    // The first create takes the slow path (CreatePassesStraightThrough is
    // false until then), which defines the baseline.
    g_state.store(kAwaitingFirstCreate, std::memory_order_release);
    return;
  }
  FutexLock lock(&g_lifecycle_mu);
  // The loading thread is the main thread (a library loaded later by another
  // thread would compare shared dimensions with the main thread's).
  DefineBaselineHere(OtherThreads::kNone, g_pid.load(std::memory_order_relaxed));
}

// The library's one load hook. Runs in a half-initialised process, before
// main, on the loading thread; the dynamic loader passes the program's
// (argc, argv, envp).
__attribute__((constructor)) void OnLibraryLoad(int argc, char** argv, char**) {
  g_main_thread.store(pthread_self(), std::memory_order_relaxed);
  ReportSaveArgs(argc, argv);
  EnsureInitialized();
}

}  // namespace

void EnsureInitialized() {
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (state >= kAwaitingFirstCreate) return;
  if (state == kUninitialised &&
      g_state.compare_exchange_strong(state, kInitialising, std::memory_order_acq_rel)) {
    t_initialising = true;
    Initialise();
    t_initialising = false;
    return;
  }
  // Interrupted by a signal handler while initialising: the library counts
  // as not active for that call.
  if (t_initialising) return;
  // Another thread is initialising; it waits on nothing of ours.
  while (g_state.load(std::memory_order_acquire) == kInitialising) {
    RawSyscall(SYS_sched_yield);
  }
}

bool PrepareForCreate() {
  EnsureInitialized();
  if (g_state.load(std::memory_order_acquire) == kAwaitingFirstCreate) {
    FutexLock lock(&g_lifecycle_mu);
    // Whatever the process did before its first thread is its baseline.
    if (g_state.load(std::memory_order_relaxed) == kAwaitingFirstCreate) {
      DefineBaselineHere(OtherThreads::kNone);
    }
  }
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (ForwardAll() && state >= kBaselineDefined && state < kTemplateRunning &&
      (ThreadRecordedDims() - kRepairedByTemplate).empty()) {
    // forward=all's template, started by a create's caller that differs from
    // the baseline at most in what the template repairs (lifecycle.h,
    // invariant 1). A caller that changed more (its privileges, a dimension
    // the options inherit) creates its thread itself until another starts it.
    FutexLock lock(&g_lifecycle_mu);
    AdvanceTo(kTemplateRunning);
    state = g_state.load(std::memory_order_acquire);
  }
  return state >= kBaselineDefined;
}

bool BaselineAvailable() {
  EnsureInitialized();
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (state == kBaselineDefined) {
    // No change recorded anywhere: the calling thread is in the baseline.
    FutexLock lock(&g_lifecycle_mu);
    AdvanceTo(kSnapshotTaken);
  }
  return g_state.load(std::memory_order_acquire) >= kBaselineDefined;
}

void BeforeChange(DimSet dims, bool self) {
  if (InVforkChild()) return;
  EnsureInitialized();
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (state < kBaselineDefined) return;
  if (self && dims.intersects(kRepairableDims)) {
    g_repairable_changed.store(true, std::memory_order_relaxed);
  }
  // Every change but a signal mask's is compared with the snapshot, which
  // must be read before it; the signal mask's baseline is read at definition.
  if (state == kBaselineDefined && !(dims - Dim::kSigmask).empty()) {
    FutexLock lock(&g_lifecycle_mu);
    AdvanceTo(kSnapshotTaken);
  }
  // Then the template, if this change needs it: decided with the snapshot
  // read (which namespaces a thread can re-enter).
  if (g_state.load(std::memory_order_acquire) < kTemplateRunning &&
      ChangeNeedsTemplate(dims, self)) {
    FutexLock lock(&g_lifecycle_mu);
    AdvanceTo(kTemplateRunning);
  }
}

int RunSingleThreadedChange(DimSet dims, int (*change)(void* ctx), void* ctx) {
  if (InVforkChild()) return change(ctx);
  EnsureInitialized();
  // In a multi-threaded process this is an ordinary change of the calling
  // thread (setns into a mount namespace after unshare(CLONE_FS)), or one the
  // kernel refuses: whatever it needs must be there before it, as for any.
  if (ProcessThreadCount() != 1) BeforeChange(dims, true);
  int rc = change(ctx);
  if (g_state.load(std::memory_order_acquire) < kBaselineDefined) return rc;
  int saved_errno = errno;
  FutexLock lock(&g_lifecycle_mu);
  bool template_was_running = g_state.load(std::memory_order_relaxed) == kTemplateRunning;
  if (rc != 0) {
    // Refused, perhaps only because of the library's own threads (EUSERS: a
    // time namespace's way of saying it): stop them, let the kernel release
    // them, ask again. The second answer is about the program's threads.
    if ((saved_errno != EINVAL && saved_errno != EUSERS) || !template_was_running) {
      errno = saved_errno;
      return rc;
    }
    // The template can come back from this thread only if it is in the
    // baseline for what only forwarding isolates.
    bool can_restart = !ThreadRecordedDims().intersects(kForwardedDims);
    StopTemplate();
    g_state.store(kSnapshotTaken, std::memory_order_release);
    rc = change(ctx);
    saved_errno = errno;
    // The kernel stops counting a released thread a moment before its check
    // stops seeing it (another CPU may still hold the task list): while this
    // is the only thread the kernel counts, ask again, a bounded number of
    // times. With other threads of the program, the answer stands.
    for (int i = 0; rc != 0 && (saved_errno == EINVAL || saved_errno == EUSERS) && i < 100 &&
                    ProcessThreadCount() == 1;
         ++i) {
      RawSyscall(SYS_sched_yield);
      rc = change(ctx);
      saved_errno = errno;
    }
    if (rc != 0) {
      // Still refused (other threads of the program): bring the template
      // back in the old baseline if this thread can; else this thread's
      // state becomes the baseline, said so, never silently.
      if (can_restart) {
        StartTemplateHere();
      } else {
        LogRaw(2, "pristine: the template thread could not be restored after a failed "
                  "single-threaded namespace change; the calling thread's state is the new "
                  "baseline\n");
        NoteRebase();
        DefineBaselineHere(OtherThreads::kMayRun);
        AdvanceTo(kTemplateRunning);
      }
      errno = saved_errno;
      return rc;
    }
  }
  // It succeeded. In a single-threaded process it changed the whole process.
  if (ProcessThreadCount() == 1) DefineBaselineHere(OtherThreads::kNone);
  errno = saved_errno;
  return rc;
}

namespace {

// Whether the template's per-thread security differs from the calling
// thread's where a set*id call's outcome depends on it.
bool TemplateSecurityDiffersFromCaller() {
  SecurityState caller, base;
  if (!ReadSecurity(Whose::kCallingThread, &caller) || !TemplateSecurity(&base)) return true;
  return caller.cap_eff != base.cap_eff || caller.cap_prm != base.cap_prm ||
         caller.cap_inh != base.cap_inh ||
         RawSyscall(SYS_prctl, PR_GET_SECUREBITS) != TemplateSecurebits();
}

}  // namespace

bool BeforeProcessWideCredentialChange() {
  if (InVforkChild()) return false;
  EnsureInitialized();
  uint32_t state = g_state.load(std::memory_order_acquire);
  if (state < kSnapshotTaken) return false;  // no change recorded: nothing differs
  FutexLock lock(&g_lifecycle_mu);
  state = g_state.load(std::memory_order_relaxed);
  if (state == kSnapshotTaken && g_repairable_changed.load(std::memory_order_relaxed) &&
      CurrentOptions().mode == Mode::kEnforce &&
      !ThreadRecordedDims().intersects(kForwardedDims)) {
    // Started from this thread, it shares this thread's security: it follows.
    AdvanceTo(kTemplateRunning);
    return false;
  }
  if (state != kTemplateRunning || !TemplateSecurityDiffersFromCaller()) return false;
  StopTemplate();
  g_state.store(kSnapshotTaken, std::memory_order_release);
  // It can come back from this thread only if this thread is in the
  // baseline for what only forwarding isolates.
  return !ThreadRecordedDims().intersects(kForwardedDims);
}

void AfterProcessWideCredentialChange(bool restart) {
  NoteProcessWideSecurityChange();
  ForgetTemplateSecurity();
  if (!restart) return;
  FutexLock lock(&g_lifecycle_mu);
  AdvanceTo(kTemplateRunning);
}

bool OnMainThread() {
  return pthread_equal(pthread_self(), g_main_thread.load(std::memory_order_relaxed));
}

bool RebaseToCallingThread() {
  EnsureInitialized();
  if (g_state.load(std::memory_order_acquire) < kBaselineDefined) return false;
  FutexLock lock(&g_lifecycle_mu);
  bool template_was_running = g_state.load(std::memory_order_relaxed) == kTemplateRunning;
  StopTemplate();
  NoteRebase();  // other threads exist: each compares itself afresh
  DefineBaselineHere(OtherThreads::kMayRun);
  // Other threads may compare themselves at any moment: the snapshot (and a
  // template that ran before) right away, from this thread, the baseline now.
  AdvanceTo(template_was_running ? kTemplateRunning : kSnapshotTaken);
  return g_state.load(std::memory_order_acquire) >= kBaselineDefined;
}

}  // namespace pristine
