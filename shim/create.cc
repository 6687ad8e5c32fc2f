// SPDX-License-Identifier: Apache-2.0
// Thread creation under the policy, top to bottom: the exported creators call
// CreateThread / CreateC11Thread; an untainted caller goes straight to glibc;
// otherwise CreateSlow asks the policy (policy.h) how the new thread gets the
// baseline and takes one of three paths:
//
//   direct     CreateDirect: the caller's own create (nothing isolated
//              differs, or the policy cannot isolate: audit, restricted)
//   repaired   CreateRepaired: the caller's own create, with the baseline's
//              CPU set or signal mask in the attributes and the new thread
//              re-entering the baseline's namespaces before any program code
//              (child_start.h); it inherits the caller's privileges and
//              restrictions exactly
//   forwarded  CreateForwarded: a spare (spares.h) or the template
//              (template_thread.h) creates it in the baseline state, and it
//              takes what the policy inherits from the caller, privileges at
//              most the caller's (privileges.h)
#include "create.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>

#include <atomic>
#include <cstring>

#include "absl/base/attributes.h"
#include "annotate.h"
#include "attr.h"
#include "baseline.h"
#include "child_start.h"
#include "handoff.h"
#include "interpose.h"
#include "lifecycle.h"
#include "log.h"
#include "options.h"
#include "policy.h"
#include "privileges.h"
#include "proc_fd.h"
#include "raw_syscall.h"
#include "report.h"
#include "spares.h"
#include "state.h"
#include "taint.h"
#include "template_thread.h"

