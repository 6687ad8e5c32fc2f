// SPDX-License-Identifier: Apache-2.0
// Raw system calls that bypass libc entirely.
//
// Why: libpristine.so exports its own `syscall` (to see taints made through
// syscall(2)), so calling `syscall()` from inside the shim would call back into
// the shim. These helpers also never touch errno and are never cancellation
// points, which the handoff wait relies on. Safe in any context: before libc
// is initialised, on the template thread, in a forked child, in a signal
// handler.
#ifndef PRISTINE_SHIM_RAW_SYSCALL_H_
#define PRISTINE_SHIM_RAW_SYSCALL_H_

#include <sys/syscall.h>

namespace pristine {

// Returns the kernel's result: >= 0 on success, -errno on failure.
inline long RawSyscall6(long nr, long a1, long a2, long a3, long a4, long a5,
                        long a6) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8),
                     "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  register long x5 __asm__("x5") = a6;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
#else
#error "pristine supports x86_64 and aarch64"
#endif
}

template <typename A1 = long, typename A2 = long, typename A3 = long,
          typename A4 = long, typename A5 = long>
inline long RawSyscall(long nr, A1 a1 = 0, A2 a2 = 0, A3 a3 = 0, A4 a4 = 0,
                       A5 a5 = 0) {
  return RawSyscall6(nr, (long)a1, (long)a2, (long)a3, (long)a4, (long)a5, 0);
}

inline int RawGettid() { return static_cast<int>(RawSyscall(SYS_gettid)); }
inline int RawGetpid() { return static_cast<int>(RawSyscall(SYS_getpid)); }

}  // namespace pristine

#endif  // PRISTINE_SHIM_RAW_SYSCALL_H_
