// SPDX-License-Identifier: Apache-2.0
// The interposition layer: how pristine puts its functions in front of libc's,
// and nothing about what they do (that is entry_points.cc and the modules it
// calls). Modelled on LLVM compiler-rt's lib/interception.
//
// An entry point is an exported, extern "C" function with libc's name; because
// libpristine.so is preloaded, the dynamic linker binds the program's and every
// other library's references to it. The "real" function is the next definition
// in lookup order (libc's), found with dlsym(RTLD_NEXT) and cached.
//
// When: each function at its first call, so that a process that never calls
// it never pays for the lookup (process start-up matters: every exec under
// LD_PRELOAD loads the shim, and nothing is looked up at load). A first call
// is on an ordinary thread: the functions a signal handler may call
// (sigprocmask, pthread_sigmask, syscall) are not resolved at all, their
// entry points make the system call themselves, as glibc does. Never on the
// template thread, which must not enter the dynamic loader: what it calls is
// resolved by the caller that hands it work (StartTemplate resolves
// pthread_create before the template exists).
#ifndef PRISTINE_SHIM_INTERPOSE_H_
#define PRISTINE_SHIM_INTERPOSE_H_

#include <aio.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <mqueue.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
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
using SetpriorityFn = int (*)(__priority_which_t which, id_t who, int prio);
using SetgroupsFn = int (*)(size_t n, const gid_t* groups);
// Deprecated in the headers, but the only way to tell whether an attribute
// holds a caller-supplied stack (null if not).
using AttrGetStackaddrFn = int (*)(const pthread_attr_t* attr, void** stackaddr);

// X(name, type): every function pristine interposes.
#define PRISTINE_REAL_FUNCTIONS(X)                                   \
  X(pthread_create, decltype(&::pthread_create))                     \
  X(thrd_create, decltype(&::thrd_create))                           \
  X(pthread_exit, decltype(&::pthread_exit))                         \
  X(thrd_exit, decltype(&::thrd_exit))                               \
  X(setns, decltype(&::setns))                                       \
  X(unshare, decltype(&::unshare))                                   \
  X(sched_setaffinity, decltype(&::sched_setaffinity))               \
  X(pthread_setaffinity_np, decltype(&::pthread_setaffinity_np))     \
  X(sched_setscheduler, decltype(&::sched_setscheduler))             \
  X(sched_setparam, decltype(&::sched_setparam))                     \
  X(pthread_setschedparam, decltype(&::pthread_setschedparam))       \
  X(pthread_setschedprio, decltype(&::pthread_setschedprio))         \
  X(setpriority, SetpriorityFn)                            \
  X(nice, decltype(&::nice))                                         \
  X(pthread_setname_np, decltype(&::pthread_setname_np))             \
  X(pthread_setattr_default_np, decltype(&::pthread_setattr_default_np)) \
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
  X(setgroups, SetgroupsFn)                                          \
  X(setfsuid, decltype(&::setfsuid))                                 \
  X(setfsgid, decltype(&::setfsgid))                                 \
  X(timer_create, decltype(&::timer_create))                         \
  X(mq_notify, decltype(&::mq_notify))                               \
  X(getaddrinfo_a, decltype(&::getaddrinfo_a))                       \
  X(aio_read, decltype(&::aio_read))                                 \
  X(aio_write, decltype(&::aio_write))                               \
  X(aio_fsync, decltype(&::aio_fsync))                               \
  X(lio_listio, decltype(&::lio_listio))

// X(name, type): functions of libc the shim calls only on rare paths (a
// forwarded create's attributes, the template's start, waiting in the
// glibc-thread wrappers, reports). They are looked up at first use, like the
// real functions, rather than bound at load: with -z now every import is a
// symbol lookup through every loaded object at each process start.
#define PRISTINE_LIBC_FUNCTIONS(X)                                            \
  X(pthread_attr_init, decltype(&::pthread_attr_init))                        \
  X(pthread_getattr_default_np, decltype(&::pthread_getattr_default_np))      \
  X(pthread_attr_destroy, decltype(&::pthread_attr_destroy))                  \
  X(pthread_attr_getdetachstate, decltype(&::pthread_attr_getdetachstate))    \
  X(pthread_attr_setdetachstate, decltype(&::pthread_attr_setdetachstate))    \
  X(pthread_attr_getguardsize, decltype(&::pthread_attr_getguardsize))        \
  X(pthread_attr_setguardsize, decltype(&::pthread_attr_setguardsize))        \
  X(pthread_attr_getinheritsched, decltype(&::pthread_attr_getinheritsched))  \
  X(pthread_attr_setinheritsched, decltype(&::pthread_attr_setinheritsched))  \
  X(pthread_attr_getschedpolicy, decltype(&::pthread_attr_getschedpolicy))    \
  X(pthread_attr_setschedpolicy, decltype(&::pthread_attr_setschedpolicy))    \
  X(pthread_attr_getschedparam, decltype(&::pthread_attr_getschedparam))      \
  X(pthread_attr_setschedparam, decltype(&::pthread_attr_setschedparam))      \
  X(pthread_attr_getscope, decltype(&::pthread_attr_getscope))                \
  X(pthread_attr_setscope, decltype(&::pthread_attr_setscope))                \
  X(pthread_attr_getstacksize, decltype(&::pthread_attr_getstacksize))        \
  X(pthread_attr_setstacksize, decltype(&::pthread_attr_setstacksize))        \
  X(pthread_attr_getstackaddr, AttrGetStackaddrFn)                            \
  X(pthread_attr_setstack, decltype(&::pthread_attr_setstack))                \
  X(pthread_attr_getaffinity_np, decltype(&::pthread_attr_getaffinity_np))    \
  X(pthread_attr_setaffinity_np, decltype(&::pthread_attr_setaffinity_np))    \
  X(pthread_attr_getsigmask_np, decltype(&::pthread_attr_getsigmask_np))      \
  X(pthread_attr_setsigmask_np, decltype(&::pthread_attr_setsigmask_np))      \
  X(pthread_join, decltype(&::pthread_join))                                  \
  X(gai_error, decltype(&::gai_error))                                        \
  X(gai_suspend, decltype(&::gai_suspend))                                    \
  X(aio_error, decltype(&::aio_error))                                        \
  X(aio_suspend, decltype(&::aio_suspend))                                    \
  X(backtrace, decltype(&::backtrace))                                        \
  X(dl_iterate_phdr, decltype(&::dl_iterate_phdr))                            \
  X(dlopen, decltype(&::dlopen))                                              \
  X(dladdr1, decltype(&::dladdr1))

