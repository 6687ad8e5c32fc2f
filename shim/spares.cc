// SPDX-License-Identifier: Apache-2.0
#include "spares.h"

#include <sched.h>

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "annotate.h"
#include "futex.h"
#include "lifecycle.h"
#include "interpose.h"
#include "log.h"
#include "raw_syscall.h"
#include "state.h"
#include "thread_role.h"

namespace pristine {
namespace {

// How many spares exist once a process forwards. Two at first: one thread
// creating and joining needs one (each spare handed work makes its own
// replacement), the second absorbs a create that comes before that
// replacement is published. Each create the template serves because it
// found none raises the target by one, up to kMaxSpares: a spare holds a default-sized stack (8 MiB of
// address space, a few pages of it resident) for as long as it waits.
constexpr int kInitialTarget = 2;
constexpr int kMaxSpares = 16;

// A spare's record: a static slot, written by its creator before the spare
// exists, so that a spare can be handed work before it has run at all.
//
// state: kReady    created, handed nothing yet (the spare may not have run);
//        kSleeping the spare waits on `state` (it says so before it sleeps,
//                  so that a hand-off to a spare still starting needs no
//                  wake-up system call);
//        kHanded   `start` and `arg` are set: run them;
//        kRetire   exit.
constexpr uint32_t kReady = 0, kSleeping = 1, kHanded = 2, kRetire = 3;
struct Spare {
  pthread_t thread = 0;  // written by its creator before the slot is published
  FutexWord state{kReady};
  std::atomic<int> tid{0};  // written by the spare when it is retired
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  uint32_t generation = 0;  // of the baseline it was created in
  Spare* next = nullptr;    // in g_ready
};
static_assert(kMaxSpares <= 32, "g_free_slots has a bit per slot");
constexpr uint32_t kAllSlotsFree = (1ull << kMaxSpares) - 1;

// Lock-protected, not lock-free: a slot comes back into use as soon as its
// spare took its work, an ABA hazard for a lock-free pop. Every critical
// section is a few instructions; nothing under g_spare_pool_mu waits or creates.
// Guards the pool; taken under the lifecycle lock (a rebase retires spares),
// never the other way round.
ABSL_CONST_INIT FutexMutex g_spare_pool_mu ABSL_ACQUIRED_AFTER(lifecycle_internal::g_lifecycle_mu);
ABSL_CONST_INIT Spare g_slots[kMaxSpares];
uint32_t g_free_slots ABSL_GUARDED_BY(g_spare_pool_mu) = kAllSlotsFree;
Spare* g_ready ABSL_GUARDED_BY(g_spare_pool_mu) = nullptr;  // newest first
int g_ready_count ABSL_GUARDED_BY(g_spare_pool_mu) = 0;
int g_starting ABSL_GUARDED_BY(g_spare_pool_mu) = 0;  // slot taken, thread not yet published
int g_target ABSL_GUARDED_BY(g_spare_pool_mu) = kInitialTarget;
// Zero spares until the first forwarded create; false again once retired.
bool g_wanted ABSL_GUARDED_BY(g_spare_pool_mu) = false;
// Bumped when the spares are retired (the template stops, the baseline may
// change): a spare handed work before then must not create a replacement in
// a baseline that may no longer be the baseline.
uint32_t g_generation ABSL_GUARDED_BY(g_spare_pool_mu) = 0;

void FreeSlot(Spare* s) {
  FutexLock lock(&g_spare_pool_mu);
  g_free_slots |= 1u << (s - g_slots);
}

void* SpareMain(void* slot);

// Creates one spare if the pool is below its target. Called on the template,
// or on a spare that was just handed work and still runs none of the
// program's code: either is in the baseline state of `generation`, which the
// new spare inherits (all signals blocked included). Returns false if the
// pool is full, that baseline is gone, or the create failed.
bool CreateSpare(uint32_t generation) {
  PRISTINE_CHECK_ROLE(Role::kTemplate | Role::kSpare);
  // A spare would run the trampoline of an interposer ahead of the library
  // (a sanitizer's) on a thread that did not start with it (interpose.h).
  if (InterposerAhead()) return false;
  Spare* s;
  {
    FutexLock lock(&g_spare_pool_mu);
    if (!g_wanted || generation != g_generation || g_ready_count + g_starting >= g_target ||
        g_free_slots == 0) {
      return false;
    }
    s = &g_slots[__builtin_ctz(g_free_slots)];
    g_free_slots &= g_free_slots - 1;
    ++g_starting;
  }
  SyncWord(&s->state, sizeof s->state);  // for race detectors (annotate.h)
  s->state.store(kReady, std::memory_order_relaxed);
  s->generation = generation;
  pthread_t t;
  // pthread_create publishes the slot's contents to the new thread.
  int rc = CreateLibraryThread(&t, nullptr, SpareMain, s);
  FutexLock lock(&g_spare_pool_mu);
  --g_starting;
  if (rc != 0) {
    g_free_slots |= 1u << (s - g_slots);
    return false;  // a thread limit: the next create that finds none asks again
  }
  s->thread = t;
  s->next = g_ready;
  g_ready = s;
  ++g_ready_count;
  return true;
}

// Waits until the spare is handed work or retired; returns which.
uint32_t AwaitWork(Spare* self) {
  uint32_t s = kReady;
  // A new spare first lets its CPU go once: a creator that runs then (on one
  // CPU, the one that joins the previous spare's thread) hands it work before
  // it sleeps, which saves the wake and the sleep.
  if (self->state.load(std::memory_order_acquire) == kReady) RawSyscall(SYS_sched_yield);
  // Handed work before it first ran, this spare never sleeps. Otherwise it
  // says it sleeps, so that the hand-off knows to wake it.
  if (self->state.compare_exchange_strong(s, kSleeping, std::memory_order_acq_rel)) {
    while ((s = self->state.load(std::memory_order_acquire)) == kSleeping) {
      FutexWait(&self->state, kSleeping);
    }
  }
  HappensAfter(self);  // the hand-off or retirement (annotate.h)
  return s;
}

// The body of a spare. Runs on the spare, in the baseline state, until it
// calls the start routine it was handed.
void* SpareMain(void* slot) {
  kSpareRole.Enter();
  Spare* self = static_cast<Spare*>(slot);
  // Retired: the retiring thread frees the slot once it has joined us, and
  // waits until the kernel has let this thread go (by its tid).
  if (AwaitWork(self) == kRetire) {
    self->tid.store(RawGettid(), std::memory_order_relaxed);
    kSpareRole.Leave();
    return nullptr;
  }
  void* (*start)(void*) = self->start;
  void* arg = self->arg;
  uint32_t generation = self->generation;
  FreeSlot(self);
  // The replacement comes from here, not from the template: this thread is
  // running anyway and is still in the baseline state, so a steady stream of
  // forwarded creates costs one clone each, like plain creates, and never
  // wakes the template. Two when the pool is short, to catch up.
  if (CreateSpare(generation)) CreateSpare(generation);
  kSpareRole.Leave();
  return start(arg);
}

// A refill request the template serves without anyone waiting for it.
ABSL_CONST_INIT HandoffRequest g_refill_request;
ABSL_CONST_INIT std::atomic<bool> g_refill_queued{false};

// Runs on the template thread: creates spares up to the target. Waits for
// nothing but the real pthread_create.
void RunRefill(HandoffRequest*) PRISTINE_REQUIRES_ROLE(kTemplateRole) {
  PRISTINE_CHECK_ROLE(Bits(Role::kTemplate));
  g_refill_queued.store(false, std::memory_order_release);
  uint32_t generation;
  {
    FutexLock lock(&g_spare_pool_mu);
    generation = g_generation;
  }
  while (CreateSpare(generation)) {
  }
}

// Makes a spare exit, joins it, frees its slot, and waits until the kernel
// no longer counts it (a single-threaded change retried after a stop).
void Retire(Spare* s) {
  HappensBefore(s);
  if (s->state.exchange(kRetire, std::memory_order_acq_rel) == kSleeping) {
    FutexWakeOne(&s->state);
  }
  JoinLibraryThread(s->thread, nullptr);
  int tid = s->tid.load(std::memory_order_relaxed);
  FreeSlot(s);
  WaitUntilThreadReleased(tid);
}

Spare* Pop() {
  FutexLock lock(&g_spare_pool_mu);
  Spare* s = g_ready;
  if (s != nullptr) {
    g_ready = s->next;
    --g_ready_count;
  }
  return s;
}

}  // namespace

bool HandToSpare(void* (*start)(void*), void* arg, pthread_t* thread,
                 const cpu_set_t* affinity) {
  Spare* s = Pop();
  if (s == nullptr) return false;
  // Before the spare can run the caller's routine: a woken spare must not
  // run on a CPU its creator's thread could not (a real-time program pins
  // threads so that one preempts another).
  if (affinity != nullptr) REAL(pthread_setaffinity_np)(s->thread, sizeof *affinity, affinity);
  *thread = s->thread;
  s->start = start;
  s->arg = arg;
  HappensBefore(s);
  if (s->state.exchange(kHanded, std::memory_order_acq_rel) == kSleeping) {
    FutexWakeOne(&s->state);
  }
  return true;
}

HandoffRequest* WantMoreSpares() {
  {
    // Demand outran the pool: one more from now on (not for the first
    // forwarded create, which finds none because none was wanted).
    FutexLock lock(&g_spare_pool_mu);
    if (g_wanted && g_target < kMaxSpares) ++g_target;
    g_wanted = true;
  }
  if (g_refill_queued.exchange(true, std::memory_order_acq_rel)) return nullptr;
  g_refill_request.run = RunRefill;
  return &g_refill_request;
}

void CancelSpareRefill() { g_refill_queued.store(false, std::memory_order_release); }

bool RetireOneSpare() {
  Spare* s = Pop();
  if (s == nullptr) return false;
  {
    // Under a thread limit the pool is the first to give way: the creates
    // that then find it empty must not grow it back beyond its start.
    FutexLock lock(&g_spare_pool_mu);
    if (g_target > kInitialTarget) --g_target;
  }
  Retire(s);
  return true;
}

int SpareThreadCount() {
  FutexLock lock(&g_spare_pool_mu);
  return g_ready_count + g_starting;
}

void RetireAllSpares() {
  {
    FutexLock lock(&g_spare_pool_mu);
    g_wanted = false;
    g_target = kInitialTarget;
    ++g_generation;
  }
  for (;;) {
    if (RetireOneSpare()) continue;
    {
      // A spare being created is published shortly (spares handed work
      // before the bump above may still be creating one); after that, none
      // is created until spares are wanted again.
      FutexLock lock(&g_spare_pool_mu);
      if (g_starting == 0 && g_ready == nullptr) return;
    }
    RawSyscall(SYS_sched_yield);
  }
}

void ForgetSparesAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_spare_pool_mu.ResetAfterFork();
  FutexLock lock(&g_spare_pool_mu);
  g_free_slots = kAllSlotsFree;
  g_ready = nullptr;
  g_ready_count = 0;
  g_starting = 0;
  g_target = kInitialTarget;
  g_wanted = false;
  ++g_generation;
  g_refill_queued.store(false, std::memory_order_relaxed);
}

}  // namespace pristine