namespace pristine {
namespace {

// glibc's mapping of pthread_create results to C11 (thrd_create.c).
int C11Result(int rc) {
  switch (rc) {
    case 0: return thrd_success;
    case ENOMEM: return thrd_nomem;
    case ETIMEDOUT: return thrd_timedout;
    case EBUSY: return thrd_busy;
    default: return thrd_error;
  }
}

// The inverse, for a result of the real thrd_create. thrd_error stands for
// every other error number; EAGAIN (the common one) represents it, and maps
// back to thrd_error.
int C11Error(int result) {
  switch (result) {
    case thrd_success: return 0;
    case thrd_nomem: return ENOMEM;
    case thrd_timedout: return ETIMEDOUT;
    case thrd_busy: return EBUSY;
    default: return EAGAIN;
  }
}

// A create (`attempt()`, returning pthread_create's result), retried once per
// spare given back at EAGAIN: a spare holds a slot under the thread limits
// that would be free without the library, so the program gets glibc's answer.
template <typename Attempt>
int RetryingAtThreadLimit(Attempt attempt) {
  int rc;
  do {
    rc = attempt();
  } while (rc == EAGAIN && RetireOneSpare());
  return rc;
}

int RealCreateRetrying(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                       void* arg) {
  return RetryingAtThreadLimit([&] { return REAL(pthread_create)(thread, attr, start, arg); });
}

// The caller creates the thread itself, with `attr`. When it is not clean,
// the new thread starts with the caller's taint record (it inherits the
// caller's state) less `made_clean`, the dimensions the setup brings to the
// baseline; `setup` (may be null) is then completed and used.
int CreateOnCaller(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                   int (*c11_start)(void*), void* arg, ChildSetup* setup, DimSet made_clean) {
  if (setup == nullptr && !ThreadRecordedChanges()) {
    if (c11_start == nullptr) return RealCreateRetrying(thread, attr, start, arg);
    return RetryingAtThreadLimit([&] {
      return C11Error(REAL(thrd_create)(reinterpret_cast<thrd_t*>(thread), c11_start, arg));
    });
  }
  if (setup == nullptr) setup = NewChildSetup(start, c11_start, arg);
  if (setup == nullptr) return EAGAIN;
  ThreadTaint taint = InheritedTaint();
  taint.pending &= ~made_clean.bits();
  setup->taint = taint;
  int rc = RealCreateRetrying(thread, attr, ChildStart, setup);
  if (rc != 0) FreeChildSetup(setup);
  return rc;
}

int CreateDirect(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                 int (*c11_start)(void*), void* arg) {
  return CreateOnCaller(thread, attr, start, c11_start, arg, nullptr, DimSet());
}

// The signal mask the new thread must end up with when the library sets it:
// the one its attributes ask for, else the baseline's if the policy isolates
// the mask, else its creator's (read only if it changed it: else it is the
// baseline's).
uint64_t IntendedSigmask(const pthread_attr_t* attr, DimSet taint, const Options& options) {
  if (AttrHasSigmask(attr)) {
    sigset_t set;
    LIBC(pthread_attr_getsigmask_np)(attr, &set);
    uint64_t mask;
    memcpy(&mask, &set, sizeof mask);
    return mask & ~kGlibcInternalSignals;
  }
  if (!taint.has(Dim::kSigmask) || options.isolated.has(Dim::kSigmask)) return BaselineSigmask();
  return ReadSigmask();
}

// Decision::kRepaired: the caller creates a thread that is in the baseline
// for `route.carry` (given to glibc in a copy of the attributes) and
// `route.repair` (re-entered by the new thread before any program code: it
// starts with every signal blocked and restores its mask after).
int CreateRepaired(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                   int (*c11_start)(void*), void* arg, DimSet taint, const Route& route) {
  const Options& options = CurrentOptions();
  ChildSetup* setup = NewChildSetup(start, c11_start, arg);
  if (setup == nullptr) return EAGAIN;
  AttrCopy copy;
  bool ok = copy.Init(attr);
  cpu_set_t affinity;
  if (ok && route.carry.has(Dim::kAffinity) && !AttrHasAffinity(attr)) {
    ok = BaselineAffinity(&affinity) && copy.SetAffinity(affinity);
  }
  if (ok && !route.repair.empty()) {
    ok = BaselineReentryDescriptors(route.repair, setup->reenter_fd);
    setup->set_sigmask = true;
    setup->sigmask = IntendedSigmask(attr, taint, options);
    ok = ok && copy.SetSigmask(~0ull);
  } else if (ok && route.carry.has(Dim::kSigmask) && !AttrHasSigmask(attr)) {
    ok = copy.SetSigmask(BaselineSigmask());
  }
  if (!ok) {
    // libc could not copy the attributes (out of memory), or a rebase took
    // the descriptors since RepairableByCaller: the create glibc would make,
    // in the caller's state, said on the log and in the report.
    FreeChildSetup(setup);
    ReportTaintedCreate(taint, Decision::kRepaired, false);
    Log("pristine: the baseline could not be set up for a new thread (out of memory, or a "
        "rebase replaced it meanwhile); it runs in its creator's state\n");
    return CreateDirect(thread, attr, start, c11_start, arg);
  }
  ReportTaintedCreate(taint, Decision::kRepaired, true);
  return CreateOnCaller(thread, copy.get(), start, c11_start, arg, setup,
                        route.carry | route.repair);
}

// Fills the forwarded thread's copy of what the policy inherits from the
// caller. Runs on the caller, which reads its own current values: inherited
// dimensions are copied whether or not they were found tainted.
void CaptureInherited(ChildSetup* s, const pthread_attr_t* attr, DimSet taint,
                      const Options& options) {
  s->forwarded = true;
  DimSet isolated = options.isolated;
  // forward=all forwards callers whose name or scheduling may have changed
  // where no entry point sees it (a write to /proc/thread-self/comm, a raw
  // system call), which a thread created on the caller would inherit: read
  // them, as a verified taint would be (a few system calls; a mode for tests).
  bool forward_all = lifecycle_internal::g_forward_all.load(std::memory_order_relaxed);
  CaptureFpEnv(&s->fpenv);
  s->set_sigmask = !AttrHasSigmask(attr);
  if (s->set_sigmask) s->sigmask = IntendedSigmask(attr, taint, options);
  // The template's threads are named after it, so the name is always set;
  // it is the caller's own only if verified different from the baseline's.
  s->set_name = true;
  if ((taint.has(Dim::kName) || forward_all) && !isolated.has(Dim::kName)) ReadName(s->name);
  else BaselineName(s->name);
  // The template runs with the baseline's scheduling (template_thread.cc):
  // only a caller verified to differ, with sched inherited, needs setting.
  SchedState sched;
  bool sched_differs = taint.has(Dim::kSched) && !isolated.has(Dim::kSched) && ReadSched(0, &sched);
  if (!sched_differs && forward_all && !isolated.has(Dim::kSched) && ReadSched(0, &sched)) {
    SchedState base;
    BaselineSched(&base);
    sched_differs = !(sched == base);
  }
  if (sched_differs) {
    s->set_sched = !AttrHasExplicitSched(attr);
    s->sched_policy = sched.policy;
    s->sched_param.sched_priority = sched.priority;
    s->set_nice = true;
    s->nice = sched.nice;
    REAL(pthread_setschedparam);  // resolved here, not on the new thread
  }
  if (!isolated.has(Dim::kAffinity) && !AttrHasAffinity(attr)) {
    s->set_affinity = ReadAffinity(0, &s->affinity);
  }
  // Namespaces the options inherit but in which the caller differs: the new
  // thread enters the caller's through a descriptor, opened here in the fd
  // table the new thread will use (CreateForwarded sends a caller with a
  // private one through the template, which opens them: TemplateOpens).
  if (!taint.has(Dim::kFiles)) {
    int proc = ProcFd();
    ForEachDim((taint & kNamespaceDims) - isolated, [&](Dim d) {
      char path[48] = "thread-self/";
      strncat(path, NamespaceLeaf(d), sizeof path - strlen(path) - 1);
      long fd = proc < 0 ? -1 : RawSyscall(SYS_openat, proc, path, O_RDONLY | O_CLOEXEC);
      s->ns_fd[static_cast<int>(d)] = fd >= 0 ? static_cast<int>(fd) : -1;
    });
  }
  // What the new thread carries that differs from the baseline: the
  // inherited dimensions, to be verified on its first create.
  s->taint.pending = DimsToReapply(taint, options).bits();
}

// A create request, run on the template thread.
struct CreateRequest {
  HandoffRequest base;
  const pthread_attr_t* attr;
  ChildSetup* setup;
  int caller_tid;     // whose inherited namespaces the template opens (if any)
  DimSet open_ns;     // ... in the baseline's fd table: the caller's is private
  pthread_t thread;
  int result;
};

// Runs on the template thread (see template_thread.h for the rules): opens
// the caller's inherited namespaces for the new thread, then creates it.
void RunCreate(HandoffRequest* req) {
  CreateRequest* c = reinterpret_cast<CreateRequest*>(req);
  int proc = ProcFd();
  for (int i = 0; i < kDimCount; ++i) {
    if (!c->open_ns.has(static_cast<Dim>(i)) || proc < 0 || c->setup->ns_fd[i] >= 0) continue;
    char path[64];
    char digits[12];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(c->caller_tid); v; v /= 10) digits[n++] = '0' + v % 10;
    int k = 0;
    for (const char* p = "self/task/"; *p;) path[k++] = *p++;
    while (n) path[k++] = digits[--n];
    path[k++] = '/';
    for (const char* p = NamespaceLeaf(static_cast<Dim>(i)); *p;) path[k++] = *p++;
    path[k] = '\0';
    long fd = RawSyscall(SYS_openat, proc, path, O_RDONLY | O_CLOEXEC);
    c->setup->ns_fd[i] = fd >= 0 ? static_cast<int>(fd) : -1;
  }
  c->result = REAL(pthread_create)(&c->thread, c->attr, ChildStart, c->setup);
}

// Decision::kForward: hands the start routine to a spare when the attributes
// are the defaults, else has the template create the thread. The caller has
// planned its privileges; *rc is pthread_create's result. Returns false if
// no template serves (the create was not made).
bool CreateForwarded(pthread_t* thread, const pthread_attr_t* attr, ChildSetup* setup,
                     DimSet taint, int* rc) {
  const Options& options = CurrentOptions();
  CaptureInherited(setup, attr, taint, options);
  // The program's writes so far happen before the new thread's routine, for
  // race detectors that cannot see the hand-off (annotate.h).
  PublishToNewThread(setup);
  DimSet open_ns = taint.has(Dim::kFiles) ? (taint & kNamespaceDims) - options.isolated : DimSet();
  // Default attributes: a spare made ahead of time fits, if one is ready,
  // and if the defaults are still those it was made with.
  bool spare_fits = attr == nullptr && open_ns.empty() && !DefaultAttrsChanged();
  // An inherited CPU set is the new thread's before its first instruction,
  // as for a thread its caller creates: given to the spare, or to glibc in
  // the attributes (the thread's setup applies it again, harmlessly).
  const cpu_set_t* affinity = setup->set_affinity ? &setup->affinity : nullptr;
  if (spare_fits && HandToSpare(ChildStart, setup, thread, affinity)) {
    *rc = 0;
    return true;
  }
  AttrCopy copy;
  if (affinity != nullptr && copy.Init(attr) && copy.SetAffinity(*affinity)) attr = copy.get();
  CreateRequest req{};
  req.base.run = RunCreate;
  req.attr = attr;
  req.setup = setup;
  req.caller_tid = open_ns.empty() ? 0 : RawGettid();
  req.open_ns = open_ns;
  bool served = true;
  RetryingAtThreadLimit([&] {
    served = RunOnTemplate(&req.base);
    return served ? req.result : 0;
  });
  if (!served) return false;
  if (req.result != 0) {
    FreeChildSetup(setup);
  } else {
    *thread = req.thread;
    if (spare_fits) {  // after this create, not before it
      HandoffRequest* refill = WantMoreSpares();
      if (refill != nullptr && !PostToTemplate(refill)) CancelSpareRefill();
    }
  }
  *rc = req.result;
  return true;
}

void HintMainThreadOnce(DimSet taint) {
  ABSL_CONST_INIT static std::atomic<bool> said{false};
  if (said.exchange(true, std::memory_order_relaxed)) return;
  LogLine line;
  line << "pristine: the main thread created a thread while its state differed from the "
          "baseline (";
  bool first = true;
  ForEachDim(taint & CurrentOptions().isolated, [&](Dim d) {
    line << (first ? "" : ",") << DimName(d);
    first = false;
  });
  line << "); the new thread got the baseline state. If the program sets up the whole "
          "process in main before starting threads, run it with "
       << (StartedByWrapper() ? "pristine-run --baseline first-thread"
                              : "PRISTINE_OPTIONS=baseline=first-thread");
  Log(line.Finish());
}

}  // namespace

