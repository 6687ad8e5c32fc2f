// SPDX-License-Identifier: Apache-2.0
// The handoff queue: how a caller asks the template thread to do something on
// its behalf, and sleeps until it is done.
//
// A request lives on the caller's stack. The caller pushes it onto a lock-free
// multi-producer stack and sleeps on the request's own futex word; the template
// (the single consumer) sleeps on the queue's futex word, takes every queued
// request at each wake, runs them in arrival order and completes each one. No
// locks: a caller may be anywhere (inside a dlopen constructor holding the
// loader lock, holding its own mutexes), and a fork may happen at any point.
//
//   caller A ─┐                         ┌─> run(A) ─> complete(A) ─> wake A
//   caller B ─┼─> push ─> [head] ─> take all ─> run(B) ─> complete(B) ─> wake B
//   caller C ─┘     (CAS)   wake template   (FIFO)
#ifndef PRISTINE_SHIM_HANDOFF_H_
#define PRISTINE_SHIM_HANDOFF_H_

#include <atomic>
#include <cstdint>
#include <ctime>

#include "futex.h"

namespace pristine {

// One unit of work for the template. Embed it as the first member of a
// request type and set `run`; `run` executes on the template thread.
struct HandoffRequest {
  void (*run)(HandoffRequest* self) = nullptr;
  HandoffRequest* next = nullptr;  // owned by the queue while queued
  FutexWord done{0};               // 0 pending, 1 completed
};

class HandoffQueue {
 public:
  constexpr HandoffQueue() = default;

  // Any thread. Publishes `req` (pending again if it ran before); wakes the
  // consumer if it sleeps. `req` must stay alive until Await(req) returns,
  // and must not be pushed again before that.
  void Push(HandoffRequest* req);

  // Any thread, after Push(req). Sleeps until the consumer completed `req`.
  // Not a cancellation point; signals are handled and the wait resumes.
  static void Await(HandoffRequest* req);

  // Consumer only. Sleeps until at least one request is queued, then returns
  // all of them, oldest first, linked by `next`. With a `timeout` (relative),
  // returns null if none came within it (or a signal interrupted the wait).
  HandoffRequest* TakeAll(const struct timespec* timeout = nullptr);

  // Consumer only. Marks `req` completed and wakes its caller. The request may
  // vanish the moment `done` is set: nothing touches it afterwards, and the
  // wake is on the address alone (a stale wake is a spurious wake, which
  // every futex waiter tolerates).
  static void Complete(HandoffRequest* req);

  // Forked child only (the consumer and every other caller are gone): drops
  // whatever the parent's threads had queued.
  void ResetAfterFork();

 private:
  static constexpr uint32_t kAwake = 0;
  static constexpr uint32_t kSleeping = 1;

  std::atomic<HandoffRequest*> head_{nullptr};
  FutexWord consumer_{kAwake};
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_HANDOFF_H_
