// SPDX-License-Identifier: Apache-2.0
// The functions libpristine.so exports in place of libc's. Each one only
// routes: it calls the real function (interpose.h) and tells the modules that
// keep the per-thread record what may have changed (taint.h), or hands thread
// creation to create.h. They run on any thread of the host, possibly before
// the library constructor; none runs on the template.
//
// Changes a thread makes to itself are recorded as pending on that thread,
// whatever the call returned: a pending dimension is only re-read from the
// kernel, so a failed call costs one extra read and nothing else.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "attr.h"
#include "baseline.h"
#include "create.h"
#include "interpose.h"
#include "lifecycle.h"
#include "raw_syscall.h"
#include "state.h"
#include "taint.h"
#include "template_thread.h"
#include "thread_role.h"

namespace pristine {
namespace {

bool IsSelfTid(long tid) { return tid == 0 || tid == RawGettid(); }

bool IsSelf(pthread_t thread) { return pthread_equal(thread, pthread_self()); }

// Records a change that `target_is_self` says hit the calling thread or another.
void NoteChange(bool target_is_self, DimSet dims) {
  if (target_is_self) NoteSelfChange(dims);
  else NoteCrossThreadChange();
}


DimSet DimsChangedByPrctl(int option) {
  switch (option) {
    case PR_SET_NAME: return Dim::kName;
    case PR_SET_NO_NEW_PRIVS: return Dim::kNnp;
    case PR_SET_SECCOMP: return Dim::kSeccomp;
    case PR_CAPBSET_DROP:
    case PR_CAP_AMBIENT:
    case PR_SET_SECUREBITS:
    case PR_SET_KEEPCAPS: return Dim::kCaps;
    default: return DimSet();
  }
}

// A libc-wrapper-shaped call: returns -1 and sets errno on failure.
long SyscallResult(long raw) {
  if (raw < 0 && raw > -4096) {
    errno = static_cast<int>(-raw);
    return -1;
  }
  return raw;
}

// syscall(SYS_rt_sigprocmask, how, set, old, size): async-signal-safe, as
// pthread_sigmask; the mask is recorded only when one was set.
long SignalMaskSyscall(const long a[6]) {
  ScopedRole role(kSignalSafeRole);
  long rc = SyscallResult(RawSyscall6(SYS_rt_sigprocmask, a[0], a[1], a[2], a[3], a[4], a[5]));
  if (a[1] != 0) NoteSelfChange(Dim::kSigmask);
  return rc;
}

}  // namespace
}  // namespace pristine

using namespace pristine;

PRISTINE_EXPORT int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                   void* (*start)(void*), void* arg) {
  return CreateThread(thread, attr, start, arg);
}

PRISTINE_EXPORT int thrd_create(thrd_t* thread, thrd_start_t start, void* arg) {
  return CreateC11Thread(thread, start, arg);
}

// A main thread that leaves with pthread_exit leaves the process to its other
// threads: the library's must not keep it alive (template_thread.h).
PRISTINE_EXPORT void pthread_exit(void* value) {
  if (OnMainThread()) NoteMainThreadExit();
  REAL(pthread_exit)(value);
  __builtin_unreachable();
}

PRISTINE_EXPORT void thrd_exit(int value) {
  if (OnMainThread()) NoteMainThreadExit();
  REAL(thrd_exit)(value);
  __builtin_unreachable();
}

// Changes what a null attr means; spares were made with the old defaults.
PRISTINE_EXPORT int pthread_setattr_default_np(const pthread_attr_t* attr) {
  int rc = REAL(pthread_setattr_default_np)(attr);
  if (rc == 0) NoteDefaultAttrsChanged();
  return rc;
}

PRISTINE_EXPORT int setns(int fd, int nstype) {
  int flags = SetnsNamespaceFlags(fd, nstype);
  DimSet dims = DimsChangedByUnshare(flags);
  int rc;
  // Linux allows these only in a single-threaded process (a mount namespace:
  // unless the thread's fs is private).
  if (flags & (CLONE_NEWUSER | CLONE_NEWNS | NamespaceCloneFlag(Dim::kTime))) {
    struct Args { int fd, nstype; } args{fd, nstype};
    rc = RunSingleThreadedChange(
        dims,
        [](void* p) {
          Args* a = static_cast<Args*>(p);
          return REAL(setns)(a->fd, a->nstype);
        },
        &args);
  } else {
    BeforeChange(dims, true);
    rc = REAL(setns)(fd, nstype);
  }
  NoteSelfChange(dims);
  return rc;
}

PRISTINE_EXPORT int unshare(int flags) {
  DimSet dims = DimsChangedByUnshare(flags);
  int rc;
  if (flags & CLONE_NEWUSER) {
    rc = RunSingleThreadedChange(
        dims, [](void* p) { return REAL(unshare)(*static_cast<int*>(p)); }, &flags);
  } else {
    BeforeChange(dims, true);
    rc = REAL(unshare)(flags);
  }
  NoteSelfChange(dims);
  return rc;
}