DimSet RepairableByCaller(DimSet dims) {
  int fds[kDimCount];
  if (dims.empty() || !BaselineReentryDescriptors(dims, fds)) return DimSet();
  bool privileges_unchanged =
      !ThreadRecordedDims().intersects(DimSet(Dim::kCaps) | Dim::kCreds) &&
      !ProcessWideSecurityChanged();
  if (!privileges_unchanged && !HoldsCapability(CAP_SYS_ADMIN)) return DimSet();
  return dims;
}

namespace {

// Whether a thread the template creates with `attr` would get a scheduling
// policy its caller could not give it: glibc applies the attributes' explicit
// real-time policy with its creator's privileges (the template's), and the
// caller may lack CAP_SYS_NICE (RLIMIT_RTPRIO then decides). Never escalate:
// such a caller creates the thread itself. `plan` is the caller's
// (PlanPrivileges).
bool SchedulingWouldEscalate(const pthread_attr_t* attr, const PrivilegePlan& plan) {
  if (!plan.apply || !AttrHasExplicitSched(attr)) return false;  // apply: caller != template
  int policy = SCHED_OTHER;
  if (LIBC(pthread_attr_getschedpolicy)(attr, &policy) != 0 ||
      (policy != SCHED_FIFO && policy != SCHED_RR)) {
    return false;
  }
  constexpr uint64_t kSysNice = 1ull << CAP_SYS_NICE;
  SecurityState base;
  return !TemplateSecurity(&base) ||
         ((base.cap_eff & kSysNice) != 0 && (plan.cap_eff & kSysNice) == 0);
}

// Everything but the untainted fast path. Returns pthread_create's result.
int CreateSlow(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
               int (*c11_start)(void*), void* arg) {
  if (!PrepareForCreate()) return CreateDirect(thread, attr, start, c11_start, arg);
  const Options& options = CurrentOptions();
  DimSet taint = CurrentTaint(options.verify == Verify::kStrict);
  bool forward_all = lifecycle_internal::g_forward_all.load(std::memory_order_relaxed);
  Route route =
      Decide(taint, options, RepairableByCaller(taint & options.isolated & kRepairableDims),
             forward_all);
  switch (route.decision) {
    case Decision::kRepaired:
      if (OnMainThread()) HintMainThreadOnce(taint);
      return CreateRepaired(thread, attr, start, c11_start, arg, taint, route);
    case Decision::kForward: {
      ChildSetup* setup = NewChildSetup(start, c11_start, arg);
      if (setup == nullptr) return EAGAIN;
      if (!PlanPrivileges(&setup->privileges) ||
          SchedulingWouldEscalate(attr, setup->privileges)) {
        FreeChildSetup(setup);
        ReportTaintedCreate(taint, Decision::kRestricted, true);
        return CreateDirect(thread, attr, start, c11_start, arg);
      }
      int rc;
      // Counted before the thread can exist: a process that exits while
      // this create returns still reports it.
      int report = ReportTaintedCreate(taint, Decision::kForward, true);
      if (CreateForwarded(thread, attr, setup, taint, &rc)) {
        // Only an isolated dimension is worth the hint (forward=all forwards
        // callers that differ in none).
        if (OnMainThread() && taint.intersects(options.isolated)) HintMainThreadOnce(taint);
        return rc;
      }
      // No template serves (a rebase is replacing it): the caller's create.
      FreeChildSetup(setup);
      ReportForwardFellThrough(report, taint);
      ReportTaintedCreate(taint, Decision::kForward, false);
      return CreateDirect(thread, attr, start, c11_start, arg);
    }
    case Decision::kDirect:
    case Decision::kAudited:
    case Decision::kRestricted:
    case Decision::kCount:
      break;
  }
  ReportTaintedCreate(taint, route.decision, true);
  return CreateDirect(thread, attr, start, c11_start, arg);
}

}  // namespace

int CreateThread(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                 void* arg) {
  // The library's own thread coming back from an interposer ahead of it
  // (interpose.h): glibc's create, not counted as the program's.
  if (InLibraryCreate()) return REAL(pthread_create)(thread, attr, start, arg);
  ReportCountCreate();
  if (CreatePassesStraightThrough()) return REAL(pthread_create)(thread, attr, start, arg);
  return CreateSlow(thread, attr, start, nullptr, arg);
}

int CreateC11Thread(thrd_t* thread, thrd_start_t start, void* arg) {
  ReportCountCreate();
  if (CreatePassesStraightThrough()) return REAL(thrd_create)(thread, start, arg);
  if (REAL(thrd_create) == nullptr) return thrd_error;
  // thrd_t and pthread_t are the same type in glibc (thrd_create.c asserts it).
  static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");
  return C11Result(CreateSlow(reinterpret_cast<pthread_t*>(thread), nullptr, nullptr, start, arg));
}

}  // namespace pristine
