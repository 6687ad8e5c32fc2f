#include "interpose.h"

#include <dlfcn.h>

#include "raw_syscall.h"

namespace pristine {
namespace interpose_internal {

RealFunctions g_real;
std::atomic<bool> g_resolved{false};

namespace {
std::atomic<int> g_resolver{0};  // 0 nobody yet, 1 resolving, 2 done
}  // namespace

// Runs in a half-initialised process (a constructor) or on an ordinary thread.
// One thread resolves; any other that arrives meanwhile yields until it is done
// (resolution takes microseconds and waits on nothing of theirs).
void ResolveSlow() {
  int expected = 0;
  if (!g_resolver.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_resolver.load(std::memory_order_acquire) != 2) RawSyscall(SYS_sched_yield);
    return;
  }
#define PRISTINE_RESOLVE_REAL(name, type) \
  g_real.name = reinterpret_cast<type>(dlsym(RTLD_NEXT, #name));
  PRISTINE_REAL_FUNCTIONS(PRISTINE_RESOLVE_REAL)
#undef PRISTINE_RESOLVE_REAL
  g_resolver.store(2, std::memory_order_release);
  g_resolved.store(true, std::memory_order_release);
}

}  // namespace interpose_internal
}  // namespace pristine