PRISTINE_EXPORT int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t* set) {
  bool self = IsSelfTid(pid);
  BeforeChange(Dim::kAffinity, self);
  int rc = REAL(sched_setaffinity)(pid, size, set);
  NoteChange(self, Dim::kAffinity);
  return rc;
}

PRISTINE_EXPORT int pthread_setaffinity_np(pthread_t thread, size_t size,
                                           const cpu_set_t* set) {
  bool self = IsSelf(thread);
  BeforeChange(Dim::kAffinity, self);
  int rc = REAL(pthread_setaffinity_np)(thread, size, set);
  NoteChange(self, Dim::kAffinity);
  return rc;
}

// What glibc's pthread_sigmask does (sysdeps/unix/sysv/linux/pthread_sigmask.c):
// never let the program block glibc's two internal signals, then the system
// call. Done here rather than through the real function so that a signal
// handler calling it never needs the real function looked up. Async-signal-
// safe, as POSIX requires: no lock, no lookup, no initialisation (a mask's
// baseline is read when the baseline is defined), only the thread's own
// record.
PRISTINE_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  ScopedRole role(kSignalSafeRole);
  uint64_t mask;
  if (set != nullptr) {
    memcpy(&mask, set, sizeof mask);
    mask &= ~kGlibcInternalSignals;
  }
  long rc = RawSyscall(SYS_rt_sigprocmask, how, set != nullptr ? &mask : nullptr, old,
                       sizeof mask);
  if (set != nullptr) NoteSelfChange(Dim::kSigmask);
  return rc < 0 ? static_cast<int>(-rc) : 0;
}

// Async-signal-safe, as pthread_sigmask.
PRISTINE_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  int rc = pthread_sigmask(how, set, old);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return 0;
}

PRISTINE_EXPORT int sched_setscheduler(pid_t pid, int policy, const struct sched_param* param) {
  bool self = IsSelfTid(pid);
  BeforeChange(Dim::kSched, self);
  int rc = REAL(sched_setscheduler)(pid, policy, param);
  NoteChange(self, Dim::kSched);
  return rc;
}

PRISTINE_EXPORT int sched_setparam(pid_t pid, const struct sched_param* param) {
  bool self = IsSelfTid(pid);
  BeforeChange(Dim::kSched, self);
  int rc = REAL(sched_setparam)(pid, param);
  NoteChange(self, Dim::kSched);
  return rc;
}

PRISTINE_EXPORT int pthread_setschedparam(pthread_t thread, int policy,
                                          const struct sched_param* param) {
  bool self = IsSelf(thread);
  BeforeChange(Dim::kSched, self);
  int rc = REAL(pthread_setschedparam)(thread, policy, param);
  NoteChange(self, Dim::kSched);
  return rc;
}

PRISTINE_EXPORT int pthread_setschedprio(pthread_t thread, int prio) {
  bool self = IsSelf(thread);
  BeforeChange(Dim::kSched, self);
  int rc = REAL(pthread_setschedprio)(thread, prio);
  NoteChange(self, Dim::kSched);
  return rc;
}

PRISTINE_EXPORT int setpriority(__priority_which_t which, id_t who, int prio) {
  // On Linux PRIO_PROCESS names one thread; a group or user means many.
  bool self = which == PRIO_PROCESS && IsSelfTid(static_cast<long>(who));
  BeforeChange(Dim::kSched, self);
  int rc = REAL(setpriority)(which, who, prio);
  NoteChange(self, Dim::kSched);
  return rc;
}

PRISTINE_EXPORT int nice(int inc) {
  BeforeChange(Dim::kSched, true);
  int rc = REAL(nice)(inc);
  NoteSelfChange(Dim::kSched);
  return rc;
}

PRISTINE_EXPORT int pthread_setname_np(pthread_t thread, const char* name) {
  bool self = IsSelf(thread);
  BeforeChange(Dim::kName, self);
  int rc = REAL(pthread_setname_np)(thread, name);
  NoteChange(self, Dim::kName);
  return rc;
}

PRISTINE_EXPORT int prctl(int option, ...) {
  va_list ap;
  va_start(ap, option);
  unsigned long a2 = va_arg(ap, unsigned long);
  unsigned long a3 = va_arg(ap, unsigned long);
  unsigned long a4 = va_arg(ap, unsigned long);
  unsigned long a5 = va_arg(ap, unsigned long);
  va_end(ap);
  DimSet dims = DimsChangedByPrctl(option);
  if (!dims.empty()) BeforeChange(dims, true);
  int rc = REAL(prctl)(option, a2, a3, a4, a5);
  if (!dims.empty()) NoteSelfChange(dims);
  return rc;
}

