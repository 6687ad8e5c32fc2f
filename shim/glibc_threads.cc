// SPDX-License-Identifier: Apache-2.0
// glibc's own thread creators: timer_create and mq_notify with SIGEV_THREAD,
// getaddrinfo_a and POSIX aio start helper threads through glibc's internal
// pthread_create, which no interposer sees, and those threads run the
// program's callbacks. Their entry points validate as glibc does, then run
// the call through RunWithCleanThreads so that the threads glibc starts get
// the baseline state and never more privileges than the caller.
//
// Entry points run on any thread of the host (never the template); the
// calls they hand to RunWithCleanThreads may run on the template (see there).

#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstring>

#include "baseline.h"
#include "create.h"
#include "handoff.h"
#include "interpose.h"
#include "lifecycle.h"
#include "options.h"
#include "policy.h"
#include "privileges.h"
#include "proc_fd.h"
#include "raw_syscall.h"
#include "report.h"
#include "state.h"
#include "taint.h"
#include "template_thread.h"

namespace pristine {
namespace {

// Whether `clock` is the calling thread's CPU-time clock: CLOCK_THREAD_CPUTIME_ID, or the same
// clock in the kernel's own encoding (include/linux/posix-timers.h: a negative id, bit 2 for
// "one thread", the thread id in ~(id >> 3), 0 meaning the caller), which glibc passes through.
// A timer on it must be created by the caller.
bool IsCallingThreadsCpuClock(clockid_t clock) {
  return clock == CLOCK_THREAD_CPUTIME_ID || (clock < 0 && (clock & 4) != 0 && ~(clock >> 3) == 0);
}

// Whether glibc's lio_listio queues `cb` (rt/lio_listio-common.c, rt/aio_misc.c): not null, not
// LIO_NOP, and a priority in [0, AIO_PRIO_DELTA_MAX] unless the opcode is one of glibc's own
// sync operations (sysdeps/generic/aio_misc.h: LIO_NOP + 1 and + 2), whose priority it zeroes.
bool IsQueuedByLioListio(const struct aiocb* cb) {
  if (cb == nullptr || cb->aio_lio_opcode == LIO_NOP) return false;
  if (cb->aio_lio_opcode == LIO_NOP + 1 || cb->aio_lio_opcode == LIO_NOP + 2) return true;
  return cb->aio_reqprio >= 0 && cb->aio_reqprio <= AIO_PRIO_DELTA_MAX;
}

bool AnyRequestQueued(struct aiocb* const list[], int n) {
  for (int i = 0; i < n; ++i) {
    if (IsQueuedByLioListio(list[i])) return true;
  }
  return false;
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

// For a caller that differs only in what a thread can repair on itself: the
// caller itself switches to the baseline's namespaces and CPU set for the
// call, with every signal blocked (no handler of the program runs in the
// baseline's state), and back after. Threads glibc starts meanwhile inherit
// the baseline, and the caller's privileges: never more than the caller's.
// Returns false, without calling, if the caller cannot switch.
bool RunSwitchedToBaseline(long (*call)(void*), void* ctx, const Route& route, long* result) {
  int proc = ProcFd();
  int baseline_fd[kDimCount];
  int own_fd[kDimCount];
  for (int& fd : own_fd) fd = -1;
  cpu_set_t baseline_affinity, own_affinity;
  bool affinity = route.carry.has(Dim::kAffinity);
  if ((affinity && (!BaselineAffinity(&baseline_affinity) || !ReadAffinity(0, &own_affinity))) ||
      (!route.repair.empty() && (proc < 0 || !BaselineReentryDescriptors(route.repair, baseline_fd)))) {
    return false;
  }
  bool ok = true;
  ForEachDim(route.repair, [&](Dim d) {
    char path[48] = "thread-self/";
    strncat(path, NamespaceLeaf(d), sizeof path - strlen(path) - 1);
    long fd = RawSyscall(SYS_openat, proc, path, O_RDONLY | O_CLOEXEC);
    // Out of the low numbers: the program's own calls made meanwhile (the
    // call itself is one) must not find a descriptor of ours under a number
    // it just closed.
    own_fd[static_cast<int>(d)] = fd >= 0 ? MoveToHighFd(static_cast<int>(fd)) : -1;
    ok = ok && fd >= 0;
  });
  uint64_t all = ~0ull, saved_mask = 0;
  if (ok) RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved_mask, sizeof all);
  DimSet entered;
  ForEachDim(route.repair, [&](Dim d) {
    if (ok && RawSyscall(SYS_setns, baseline_fd[static_cast<int>(d)], NamespaceCloneFlag(d)) == 0) {
      entered |= d;
    } else {
      ok = false;
    }
  });
  bool moved = ok && affinity &&
               RawSyscall(SYS_sched_setaffinity, 0, sizeof baseline_affinity, &baseline_affinity) == 0;
  ok = ok && (!affinity || moved);
  if (ok) *result = call(ctx);
  int saved_errno = errno;
  // Back to the caller's own state, whatever happened.
  if (moved) RawSyscall(SYS_sched_setaffinity, 0, sizeof own_affinity, &own_affinity);
  ForEachDim(entered, [&](Dim d) {
    RawSyscall(SYS_setns, own_fd[static_cast<int>(d)], NamespaceCloneFlag(d));
  });
  if (!route.repair.empty() || affinity) {
    RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved_mask, nullptr, sizeof saved_mask);
  }
  for (int fd : own_fd) {
    if (fd >= 0) RawSyscall(SYS_close, fd);
  }
  errno = saved_errno;
  return ok;
}

// Whether a thread created on the template would not have exactly the
// caller's privileges: then the template must not start glibc's threads for
// it, which run the program's callbacks with no setup of ours (never
// escalate). Read as a forwarded create reads them (privileges.h).
bool TemplateNotAsPrivileged() {
  PrivilegePlan plan;
  return !PlanPrivileges(&plan) || plan.apply;
}

// For libc calls that make glibc create threads internally, through its own
// pthread_create, which no interposer sees (timer_create and mq_notify with
// SIGEV_THREAD, getaddrinfo_a, POSIX aio), so that those threads, which run
// the program's callbacks, get the baseline state and never more privileges
// than the caller: runs `call(ctx)`
//  - on the caller switched to the baseline for the call (its namespaces and
//    CPU set, every signal blocked) when a create by the caller would be
//    repaired: glibc's threads then start from the caller, with its
//    privileges;
//  - on the template when a create would be forwarded, unless the template is
//    more privileged than the caller or `uses_fds` and the caller has a
//    private fd table (descriptors mean something else there);
//  - on the caller otherwise (the site is reported).
// errno is carried back. `call` may run on the template: it must only call
// functions already resolved by the caller (REAL(...) evaluated before this
// call) and never block. Any thread but the template.
long RunWithCleanThreads(long (*call)(void* ctx), void* ctx, bool uses_fds) {
  if (CreatePassesStraightThrough() || !PrepareForCreate()) return call(ctx);
  const Options& options = CurrentOptions();
  DimSet taint = CurrentTaint(options.verify == Verify::kStrict);
  Route route = Decide(taint, options, RepairableByCaller(taint & options.isolated & kRepairableDims),
                       lifecycle_internal::g_forward_all.load(std::memory_order_relaxed));
  long result = 0;
  if (route.decision == Decision::kRepaired && RunSwitchedToBaseline(call, ctx, route, &result)) {
    ReportTaintedCreate(taint, Decision::kRepaired, true);
    return result;
  }
  if (route.decision == Decision::kRepaired) route.decision = Decision::kForward;
  // Descriptors of a private fd table mean something else on the template,
  // and the template's privileges must not exceed the caller's.
  if (route.decision == Decision::kForward &&
      ((uses_fds && taint.has(Dim::kFiles)) || TemplateNotAsPrivileged())) {
    route.decision = Decision::kRestricted;
  }
  if (route.decision == Decision::kForward) {
    CallRequest req{};
    req.base.run = RunCall;
    req.call = call;
    req.ctx = ctx;
    // Counted before glibc's threads can exist (see CreateSlow).
    int report = ReportTaintedCreate(taint, route.decision, true);
    if (RunOnTemplate(&req.base)) {
      errno = req.error;
      return req.result;
    }
    ReportForwardFellThrough(report, taint);
  }
  if (!taint.empty()) ReportTaintedCreate(taint, route.decision, false);
  return call(ctx);
}

}  // namespace
}  // namespace pristine