// The type of each real function: real_type::pthread_create, ...
namespace real_type {
#define PRISTINE_DECLARE_TYPE(name, type) using name = type;
PRISTINE_REAL_FUNCTIONS(PRISTINE_DECLARE_TYPE)
PRISTINE_LIBC_FUNCTIONS(PRISTINE_DECLARE_TYPE)
#undef PRISTINE_DECLARE_TYPE
}  // namespace real_type

// One slot per function, null until resolved.
struct RealFunctions {
#define PRISTINE_DECLARE_REAL(name, type) std::atomic<void*> name{nullptr};
  PRISTINE_REAL_FUNCTIONS(PRISTINE_DECLARE_REAL)
  PRISTINE_LIBC_FUNCTIONS(PRISTINE_DECLARE_REAL)
#undef PRISTINE_DECLARE_REAL
};

namespace interpose_internal {
extern RealFunctions g_real;
void* Resolve(const char* name);
}  // namespace interpose_internal

template <typename F>
inline F RealFunction(std::atomic<void*>* slot, const char* name) {
  void* f = slot->load(std::memory_order_acquire);
  if (__builtin_expect(f == nullptr, 0)) {
    f = interpose_internal::Resolve(name);
    slot->store(f, std::memory_order_release);
  }
  return reinterpret_cast<F>(f);
}

// REAL(name): the real `name`, resolved on first use. Null if this libc has
// no such function.
#define REAL(name)                                           \
  (::pristine::RealFunction<::pristine::real_type::name>(    \
      &::pristine::interpose_internal::g_real.name, #name))

// LIBC(name): a function of PRISTINE_LIBC_FUNCTIONS, looked up on first use.
#define LIBC(name) REAL(name)

// Threads the library makes itself (the template, spares), and runtimes that
// interpose pthread_create ahead of it.
//
// A ThreadSanitizer or AddressSanitizer runtime linked into the program, or
// preloaded before the library, interposes pthread_create ahead of it: the
// program's call reaches the runtime, which registers the new thread, wraps
// the start routine in its own trampoline and calls the next pthread_create,
// the library's. Such a runtime must know every thread that calls into it
// (TSan's malloc crashes on a thread it never saw), so the library makes its
// own threads through the first pthread_create in lookup order; the runtime's
// call back into the library's pthread_create is then sent straight to
// glibc's by a per-thread guard (InLibraryCreate). A forwarded thread is made
// with glibc's create (REAL): its start routine is already the runtime's
// trampoline, which registers it. A spare cannot run such a trampoline (it
// starts on a thread the runtime registered already, or never saw), so there
// are no spares while an interposer is ahead (spares.cc).
//
// With the library first (a runtime loaded after it, e.g. gcc's libtsan as a
// dependency of the program), REAL is the runtime's: every thread goes
// through it, and the hand-off's ordering is published to it (annotate.h).

// Looks up the first pthread_create and pthread_join in lookup order and the
// ThreadSanitizer annotation functions. On an ordinary thread, before the
// library makes its first thread (StartTemplate). Idempotent.
void ResolveThreadMaking();

// Whether another pthread_create comes before the library's in lookup order.
// False until ResolveThreadMaking ran.
bool InterposerAhead();

// pthread_create through the first pthread_create in lookup order, for the
// library's own threads (the template, spares). Any thread.
int CreateLibraryThread(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                        void* arg);

// pthread_join through the first pthread_join in lookup order, for threads
// made by CreateLibraryThread. Any thread.
int JoinLibraryThread(pthread_t thread, void** result);

namespace interpose_internal {
extern __thread bool t_library_create __attribute__((tls_model("initial-exec")));
}  // namespace interpose_internal

// Whether the calling thread is inside CreateLibraryThread: a pthread_create
// that reaches the library now comes from the interposer ahead of it and goes
// straight to glibc's. A load of a thread-local.
inline bool InLibraryCreate() { return interpose_internal::t_library_create; }

// ThreadSanitizer's __tsan_acquire / __tsan_release, when a TSan runtime is
// loaded and every thread the library makes goes through it (the library is
// ahead of it); null otherwise. Resolved by ResolveThreadMaking.
using TsanSyncFn = void (*)(void* addr);
TsanSyncFn TsanAcquire();
TsanSyncFn TsanRelease();

// Whether a ThreadSanitizer runtime is loaded (it needs a large static TLS on
// every thread's stack). False until ResolveThreadMaking ran.
bool TsanLoaded();

}  // namespace pristine

#endif  // PRISTINE_SHIM_INTERPOSE_H_
