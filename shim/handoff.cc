// SPDX-License-Identifier: Apache-2.0
#include "handoff.h"

#include "annotate.h"

namespace pristine {

void HandoffQueue::Push(HandoffRequest* req) {
  // A request may be pushed again once completed (a retried create): it is
  // pending again from here, published by the CAS below.
  // For race detectors (annotate.h): the words below synchronise, and the
  // request's contents are published with it.
  SyncWord(&req->done, sizeof req->done);
  SyncWord(&head_, sizeof head_);
  SyncWord(&consumer_, sizeof consumer_);
  req->done.store(0, std::memory_order_relaxed);
  HandoffRequest* old = head_.load(std::memory_order_relaxed);
  do {
    req->next = old;
    HappensBefore(this);
  } while (!head_.compare_exchange_weak(old, req, std::memory_order_seq_cst,
                                        std::memory_order_relaxed));
  // Pairs with TakeAll: either the consumer's re-check of head_ sees this
  // request, or this exchange sees kSleeping and wakes it (both seq_cst).
  if (consumer_.exchange(kAwake, std::memory_order_seq_cst) == kSleeping) {
    FutexWakeOne(&consumer_);
  }
}

void HandoffQueue::Await(HandoffRequest* req) {
  while (req->done.load(std::memory_order_acquire) == 0) {
    FutexWait(&req->done, 0);
  }
  HappensAfter(req);
  // The request may live on the caller's stack, which the program reuses.
  SyncWordDone(&req->done, sizeof req->done);
}

HandoffRequest* HandoffQueue::TakeAll(const struct timespec* timeout) {
  for (;;) {
    HandoffRequest* list = head_.exchange(nullptr, std::memory_order_acquire);
    if (list == nullptr) {
      consumer_.store(kSleeping, std::memory_order_seq_cst);
      bool empty = head_.load(std::memory_order_seq_cst) == nullptr;
      if (empty) FutexWait(&consumer_, kSleeping, timeout);
      consumer_.store(kAwake, std::memory_order_relaxed);
      if (!empty || timeout == nullptr) continue;
      // Woken, timed out or interrupted: one more look, then give up.
      list = head_.exchange(nullptr, std::memory_order_acquire);
      if (list == nullptr) return nullptr;
    }
    HappensAfter(this);
    // The stack is newest first; reverse it so callers are served in order.
    HandoffRequest* fifo = nullptr;
    while (list != nullptr) {
      HandoffRequest* next = list->next;
      list->next = fifo;
      fifo = list;
      list = next;
    }
    return fifo;
  }
}

void HandoffQueue::Complete(HandoffRequest* req) {
  FutexWord* word = &req->done;
  HappensBefore(req);
  word->store(1, std::memory_order_release);
  FutexWakeOne(word);
}

void HandoffQueue::ResetAfterFork() {
  head_.store(nullptr, std::memory_order_relaxed);
  consumer_.store(kAwake, std::memory_order_relaxed);
}

}  // namespace pristine