using namespace pristine;


PRISTINE_EXPORT int timer_create(clockid_t clock, struct sigevent* sev, timer_t* timer) {
  // A thread CPU-time clock means the calling thread's: never elsewhere.
  if (sev == nullptr || sev->sigev_notify != SIGEV_THREAD || IsCallingThreadsCpuClock(clock)) {
    return REAL(timer_create)(clock, sev, timer);
  }
  struct Args {
    real_type::timer_create fn;
    clockid_t clock;
    struct sigevent* sev;
    timer_t* timer;
  } args{REAL(timer_create), clock, sev, timer};
  return static_cast<int>(RunWithCleanThreads(
      [](void* p) -> long {
        Args* a = static_cast<Args*>(p);
        return a->fn(a->clock, a->sev, a->timer);
      },
      &args, false));
}

PRISTINE_EXPORT int mq_notify(mqd_t mq, const struct sigevent* sev) {
  if (sev == nullptr || sev->sigev_notify != SIGEV_THREAD) return REAL(mq_notify)(mq, sev);
  struct Args {
    real_type::mq_notify fn;
    mqd_t mq;
    const struct sigevent* sev;
  } args{REAL(mq_notify), mq, sev};
  return static_cast<int>(RunWithCleanThreads(
      [](void* p) -> long {
        Args* a = static_cast<Args*>(p);
        return a->fn(a->mq, a->sev);
      },
      &args, true));
}

