// SPDX-License-Identifier: Apache-2.0
// A structure the library needs only on some paths, mapped at its first use
// rather than kept in .bss: every process that preloads the library would
// otherwise map (and a constructor fault in) its pages at start-up, which
// the exec of a small program measurably pays for.
#ifndef PRISTINE_SHIM_LAZY_REGION_H_
#define PRISTINE_SHIM_LAZY_REGION_H_

#include <sys/mman.h>

#include <atomic>
#include <new>

#include "raw_syscall.h"

namespace pristine {

// One T, constructed in place in an anonymous mapping on first Get(true).
// Constant-initialised; any thread (two first users race: one mapping wins,
// the other is unmapped). Never unmapped: users may hold pointers into it.
template <typename T>
class LazyRegion {
 public:
  constexpr LazyRegion() = default;
  LazyRegion(const LazyRegion&) = delete;
  LazyRegion& operator=(const LazyRegion&) = delete;

  // The object, mapped now if `create`; null if not mapped (or the mapping
  // failed: callers degrade, never fail the host).
  T* Get(bool create) {
    T* t = ptr_.load(std::memory_order_acquire);
    if (t != nullptr || !create) return t;
    long mem = RawSyscall6(SYS_mmap, 0, sizeof(T), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem < 0 && mem > -4096) return nullptr;
    T* fresh = new (reinterpret_cast<void*>(mem)) T;
    if (ptr_.compare_exchange_strong(t, fresh, std::memory_order_acq_rel)) return fresh;
    fresh->~T();
    RawSyscall(SYS_munmap, fresh, sizeof(T));  // another thread won
    return t;
  }

 private:
  std::atomic<T*> ptr_{nullptr};
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_LAZY_REGION_H_
