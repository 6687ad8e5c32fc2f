#include "spares.h"

#include <sched.h>

#include <atomic>

#include "futex.h"
#include "interpose.h"
#include "raw_syscall.h"
#include "template_thread.h"

namespace pristine {
namespace {

// How many spares the template keeps once a process forwards: enough for a
// burst from a few creators. Not more: each spare holds a default-sized stack
// (8 MiB of address space), and beyond glibc's 40 MiB cache of thread stacks
// every thread exit would unmap one and every create map one.
constexpr int kTarget = 4;

// A spare's record lives on its own stack, in SpareMain's frame.
struct Spare {
  pthread_t thread;
  FutexWord state{0};  // kWaiting, then kHanded or kRetire
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  bool refill = false;  // ask the template for more once running
  Spare* next = nullptr;
};
constexpr uint32_t kWaiting = 0, kHanded = 1, kRetire = 2;

// The ready spares. A lock, not a lock-free stack: a record's address comes
// back when glibc reuses a dead spare's stack for a new one, which would be
// an ABA hazard for a lock-free pop. Held for a few instructions only.
FutexMutex g_mu;
Spare* g_ready ABSL_GUARDED_BY(g_mu) = nullptr;
int g_ready_count ABSL_GUARDED_BY(g_mu) = 0;
int g_starting ABSL_GUARDED_BY(g_mu) = 0;  // created, not yet in g_ready
// Set by the first forwarded create; cleared when spares are retired.
std::atomic<bool> g_wanted{false};

void AskForRefill();

// The body of a spare: publish itself, wait to be handed work or retired.
void* SpareMain(void*) {
  Spare self;
  self.thread = pthread_self();
  // While it waits, a spare is SCHED_BATCH, which the kernel never lets
  // preempt the thread that wakes it: a spare that slept long would otherwise
  // run at once on the caller's CPU, and the caller of pthread_create would
  // wait for the new thread to finish. Only from SCHED_OTHER, to which any
  // thread may return (the template's policy is the baseline's).
  bool batch = RawSyscall(SYS_sched_getscheduler, 0) == SCHED_OTHER;
  struct sched_param param = {};
  if (batch) batch = RawSyscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &param) == 0;
  {
    FutexLock lock(&g_mu);
    self.next = g_ready;
    g_ready = &self;
    ++g_ready_count;
    --g_starting;
  }
  uint32_t s;
  while ((s = self.state.load(std::memory_order_acquire)) == kWaiting) {
    FutexWait(&self.state, kWaiting);
  }
  if (s == kRetire) return nullptr;
  if (batch) RawSyscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &param);
  // Asked from here rather than by the caller: on a small machine a second
  // wake-up from the caller (the template's) competes with it for a CPU.
  if (self.refill) AskForRefill();
  return self.start(self.arg);
}

Spare* Pop() {
  FutexLock lock(&g_mu);
  Spare* s = g_ready;
  if (s != nullptr) {
    g_ready = s->next;
    --g_ready_count;
  }
  return s;
}

// A refill request the template serves without anyone waiting for it.
HandoffRequest g_refill_request;
std::atomic<bool> g_refill_queued{false};

void RunRefill(HandoffRequest*) {
  g_refill_queued.store(false, std::memory_order_release);
  RefillSpares();
}

void AskForRefill() {
  g_wanted.store(true, std::memory_order_relaxed);
  if (g_refill_queued.exchange(true, std::memory_order_acq_rel)) return;
  g_refill_request.run = RunRefill;
  if (!PostToTemplate(&g_refill_request)) g_refill_queued.store(false, std::memory_order_release);
}

void Retire(Spare* s) {
  pthread_t thread = s->thread;  // the record dies with the spare
  s->state.store(kRetire, std::memory_order_release);
  FutexWakeOne(&s->state);
  LIBC(pthread_join)(thread, nullptr);
}

}  // namespace

bool HandToSpare(void* (*start)(void*), void* arg, pthread_t* thread) {
  int left;
  Spare* s;
  {
    FutexLock lock(&g_mu);
    s = g_ready;
    if (s != nullptr) {
      g_ready = s->next;
      --g_ready_count;
    }
    left = g_ready_count + g_starting;
  }
  if (s == nullptr) {
    AskForRefill();
    return false;
  }
  *thread = s->thread;
  s->start = start;
  s->arg = arg;
  s->refill = left <= kTarget / 2;
  s->state.store(kHanded, std::memory_order_release);
  FutexWakeOne(&s->state);
  return true;
}

void RefillSpares() {
  while (g_wanted.load(std::memory_order_relaxed)) {
    {
      FutexLock lock(&g_mu);
      if (g_ready_count + g_starting >= kTarget) return;
      ++g_starting;
    }
    pthread_t t;
    if (REAL(pthread_create)(&t, nullptr, SpareMain, nullptr) != 0) {
      FutexLock lock(&g_mu);
      --g_starting;
      return;  // a thread limit: the next forwarded create asks again
    }
  }
}

bool RetireOneSpare() {
  Spare* s = Pop();
  if (s == nullptr) return false;
  Retire(s);
  return true;
}

int SpareThreadCount() {
  FutexLock lock(&g_mu);
  return g_ready_count + g_starting;
}

void RetireAllSpares() {
  g_wanted.store(false, std::memory_order_relaxed);
  for (;;) {
    if (RetireOneSpare()) continue;
    {
      // Spares still starting publish themselves shortly; the template that
      // created them has stopped, so no new ones come.
      FutexLock lock(&g_mu);
      if (g_starting == 0) return;
    }
    RawSyscall(SYS_sched_yield);
  }
}

void ForgetSparesAfterFork() {
  g_mu.ResetAfterFork();
  FutexLock lock(&g_mu);
  g_ready = nullptr;
  g_ready_count = 0;
  g_starting = 0;
  g_wanted.store(false, std::memory_order_relaxed);
  g_refill_queued.store(false, std::memory_order_relaxed);
}

}  // namespace pristine
