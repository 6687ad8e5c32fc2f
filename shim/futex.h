// SPDX-License-Identifier: Apache-2.0
// Futex words and a small annotated lock built on them.
//
// Everything here uses raw system calls: a futex wait is therefore never a
// pthread cancellation point, and a signal that interrupts it (EINTR) is simply
// retried by the callers' loops, which re-check their condition first.
#ifndef PRISTINE_SHIM_FUTEX_H_
#define PRISTINE_SHIM_FUTEX_H_

#include <linux/futex.h>

#include <atomic>
#include <cstdint>
#include <ctime>

#include "absl/base/thread_annotations.h"
#include "annotate.h"
#include "raw_syscall.h"
#include "thread_role.h"

namespace pristine {

using FutexWord = std::atomic<uint32_t>;
static_assert(sizeof(FutexWord) == sizeof(uint32_t), "futex words are 32-bit");

// Sleeps while *word == expected. May return spuriously (signal, a wake meant
// for an earlier user of the same address); callers re-check in a loop.
// With a `timeout` (relative), also returns when it has passed.
inline void FutexWait(FutexWord* word, uint32_t expected,
                      const struct timespec* timeout = nullptr) {
  RawSyscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout);
}

inline void FutexWakeOne(FutexWord* word) {
  RawSyscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1);
}

inline void FutexWakeAll(FutexWord* word) {
  RawSyscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff);
}

// A mutex for the shim's slow paths (baseline cache, site table). Three-state
// futex mutex (Drepper, "Futexes Are Tricky", mutex3). Deliberately not
// pthread_mutex_t: it must be resettable in a forked child whose other threads
// vanished mid-critical-section (ResetAfterFork), and it never allocates.
class ABSL_LOCKABLE FutexMutex {
 public:
  constexpr FutexMutex() = default;
  FutexMutex(const FutexMutex&) = delete;
  FutexMutex& operator=(const FutexMutex&) = delete;

  // Never in a signal-safe entry point: the interrupted thread may hold it.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() PRISTINE_EXCLUDES_ROLE(kSignalSafeRole) {
    PRISTINE_CHECK_NOT_ROLE(Bits(Role::kSignalSafe));
    SyncWord(&state_, sizeof state_);  // for race detectors (annotate.h)
    uint32_t c = 0;
    if (!state_.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
      if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
      while (c != 0) {
        FutexWait(&state_, 2);
        c = state_.exchange(2, std::memory_order_acquire);
      }
    }
    HappensAfter(this);  // for race detectors (annotate.h)
  }

  // Takes the lock if it is free; never waits (for paths that may run in a
  // signal handler that interrupted a holder).
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    SyncWord(&state_, sizeof state_);  // for race detectors (annotate.h)
    uint32_t c = 0;
    if (!state_.compare_exchange_strong(c, 1, std::memory_order_acquire)) return false;
    HappensAfter(this);
    return true;
  }

  void Unlock() ABSL_UNLOCK_FUNCTION() {
    HappensBefore(this);
    if (state_.exchange(0, std::memory_order_release) == 2) FutexWakeOne(&state_);
  }

  // Only in a forked child, where the forking thread is the only thread: a
  // holder that existed in the parent does not exist here.
  void ResetAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    state_.store(0, std::memory_order_relaxed);
  }

 private:
  FutexWord state_{0};  // 0 unlocked, 1 locked, 2 locked with waiters
};

class ABSL_SCOPED_LOCKABLE FutexLock {
 public:
  explicit FutexLock(FutexMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      PRISTINE_EXCLUDES_ROLE(kSignalSafeRole)
      : mu_(mu) {
    mu_->Lock();
  }
  ~FutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  FutexLock(const FutexLock&) = delete;
  FutexLock& operator=(const FutexLock&) = delete;

 private:
  FutexMutex* const mu_;
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_FUTEX_H_