PRISTINE_EXPORT int getaddrinfo_a(int mode, struct gaicb* list[], int n, struct sigevent* sev) {
  // glibc's first check (resolv/getaddrinfo_a.c), before anything below rewrites the mode.
  if (mode != GAI_WAIT && mode != GAI_NOWAIT) {
    errno = EINVAL;
    return EAI_SYSTEM;
  }
  // GAI_WAIT would block the template: enqueue without waiting there, then
  // wait here, as glibc's GAI_WAIT does (no notification in that mode).
  struct Args {
    real_type::getaddrinfo_a fn;
    struct gaicb** list;
    int n;
    struct sigevent* sev;
  } args{REAL(getaddrinfo_a), list, n, mode == GAI_WAIT ? nullptr : sev};
  int rc = static_cast<int>(RunWithCleanThreads(
      [](void* p) -> long {
        Args* a = static_cast<Args*>(p);
        return a->fn(GAI_NOWAIT, a->list, a->n, a->sev);
      },
      &args, false));
  if (rc != 0 || mode != GAI_WAIT) return rc;
  for (;;) {
    bool pending = false;
    for (int i = 0; i < n; ++i) {
      if (list[i] != nullptr && LIBC(gai_error)(list[i]) == EAI_INPROGRESS) pending = true;
    }
    if (!pending) return 0;
    // glibc's GAI_WAIT is not interrupted by a handler: neither is this wait.
    LIBC(gai_suspend)(const_cast<const struct gaicb* const*>(list), n, nullptr);
  }
}

namespace pristine {
namespace {

// aio_read, aio_write and aio_fsync: glibc starts its I/O helper threads from
// the enqueuing thread. One of `read_write` and `fsync` is set.
struct AioArgs {
  int (*read_write)(struct aiocb*);
  int (*fsync)(int, struct aiocb*);
  int op;
  struct aiocb* cb;
};

int RunAio(AioArgs args) {
  return static_cast<int>(RunWithCleanThreads(
      [](void* p) -> long {
        AioArgs* a = static_cast<AioArgs*>(p);
        return a->fsync != nullptr ? a->fsync(a->op, a->cb) : a->read_write(a->cb);
      },
      &args, true));
}

}  // namespace
}  // namespace pristine

