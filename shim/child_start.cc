// SPDX-License-Identifier: Apache-2.0
#include "child_start.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <atomic>
#include <new>

#include "absl/base/attributes.h"
#include "annotate.h"
#include "interpose.h"
#include "lazy_region.h"
#include "log.h"
#include "raw_syscall.h"
#include "state.h"
#include "thread_role.h"

namespace pristine {
namespace {

// Setup blocks come from a pool, one bit each, so that a new thread never
// calls free(): a first malloc call sets up a malloc arena for a thread that
// may never allocate (and tears it down at its exit). Only when every block
// is in use does a create fall back to malloc. Blocks are constructed when
// handed out.
constexpr int kPoolBlocks = 64;
struct Pool {
  alignas(ChildSetup) unsigned char block[kPoolBlocks][sizeof(ChildSetup)];
};
ABSL_CONST_INIT LazyRegion<Pool> g_pool;
ABSL_CONST_INIT std::atomic<uint64_t> g_pool_used{0};

void* AllocateBlock() {
  Pool* pool = g_pool.Get(/*create=*/true);
  uint64_t used = g_pool_used.load(std::memory_order_relaxed);
  while (pool != nullptr && ~used != 0) {
    int i = __builtin_ctzll(~used);
    if (g_pool_used.compare_exchange_weak(used, used | (1ull << i), std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
      return pool->block[i];
    }
  }
  return malloc(sizeof(ChildSetup));
}

void FreeBlock(ChildSetup* s) {
  Pool* pool = g_pool.Get(/*create=*/false);
  auto* block = reinterpret_cast<unsigned char*>(s);
  if (pool != nullptr && block >= pool->block[0] && block < pool->block[0] + sizeof(Pool)) {
    size_t i = static_cast<size_t>(block - pool->block[0]) / sizeof(ChildSetup);
    g_pool_used.fetch_and(~(1ull << i), std::memory_order_release);
  } else {
    free(s);
  }
}

void CloseOwned(ChildSetup* s) {
  for (int fd : s->ns_fd) {
    if (fd >= 0) RawSyscall(SYS_close, fd);
  }
}

// The new thread re-enters the baseline's namespaces. The caller checked that
// it could (descriptors, capability), so a failure means the descriptor was
// taken from the library (a program that closed every descriptor) or a
// security module refused: the thread then runs in its creator's namespace,
// which is said on the log and kept in its taint record, never silently.
DimSet Reenter(const ChildSetup& s) PRISTINE_REQUIRES_ROLE(kNewThreadRole) {
  DimSet failed;
  for (int i = 0; i < kDimCount; ++i) {
    if (s.reenter_fd[i] < 0) continue;
    Dim d = static_cast<Dim>(i);
    if (RawSyscall(SYS_setns, s.reenter_fd[i], NamespaceCloneFlag(d)) != 0) failed |= d;
  }
  return failed;
}

void SayReentryFailed(DimSet failed) {
  LogLine line;
  line << "pristine: a new thread could not re-enter the baseline's namespace (";
  bool first = true;
  ForEachDim(failed, [&](Dim d) {
    line << (first ? "" : ",") << DimName(d);
    first = false;
  });
  line << "); it runs in its creator's";
  Log(line.Finish());
}

// Installs a floating-point environment read by CaptureFpEnv on the calling
// thread, as glibc's fesetenv does (without libm, which the library does not
// load). Runs on the new thread, before any code of the program.
void InstallFpEnv(const FpEnv& env) {
#if defined(__x86_64__)
  // The x87 environment is written whole (its status word cannot be loaded
  // alone): this thread's own, with the creator's control word and exception
  // flags. Its register stack is empty here, as at every call.
  struct {
    uint16_t cw, r1, sw, r2, rest[10];
  } x87;
  __asm__ volatile("fnstenv %0" : "=m"(x87));
  constexpr uint16_t kExceptFlags = 0x3f;
  x87.cw = env.x87_cw;
  x87.sw = static_cast<uint16_t>((x87.sw & ~kExceptFlags) | (env.x87_sw & kExceptFlags));
  __asm__ volatile("fldenv %0" : : "m"(x87));
  uint32_t mxcsr = env.mxcsr;
  __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
#elif defined(__aarch64__)
  __asm__ volatile("msr fpcr, %0" : : "r"(env.fpcr));
  __asm__ volatile("msr fpsr, %0" : : "r"(env.fpsr));
#endif
}

// A forwarded thread takes its caller's inherited values. The privileges come
// last: the steps before may need the baseline's.
void TakeCallersValues(const ChildSetup& s) PRISTINE_REQUIRES_ROLE(kNewThreadRole) {
  InstallFpEnv(s.fpenv);
  if (s.set_name) RawSyscall(SYS_prctl, PR_SET_NAME, s.name);
  for (int i = 0; i < kDimCount; ++i) {
    if (s.ns_fd[i] >= 0) RawSyscall(SYS_setns, s.ns_fd[i], 0);
  }
  if (s.set_affinity) RawSyscall(SYS_sched_setaffinity, 0, sizeof s.affinity, &s.affinity);
  if (s.set_sched) {
    // Through glibc, which caches a thread's explicit scheduling parameters.
    REAL(pthread_setschedparam)(pthread_self(), s.sched_policy, &s.sched_param);
  }
  if (s.set_nice) RawSyscall(SYS_setpriority, PRIO_PROCESS, 0, s.nice);
  if (!ApplyPrivileges(s.privileges)) {
    Log("pristine: a forwarded thread could not take its creator's exact privileges; it "
        "dropped all capabilities instead\n");
  }
}

}  // namespace

ChildSetup* NewChildSetup(void* (*start)(void*), int (*c11_start)(void*), void* arg) {
  void* mem = AllocateBlock();
  if (mem == nullptr) return nullptr;
  ChildSetup* s = new (mem) ChildSetup;
  s->start = start;
  s->c11_start = c11_start;
  s->arg = arg;
  for (int& fd : s->reenter_fd) fd = -1;
  for (int& fd : s->ns_fd) fd = -1;
  return s;
}

void FreeChildSetup(ChildSetup* s) {
  CloseOwned(s);
  FreeBlock(s);
}

void* ChildStart(void* p) {
  kNewThreadRole.Enter();
  ChildSetup* s = static_cast<ChildSetup*>(p);
  // A forwarded thread's creator published its writes (annotate.h).
  if (s->forwarded) ReceiveFromCreator(s);
  DimSet failed = Reenter(*s);
  if (s->forwarded) TakeCallersValues(*s);
  ThreadTaint taint = s->taint;
  taint.known |= failed.bits();
  AdoptTaint(taint);
  if (!failed.empty()) SayReentryFailed(failed);
  if (s->set_sigmask) {
    uint64_t mask = s->sigmask;
    RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, nullptr, sizeof mask);
  }
  void* (*start)(void*) = s->start;
  int (*c11_start)(void*) = s->c11_start;
  void* arg = s->arg;
  FreeChildSetup(s);
  kNewThreadRole.Leave();
  if (c11_start != nullptr) {
    // As glibc's start_thread does for thrd_create.
    return reinterpret_cast<void*>(static_cast<uintptr_t>(c11_start(arg)));
  }
  return start(arg);
}

void ForgetChildSetupsAfterFork() {
  PRISTINE_CHECK_ROLE(Bits(Role::kForkChild));
  // The threads that held blocks did not survive the fork; the forking
  // thread holds none outside a create.
  g_pool_used.store(0, std::memory_order_relaxed);
}

}  // namespace pristine
