// The interposition layer: how pristine puts its functions in front of libc's,
// and nothing about what they do (that is entry_points.cc and the modules it
// calls). Modelled on LLVM compiler-rt's lib/interception.
//
// An entry point is an exported, extern "C" function with libc's name; because
// libpristine.so is preloaded, the dynamic linker binds the program's and every
// other library's references to it. The "real" function is the next definition
// in lookup order (libc's), found once with dlsym(RTLD_NEXT) and cached.
//
// Resolution happens in the library constructor, or in the first entry point
// that runs before it (another library's constructor may create a thread
// first). Never on the template thread, which must not enter the dynamic
// loader: by the time a template exists, everything is resolved.
#ifndef PRISTINE_SHIM_INTERPOSE_H_
#define PRISTINE_SHIM_INTERPOSE_H_

#include <aio.h>
#include <mqueue.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

// Exports a function from libpristine.so (everything else is hidden).
#define PRISTINE_EXPORT extern "C" __attribute__((visibility("default")))

namespace pristine {

// glibc declares these without a header the shim may include.
using CapsetFn = int (*)(void* header, const void* data);
using PrctlFn = int (*)(int option, ...);
using SyscallFn = long (*)(long nr, ...);
using SetpriorityFn = int (*)(__priority_which_t which, id_t who, int prio);
using SetgroupsFn = int (*)(size_t n, const gid_t* groups);

// X(name, type): every function pristine interposes.
#define PRISTINE_REAL_FUNCTIONS(X)                                   \
  X(pthread_create, decltype(&::pthread_create))                     \
  X(thrd_create, decltype(&::thrd_create))                           \
  X(setns, decltype(&::setns))                                       \
  X(unshare, decltype(&::unshare))                                   \
  X(syscall, SyscallFn)                                              \
  X(sched_setaffinity, decltype(&::sched_setaffinity))               \
  X(pthread_setaffinity_np, decltype(&::pthread_setaffinity_np))     \
  X(pthread_sigmask, decltype(&::pthread_sigmask))                   \
  X(sigprocmask, decltype(&::sigprocmask))                           \
  X(sched_setscheduler, decltype(&::sched_setscheduler))             \
  X(sched_setparam, decltype(&::sched_setparam))                     \
  X(pthread_setschedparam, decltype(&::pthread_setschedparam))       \
  X(pthread_setschedprio, decltype(&::pthread_setschedprio))         \
  X(setpriority, SetpriorityFn)                            \
  X(nice, decltype(&::nice))                                         \
  X(pthread_setname_np, decltype(&::pthread_setname_np))             \
  X(prctl, PrctlFn)                                                  \
  X(capset, CapsetFn)                                                \
  X(setuid, decltype(&::setuid))                                     \
  X(seteuid, decltype(&::seteuid))                                   \
  X(setreuid, decltype(&::setreuid))                                 \
  X(setresuid, decltype(&::setresuid))                               \
  X(setgid, decltype(&::setgid))                                     \
  X(setegid, decltype(&::setegid))                                   \
  X(setregid, decltype(&::setregid))                                 \
  X(setresgid, decltype(&::setresgid))                               \
  X(setgroups, SetgroupsFn)

struct RealFunctions {
#define PRISTINE_DECLARE_REAL(name, type) type name;
  PRISTINE_REAL_FUNCTIONS(PRISTINE_DECLARE_REAL)
#undef PRISTINE_DECLARE_REAL
};

namespace interpose_internal {
extern RealFunctions g_real;
extern std::atomic<bool> g_resolved;
void ResolveSlow();
}  // namespace interpose_internal

// Resolves every real function (idempotent; cheap once done). Not on the
// template thread. Missing functions (an older libc) stay null.
inline void ResolveRealFunctions() {
  if (!interpose_internal::g_resolved.load(std::memory_order_acquire)) {
    interpose_internal::ResolveSlow();
  }
}

// The real functions. Resolves on first use; on the template thread this is
// only ever a load, since the template starts after resolution.
inline const RealFunctions& Real() {
  ResolveRealFunctions();
  return interpose_internal::g_real;
}

}  // namespace pristine

#endif  // PRISTINE_SHIM_INTERPOSE_H_
