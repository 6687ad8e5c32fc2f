// SPDX-License-Identifier: Apache-2.0
#include "create.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <atomic>
#include <cstring>
#include <new>

#include "baseline.h"
#include "handoff.h"
#include "interpose.h"
#include "lifecycle.h"
#include "log.h"
#include "options.h"
#include "policy.h"
#include "privileges.h"
#include "raw_syscall.h"
#include "report.h"
#include "spares.h"
#include "state.h"
#include "taint.h"
#include "template_thread.h"

namespace pristine {
namespace {

// What a new thread must do before its start routine, when its creator was
// not clean (direct creates) or when the template created it (forwarded).
// Allocated by the creator, freed by the new thread (or by the creator if the
// create fails).
struct ChildSetup {
  void* (*start)(void*) = nullptr;
  int (*c11_start)(void*) = nullptr;  // C11 threads: int-returning start
  void* arg = nullptr;
  ThreadTaint taint;                  // the new thread's taint record

  // Forwarded threads only: the caller's values of inherited dimensions.
  bool forwarded = false;
  bool set_sigmask = false;
  uint64_t sigmask = 0;
  bool set_name = false;
  char name[16] = {};
  bool set_sched = false;
  int sched_policy = 0;
  struct sched_param sched_param = {};
  bool set_nice = false;
  int nice = 0;
  bool set_affinity = false;
  cpu_set_t affinity;
  int ns_fd[kDimCount];  // namespaces to setns into, -1 for none
  PrivilegePlan privileges;  // at most the caller's (never escalate)
};

// Setup blocks come from a static pool, one bit each, so that a forwarded
// thread never calls free(): a first malloc call sets up a malloc arena for
// a thread that may never allocate (and tears it down at its exit). Only
// when every block is in use does a create fall back to malloc.
// The pool is mapped at the first create that needs a block, not part of the
// library's .bss: every process start would otherwise map (and a static
// constructor fault in) its pages. Blocks are constructed when handed out.
constexpr int kPoolBlocks = 64;
using SetupBlock = unsigned char[sizeof(ChildSetup)];
std::atomic<SetupBlock*> g_pool{nullptr};
std::atomic<uint64_t> g_pool_used{0};

SetupBlock* Pool() {
  SetupBlock* pool = g_pool.load(std::memory_order_acquire);
  if (pool != nullptr) return pool;
  long mem = RawSyscall6(SYS_mmap, 0, kPoolBlocks * sizeof(SetupBlock), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem < 0 && mem > -4096) return nullptr;
  pool = reinterpret_cast<SetupBlock*>(mem);
  SetupBlock* expected = nullptr;
  if (!g_pool.compare_exchange_strong(expected, pool, std::memory_order_acq_rel)) {
    RawSyscall(SYS_munmap, pool, kPoolBlocks * sizeof(SetupBlock));  // another thread won
    pool = expected;
  }
  return pool;
}

void* AllocateSetupBlock() {
  SetupBlock* pool = Pool();
  uint64_t used = g_pool_used.load(std::memory_order_relaxed);
  while (pool != nullptr && ~used != 0) {
    int i = __builtin_ctzll(~used);
    if (g_pool_used.compare_exchange_weak(used, used | (1ull << i), std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
      return pool[i];
    }
  }
  return malloc(sizeof(ChildSetup));
}

void FreeSetupBlock(ChildSetup* s) {
  SetupBlock* pool = g_pool.load(std::memory_order_acquire);
  auto* block = reinterpret_cast<SetupBlock*>(s);
  if (pool != nullptr && block >= pool && block < pool + kPoolBlocks) {
    g_pool_used.fetch_and(~(1ull << (block - pool)), std::memory_order_release);
  } else {
    free(s);
  }
}

ChildSetup* NewChildSetup(void* (*start)(void*), int (*c11_start)(void*), void* arg) {
  void* mem = AllocateSetupBlock();
  if (mem == nullptr) return nullptr;
  ChildSetup* s = new (mem) ChildSetup;
  s->start = start;
  s->c11_start = c11_start;
  s->arg = arg;
  for (int& fd : s->ns_fd) fd = -1;
  return s;
}

void FreeChildSetup(ChildSetup* s) {
  for (int fd : s->ns_fd) {
    if (fd >= 0) RawSyscall(SYS_close, fd);
  }
  FreeSetupBlock(s);
}

// The first code of a thread created with a ChildSetup, on that thread. For
// a forwarded thread it runs with every signal blocked (inherited from the
// template) and restores the caller's inherited state before any code of the
// program runs; the signal mask comes last.
void* ChildStart(void* p) {
  ChildSetup* s = static_cast<ChildSetup*>(p);
  if (s->forwarded) {
    if (s->set_name) RawSyscall(SYS_prctl, PR_SET_NAME, s->name);
    for (int i = 0; i < kDimCount; ++i) {
      if (s->ns_fd[i] >= 0) RawSyscall(SYS_setns, s->ns_fd[i], 0);
    }
    if (s->set_affinity) {
      RawSyscall(SYS_sched_setaffinity, 0, sizeof s->affinity, &s->affinity);
    }
    if (s->set_sched) {
      // Through glibc, which caches a thread's explicit scheduling parameters.
      REAL(pthread_setschedparam)(pthread_self(), s->sched_policy, &s->sched_param);
    }
    if (s->set_nice) RawSyscall(SYS_setpriority, PRIO_PROCESS, 0, s->nice);
    // Last: the steps above may need the baseline's privileges.
    if (!ApplyPrivileges(s->privileges)) {
      Log("pristine: a forwarded thread could not take its creator's exact privileges; it "
          "dropped all capabilities instead\n");
    }
  }
  AdoptTaint(s->taint);
  if (s->set_sigmask) {
    uint64_t mask = s->sigmask;
    RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, nullptr, sizeof mask);
  }
  void* (*start)(void*) = s->start;
  int (*c11_start)(void*) = s->c11_start;
  void* arg = s->arg;
  FreeChildSetup(s);
  if (c11_start != nullptr) {
    // As glibc's start_thread does for thrd_create.
    return reinterpret_cast<void*>(static_cast<uintptr_t>(c11_start(arg)));
  }
  return start(arg);
}

// A create request, run on the template thread.
struct CreateRequest {
  HandoffRequest base;
  const pthread_attr_t* attr;
  ChildSetup* setup;
  pthread_t thread;
  int result;
};

// Runs on the template thread (see template_thread.h for the rules).
void RunCreate(HandoffRequest* req) {
  CreateRequest* c = reinterpret_cast<CreateRequest*>(req);
  c->result = REAL(pthread_create)(&c->thread, c->attr, ChildStart, c->setup);
}

bool AttrHasSigmask(const pthread_attr_t* attr) {
  sigset_t mask;
  return attr != nullptr && LIBC(pthread_attr_getsigmask_np)(attr, &mask) == 0;
}

bool AttrHasExplicitSched(const pthread_attr_t* attr) {
  int inherit = PTHREAD_INHERIT_SCHED;
  return attr != nullptr && LIBC(pthread_attr_getinheritsched)(attr, &inherit) == 0 &&
         inherit == PTHREAD_EXPLICIT_SCHED;
}

// glibc reports "no CPU set in this attribute" as a set with every bit on.
bool AttrHasAffinity(const pthread_attr_t* attr) {
  if (attr == nullptr) return false;
  cpu_set_t set;
  if (LIBC(pthread_attr_getaffinity_np)(attr, sizeof set, &set) != 0) return false;
  for (size_t i = 0; i < sizeof set / sizeof set.__bits[0]; ++i) {
    if (~set.__bits[i] != 0) return true;
  }
  return false;
}

// Fills the forwarded thread's copy of what the policy inherits from the
// caller. Runs on the caller, which reads its own current values: inherited
// dimensions are copied whether or not they were found tainted.
void CaptureInherited(ChildSetup* s, const pthread_attr_t* attr, DimSet taint,
                      const Options& options) {
  s->forwarded = true;
  DimSet isolated = options.isolated;
  s->set_sigmask = !AttrHasSigmask(attr);
  s->sigmask = isolated.has(Dim::kSigmask) ? BaselineSigmask() : ReadSigmask();
  // The template's threads are named after it, so the name is always set;
  // it is the caller's own only if verified different from the baseline's.
  s->set_name = true;
  if (taint.has(Dim::kName) && !isolated.has(Dim::kName)) ReadName(s->name);
  else BaselineName(s->name);
  // The template runs with the baseline's scheduling (template_thread.cc):
  // only a caller verified to differ, with sched inherited, needs setting.
  SchedState sched;
  if (taint.has(Dim::kSched) && !isolated.has(Dim::kSched) && ReadSched(0, &sched)) {
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
  // thread enters the caller's through a descriptor.
  ForEachDim((taint & kNamespaceDims) - isolated, [&](Dim d) {
    static const char* const kLinks[] = {"/proc/thread-self/ns/net", "/proc/thread-self/ns/uts",
                                         "/proc/thread-self/ns/ipc", "/proc/thread-self/ns/mnt",
                                         "/proc/thread-self/ns/cgroup",
                                         "/proc/thread-self/ns/pid_for_children",
                                         "/proc/thread-self/ns/time_for_children"};
    long fd = RawSyscall(SYS_openat, AT_FDCWD, kLinks[static_cast<int>(d)],
                         O_RDONLY | O_CLOEXEC);
    s->ns_fd[static_cast<int>(d)] = fd >= 0 ? static_cast<int>(fd) : -1;
  });
  // What the new thread carries that differs from the baseline: the
  // inherited dimensions, to be verified on its first create.
  s->taint.pending = (taint - isolated).bits();
}

enum class ForwardResult { kDone, kNoTemplate, kPrivileges };

// Creates the thread on the template (or hands it to a spare). kDone: *rc
// is pthread_create's result. Otherwise nothing was created and the caller
// creates directly: no template serves, or the caller's privileges cannot be
// reproduced on a thread the template creates.
ForwardResult Forward(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                      int (*c11_start)(void*), void* arg, DimSet taint, int* rc) {
  const Options& options = CurrentOptions();
  ChildSetup* setup = NewChildSetup(start, c11_start, arg);
  if (setup == nullptr) {
    *rc = EAGAIN;
    return ForwardResult::kDone;
  }
  if (!PlanPrivileges(taint, &setup->privileges)) {
    FreeChildSetup(setup);
    return ForwardResult::kPrivileges;
  }
  CaptureInherited(setup, attr, taint, options);
  // Default attributes: a spare made ahead of time fits, if one is ready.
  bool spare_fits = attr == nullptr && TemplateRunning();
  if (spare_fits && HandToSpare(ChildStart, setup, thread)) {
    *rc = 0;
    return ForwardResult::kDone;
  }
  CreateRequest req{};
  req.base.run = RunCreate;
  req.attr = attr;
  req.setup = setup;
  do {
    if (!RunOnTemplate(&req.base)) {
      FreeChildSetup(setup);
      return ForwardResult::kNoTemplate;
    }
  } while (req.result == EAGAIN && RetireOneSpare());
  if (req.result != 0) {
    FreeChildSetup(setup);
  } else {
    *thread = req.thread;
    if (spare_fits) RefillSparesLater();  // after this create, not before it
  }
  *rc = req.result;
  return ForwardResult::kDone;
}

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

// The caller creates the thread itself. When it is not clean, the new thread
// starts with the caller's taint record, since it inherits the caller's state.
int CreateDirect(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                 int (*c11_start)(void*), void* arg) {
  // A spare holds a slot under the thread limits that would be free without
  // the shim: at EAGAIN, give it back and try again.
  if (!ThreadRecordedChanges()) {
    int rc;
    do {
      rc = c11_start != nullptr
               ? C11Error(REAL(thrd_create)(reinterpret_cast<thrd_t*>(thread), c11_start, arg))
               : REAL(pthread_create)(thread, attr, start, arg);
    } while (rc == EAGAIN && RetireOneSpare());
    return rc;
  }
  ChildSetup* setup = NewChildSetup(start, c11_start, arg);
  if (setup == nullptr) return EAGAIN;
  setup->taint = InheritedTaint();
  int rc;
  do {
    rc = REAL(pthread_create)(thread, attr, ChildStart, setup);
  } while (rc == EAGAIN && RetireOneSpare());
  if (rc != 0) FreeChildSetup(setup);
  return rc;
}

void HintMainThreadOnce(DimSet taint) {
  static std::atomic<bool> said{false};
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

// The calling thread's taint and what the policy makes of it. The slow paths
// only, after PrepareForCreate.
Decision DecideForCallingThread(DimSet* taint) {
  const Options& options = CurrentOptions();
  *taint = CurrentTaint(options.verify == Verify::kStrict);
  return Decide(*taint, options);
}

// Everything but the untainted fast path. Returns pthread_create's result.
int CreateSlow(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
               int (*c11_start)(void*), void* arg) {
  if (!PrepareForCreate()) return CreateDirect(thread, attr, start, c11_start, arg);
  DimSet taint;
  Decision decision = DecideForCallingThread(&taint);
  if (decision == Decision::kForward) {
    int rc;
    ForwardResult result = Forward(thread, attr, start, c11_start, arg, taint, &rc);
    if (result == ForwardResult::kDone) {
      ReportTaintedCreate(taint, decision, true);
      if (OnMainThread()) HintMainThreadOnce(taint);
      return rc;
    }
    if (result == ForwardResult::kPrivileges) decision = Decision::kRestricted;
  }
  if (!taint.empty()) ReportTaintedCreate(taint, decision, false);
  return CreateDirect(thread, attr, start, c11_start, arg);
}

// A libc call run on the template (RunWithCleanThreads).
struct CallRequest {
  HandoffRequest base;
  long (*call)(void*);
  void* ctx;
  long result;
  int error;
};

// Runs on the template thread (see template_thread.h for the rules).
void RunCall(HandoffRequest* req) {
  CallRequest* c = reinterpret_cast<CallRequest*>(req);
  errno = 0;
  c->result = c->call(c->ctx);
  c->error = errno;
}

}  // namespace

void ForgetSetupBlocksAfterFork() {
  // The threads that held blocks did not survive the fork; the forking
  // thread holds none outside a create.
  g_pool_used.store(0, std::memory_order_relaxed);
}

long RunWithCleanThreads(long (*call)(void* ctx), void* ctx, bool uses_fds) {
  if (CreatePassesStraightThrough() || !PrepareForCreate()) return call(ctx);
  DimSet taint;
  Decision decision = DecideForCallingThread(&taint);
  // Descriptors of a private fd table mean something else on the template.
  if (decision == Decision::kForward && uses_fds && taint.has(Dim::kFiles)) {
    decision = Decision::kRestricted;
  }
  if (decision == Decision::kForward) {
    CallRequest req{};
    req.base.run = RunCall;
    req.call = call;
    req.ctx = ctx;
    if (RunOnTemplate(&req.base)) {
      ReportTaintedCreate(taint, decision, true);
      errno = req.error;
      return req.result;
    }
  }
  if (!taint.empty()) ReportTaintedCreate(taint, decision, false);
  return call(ctx);
}

int CreateThread(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                 void* arg) {
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