PRISTINE_EXPORT int capset(void* header, const void* data) {
  BeforeChange(Dim::kCaps, true);
  int rc = REAL(capset)(header, data);
  NoteSelfChange(Dim::kCaps);
  return rc;
}

// glibc's set*id functions change every thread of the process (glibc
// broadcasts them), the template included: the baseline moves with them.
#define PRISTINE_PROCESS_WIDE_CRED(name, params, args)           \
  PRISTINE_EXPORT int name params {                              \
    bool restart = BeforeProcessWideCredentialChange();          \
    int rc = REAL(name) args;                                    \
    int saved_errno = errno;                                     \
    AfterProcessWideCredentialChange(restart);                   \
    errno = saved_errno;                                         \
    return rc;                                                   \
  }
PRISTINE_PROCESS_WIDE_CRED(setuid, (uid_t u), (u))
PRISTINE_PROCESS_WIDE_CRED(seteuid, (uid_t u), (u))
PRISTINE_PROCESS_WIDE_CRED(setreuid, (uid_t r, uid_t e), (r, e))
PRISTINE_PROCESS_WIDE_CRED(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
PRISTINE_PROCESS_WIDE_CRED(setgid, (gid_t g), (g))
PRISTINE_PROCESS_WIDE_CRED(setegid, (gid_t g), (g))
PRISTINE_PROCESS_WIDE_CRED(setregid, (gid_t r, gid_t e), (r, e))
PRISTINE_PROCESS_WIDE_CRED(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
PRISTINE_PROCESS_WIDE_CRED(setgroups, (size_t n, const gid_t* g), (n, g))
#undef PRISTINE_PROCESS_WIDE_CRED

// setfsuid and setfsgid change the calling thread alone (glibc does not
// broadcast them): a thread that switched its filesystem ids differs in
// credentials, which a forwarded thread must keep.
PRISTINE_EXPORT int setfsuid(uid_t uid) {
  BeforeChange(Dim::kCreds, true);
  int rc = REAL(setfsuid)(uid);
  NoteSelfChange(Dim::kCreds);
  return rc;
}

PRISTINE_EXPORT int setfsgid(gid_t gid) {
  BeforeChange(Dim::kCreds, true);
  int rc = REAL(setfsgid)(gid);
  NoteSelfChange(Dim::kCreds);
  return rc;
}

// syscall(2): the same changes made without libc's wrappers. Raw credential
// calls change only the calling thread (unlike glibc's wrappers).
PRISTINE_EXPORT long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);
  va_end(ap);
  // A signal handler may change its mask this way: the signal-safe path.
  if (nr == SYS_rt_sigprocmask) return SignalMaskSyscall(a);
  switch (nr) {
    case SYS_setns:
      return setns(static_cast<int>(a[0]), static_cast<int>(a[1]));
    case SYS_unshare:
      return unshare(static_cast<int>(a[0]));
    case SYS_sched_setaffinity:
      return sched_setaffinity(static_cast<pid_t>(a[0]), static_cast<size_t>(a[1]),
                               reinterpret_cast<const cpu_set_t*>(a[2]));
    case SYS_prctl:
      return prctl(static_cast<int>(a[0]), a[1], a[2], a[3], a[4]);
    case SYS_capset:
      return capset(reinterpret_cast<void*>(a[0]), reinterpret_cast<const void*>(a[1]));
    default:
      break;
  }
  DimSet self_dims;
  bool cross = false;
  switch (nr) {
    case SYS_sched_setscheduler:
    case SYS_sched_setparam:
    case SYS_sched_setattr:
      if (IsSelfTid(a[0])) self_dims = Dim::kSched;
      else cross = true;
      break;
    case SYS_setpriority:
      if (a[0] == PRIO_PROCESS && IsSelfTid(a[1])) self_dims = Dim::kSched;
      else cross = true;
      break;
    case SYS_seccomp:
      self_dims = Dim::kSeccomp;
      break;
#ifdef SYS_landlock_restrict_self
    case SYS_landlock_restrict_self:
      self_dims = Dim::kLandlock;
      break;
#endif
    case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid:
    case SYS_setresuid: case SYS_setresgid: case SYS_setgroups:
    case SYS_setfsuid: case SYS_setfsgid:
      self_dims = DimSet(Dim::kCreds) | Dim::kCaps;
      break;
    default:
      break;
  }
  if (!self_dims.empty() || cross) BeforeChange(self_dims, !cross);
  // What glibc's syscall() does: the raw call, errno on failure.
  long rc = SyscallResult(RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
  if (!self_dims.empty()) NoteSelfChange(self_dims);
  if (cross) NoteCrossThreadChange();
  return rc;
}