PRISTINE_EXPORT int aio_read(struct aiocb* cb) { return RunAio({REAL(aio_read), nullptr, 0, cb}); }
PRISTINE_EXPORT int aio_write(struct aiocb* cb) { return RunAio({REAL(aio_write), nullptr, 0, cb}); }
PRISTINE_EXPORT int aio_fsync(int op, struct aiocb* cb) {
  // glibc's two checks, in its order (rt/aio_fsync.c), on the caller's own
  // descriptor table and before the library opens anything that could take a
  // just-closed descriptor's number: a call that can queue nothing is not
  // handed on, nor reported as a tainted create.
  if (op != O_DSYNC && op != O_SYNC) {
    errno = EINVAL;
    return -1;
  }
  if (RawSyscall(SYS_fcntl, cb->aio_fildes, F_GETFL) < 0) {
    errno = EBADF;
    return -1;
  }
  return RunAio({nullptr, REAL(aio_fsync), op, cb});
}
// On 64-bit glibc these are the same functions and structures under a second
// name.
static_assert(sizeof(struct aiocb64) == sizeof(struct aiocb), "aiocb64 is aiocb");
PRISTINE_EXPORT int aio_read64(struct aiocb64* cb) {
  return aio_read(reinterpret_cast<struct aiocb*>(cb));
}
PRISTINE_EXPORT int aio_write64(struct aiocb64* cb) {
  return aio_write(reinterpret_cast<struct aiocb*>(cb));
}
PRISTINE_EXPORT int aio_fsync64(int op, struct aiocb64* cb) {
  return aio_fsync(op, reinterpret_cast<struct aiocb*>(cb));
}

PRISTINE_EXPORT int lio_listio(int mode, struct aiocb* const list[], int n, struct sigevent* sev) {
  // glibc's first check (rt/lio_listio-common.c), before anything below rewrites the mode: a bad
  // mode queues nothing.
  if (mode != LIO_WAIT && mode != LIO_NOWAIT) {
    errno = EINVAL;
    return -1;
  }
  // LIO_WAIT would block the template: submit without waiting there, then
  // wait here; as glibc's LIO_WAIT, fail with EIO if any request failed.
  // glibc's LIO_WAIT also waits for what it queued when it refused some
  // request; only when it queued nothing does it return the refusal itself.
  bool any_queued = mode == LIO_WAIT && AnyRequestQueued(list, n);
  struct Args {
    real_type::lio_listio fn;
    struct aiocb* const* list;
    int n;
    struct sigevent* sev;
  } args{REAL(lio_listio), list, n, mode == LIO_WAIT ? nullptr : sev};
  int rc = static_cast<int>(RunWithCleanThreads(
      [](void* p) -> long {
        Args* a = static_cast<Args*>(p);
        return a->fn(LIO_NOWAIT, a->list, a->n, a->sev);
      },
      &args, true));
  if (mode != LIO_WAIT || (rc != 0 && !any_queued)) return rc;
  bool failed = rc != 0;
  for (int i = 0; i < n; ++i) {
    if (!IsQueuedByLioListio(list[i])) continue;
    int e;
    while ((e = LIBC(aio_error)(list[i])) == EINPROGRESS) {
      const struct aiocb* one[1] = {list[i]};
      // glibc's LIO_WAIT returns to a handler's interruption with EINTR.
      if (LIBC(aio_suspend)(one, 1, nullptr) != 0 && errno == EINTR) return -1;
    }
    if (e != 0) failed = true;
  }
  if (failed) {
    errno = EIO;
    return -1;
  }
  return 0;
}
PRISTINE_EXPORT int lio_listio64(int mode, struct aiocb64* const list[], int n,
                                 struct sigevent* sev) {
  return lio_listio(mode, reinterpret_cast<struct aiocb* const*>(list), n, sev);
}
