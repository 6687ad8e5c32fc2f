#include "spares.h"

#include <sched.h>

#include <atomic>

#include "baseline.h"
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
// Set by the first forwarded create; cleared when spares are retired. Read
// and written under g_mu where a spare is about to be created, so that
// RetireAllSpares never misses one.
std::atomic<bool> g_wanted{false};

void* SpareMain(void*);

// Spares start with the template's policy (the baseline's, which the
// template takes at its start), or their creator spare's, the same.
bool SpareStartsAsSchedOther() {
  int policy, priority, nice;
  BaselineSched(&policy, &priority, &nice);
  return policy == SCHED_OTHER;
}

// Creates one spare if the pool is below its target. Called on the template,
// or on a spare that was just handed work and still runs none of the
// program's code: either is in the baseline state, which the new spare
// inherits. Returns false if the pool is full or the create failed.
bool CreateSpare() {
  {
    FutexLock lock(&g_mu);
    if (!g_wanted.load(std::memory_order_relaxed) || g_ready_count + g_starting >= kTarget) {
      return false;
    }
    ++g_starting;
  }
  pthread_t t;
  if (REAL(pthread_create)(&t, nullptr, SpareMain, nullptr) != 0) {
    FutexLock lock(&g_mu);
    --g_starting;
    return false;  // a thread limit: the next forwarded create asks again
  }
  return true;
}

bool AskForRefill();

// The body of a spare: publish itself, wait to be handed work or retired.
void* SpareMain(void*) {
  Spare self;
  self.thread = pthread_self();
  // While it waits, a spare is SCHED_BATCH, which the kernel never lets
  // preempt the thread that wakes it: a spare that slept long would otherwise
  // run at once on the caller's CPU, and the caller of pthread_create would
  // wait for the new thread to finish. Only from SCHED_OTHER, to which any
  // thread may return (the template's policy is the baseline's).
  bool batch = SpareStartsAsSchedOther();
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
  // If the template is still busy with an earlier refill, several threads
  // are creating at once: this spare, still in the baseline state, makes its
  // own replacement, so that refills run on as many CPUs as creators do.
  if (self.refill && !AskForRefill()) CreateSpare();
  return self.start(self.arg);
}

// Takes a ready spare, or null. *left: how many remain, ready or starting.
Spare* Pop(int* left = nullptr) {
  FutexLock lock(&g_mu);
  Spare* s = g_ready;
  if (s != nullptr) {
    g_ready = s->next;
    --g_ready_count;
  }
  if (left != nullptr) *left = g_ready_count + g_starting;
  return s;
}

// A refill request the template serves without anyone waiting for it.
HandoffRequest g_refill_request;
std::atomic<bool> g_refill_queued{false};

void RunRefill(HandoffRequest*) {
  g_refill_queued.store(false, std::memory_order_release);
  RefillSpares();
}

// Queues a refill for the template. False if one is already queued (the
// template has not caught up) or no template serves.
bool AskForRefill() {
  g_wanted.store(true, std::memory_order_relaxed);
  if (g_refill_queued.exchange(true, std::memory_order_acq_rel)) return false;
  g_refill_request.run = RunRefill;
  if (!PostToTemplate(&g_refill_request)) {
    g_refill_queued.store(false, std::memory_order_release);
    return false;
  }
  return true;
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
  Spare* s = Pop(&left);
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
  while (CreateSpare()) {
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
  {
    FutexLock lock(&g_mu);
    g_wanted.store(false, std::memory_order_relaxed);
  }
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
