// SPDX-License-Identifier: Apache-2.0
// The handoff queue (shim/handoff.h): many producers, one consumer running the template's loop.
//
// Properties: every request is served exactly once, requests from one producer are served in the
// order they were pushed, nobody sleeps forever (no lost wake-up: the test would hang, and ctest's
// timeout fails it), and producers interrupted by signals while they wait still get their result.

#include "handoff.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pristine {
namespace {

struct TestRequest {
  HandoffRequest base;  // first member, as the shim's request types
  int producer = 0;
  uint64_t seq = 0;
  uint64_t result = 0;
  int runs = 0;
};

// Consumer-side bookkeeping (touched by the consumer thread only, read after join).
struct Served {
  std::vector<uint64_t> last_seq;  // per producer: last sequence number served
  std::vector<uint64_t> count;     // per producer: requests served
  uint64_t order_violations = 0;
  uint64_t total = 0;
};

Served* g_served = nullptr;
bool g_stop = false;

void RunTest(HandoffRequest* r) {
  TestRequest* t = reinterpret_cast<TestRequest*>(r);
  t->runs++;
  t->result = t->seq * 2 + 1;
  Served& s = *g_served;
  if (s.count[t->producer] > 0 && t->seq <= s.last_seq[t->producer]) s.order_violations++;
  s.last_seq[t->producer] = t->seq;
  s.count[t->producer]++;
  s.total++;
}

void RunStop(HandoffRequest*) { g_stop = true; }

// The template's loop (template_thread.cc, TemplateMain).
void ConsumerLoop(HandoffQueue* q) {
  while (!g_stop) {
    HandoffRequest* req = q->TakeAll();
    while (req != nullptr) {
      HandoffRequest* next = req->next;  // before Complete: the request may vanish
      req->run(req);
      HandoffQueue::Complete(req);
      req = next;
    }
  }
}

void StopConsumer(HandoffQueue* q, std::thread* consumer) {
  HandoffRequest stop;
  stop.run = RunStop;
  q->Push(&stop);
  HandoffQueue::Await(&stop);
  consumer->join();
}

struct Fixture {
  HandoffQueue queue;
  Served served;
  explicit Fixture(int producers) {
    served.last_seq.assign(producers, 0);
    served.count.assign(producers, 0);
    g_served = &served;
    g_stop = false;
  }
};

// One producer's work: `n` requests in sequence, each checked after Await.
uint64_t Produce(HandoffQueue* q, int id, int n) {
  uint64_t bad = 0;
  for (int i = 1; i <= n; ++i) {
    TestRequest req;
    req.base.run = RunTest;
    req.producer = id;
    req.seq = static_cast<uint64_t>(i);
    q->Push(&req.base);
    HandoffQueue::Await(&req.base);
    if (req.runs != 1 || req.result != req.seq * 2 + 1 ||
        req.base.done.load(std::memory_order_acquire) != 1) {
      bad++;
    }
  }
  return bad;
}

TEST(HandoffQueue, SingleProducerServedInOrder) {
  Fixture f(1);
  std::thread consumer(ConsumerLoop, &f.queue);
  EXPECT_EQ(Produce(&f.queue, 0, 10000), 0u);
  StopConsumer(&f.queue, &consumer);
  EXPECT_EQ(f.served.total, 10000u);
  EXPECT_EQ(f.served.order_violations, 0u);
}

TEST(HandoffQueue, ManyProducersEveryRequestServedExactlyOnce) {
  constexpr int kProducers = 16;
  constexpr int kEach = 3000;
  Fixture f(kProducers);
  std::thread consumer(ConsumerLoop, &f.queue);
  std::atomic<uint64_t> bad{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] { bad += Produce(&f.queue, p, kEach); });
  }
  for (auto& t : producers) t.join();
  StopConsumer(&f.queue, &consumer);
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(f.served.total, uint64_t{kProducers} * kEach);
  EXPECT_EQ(f.served.order_violations, 0u);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(f.served.count[p], uint64_t{kEach}) << p;
}

// Several requests in flight per producer (pushed before any is awaited): still FIFO per producer.
TEST(HandoffQueue, BatchedRequestsKeepPerProducerOrder) {
  constexpr int kProducers = 8;
  constexpr int kRounds = 500;
  constexpr int kBatch = 8;
  Fixture f(kProducers);
  std::thread consumer(ConsumerLoop, &f.queue);
  std::atomic<uint64_t> bad{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      uint64_t seq = 0;
      for (int r = 0; r < kRounds; ++r) {
        TestRequest reqs[kBatch];
        for (auto& req : reqs) {
          req.base.run = RunTest;
          req.producer = p;
          req.seq = ++seq;
          f.queue.Push(&req.base);
        }
        for (auto& req : reqs) {
          HandoffQueue::Await(&req.base);
          if (req.runs != 1 || req.result != req.seq * 2 + 1) bad++;
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  StopConsumer(&f.queue, &consumer);
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(f.served.total, uint64_t{kProducers} * kRounds * kBatch);
  EXPECT_EQ(f.served.order_violations, 0u);
}

// The consumer goes to sleep between requests (a slow producer): every push must wake it. A lost
// wake-up hangs this test (ctest's timeout turns that into a failure).
TEST(HandoffQueue, ConsumerSleepsAndIsWokenEveryTime) {
  Fixture f(1);
  std::thread consumer(ConsumerLoop, &f.queue);
  for (int i = 1; i <= 200; ++i) {
    usleep(200);  // lets the consumer reach its futex wait (not a timing assertion)
    TestRequest req;
    req.base.run = RunTest;
    req.producer = 0;
    req.seq = static_cast<uint64_t>(i);
    f.queue.Push(&req.base);
    HandoffQueue::Await(&req.base);
    ASSERT_EQ(req.runs, 1);
  }
  StopConsumer(&f.queue, &consumer);
  EXPECT_EQ(f.served.total, 200u);
}

std::atomic<uint64_t> g_signals{0};
void OnSigusr1(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

// Producers are hit by a SIGUSR1 storm (pthread_kill) while they push and wait: EINTR from the
// futex wait is retried, and every producer still gets its own result.
TEST(HandoffQueue, SignalStormDuringWaitLosesNothing) {
  struct sigaction sa = {};
  sa.sa_handler = OnSigusr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the futex wait returns EINTR
  struct sigaction old;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);

  constexpr int kProducers = 8;
  constexpr int kEach = 3000;
  Fixture f(kProducers);
  // The consumer never takes the signal (as the template, which blocks everything).
  std::thread consumer;
  {
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &prev);
    consumer = std::thread(ConsumerLoop, &f.queue);
    pthread_sigmask(SIG_SETMASK, &prev, nullptr);
  }
  std::atomic<uint64_t> bad{0};
  std::atomic<int> running{kProducers};
  std::vector<std::thread> producers;
  std::vector<pthread_t> handles(kProducers);
  std::atomic<int> started{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      handles[p] = pthread_self();
      started++;
      bad += Produce(&f.queue, p, kEach);
      running--;
    });
  }
  while (started.load() < kProducers) std::this_thread::yield();
  // Keep signalling until every producer finished. A finished-but-not-joined thread can still
  // receive a signal (its handle stays valid until join).
  uint64_t sent = 0;
  while (running.load() > 0) {
    for (int p = 0; p < kProducers; ++p) {
      if (pthread_kill(handles[p], SIGUSR1) == 0) sent++;
    }
  }
  for (auto& t : producers) t.join();
  StopConsumer(&f.queue, &consumer);
  sigaction(SIGUSR1, &old, nullptr);

  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(f.served.total, uint64_t{kProducers} * kEach);
  EXPECT_EQ(f.served.order_violations, 0u);
  EXPECT_GT(sent, 0u);
  EXPECT_GT(g_signals.load(), 0u);
}

// The forked-child reset leaves an empty queue that works again.
TEST(HandoffQueue, ResetAfterForkDropsQueuedRequests) {
  Fixture f(1);
  TestRequest orphan;
  orphan.base.run = RunTest;
  f.queue.Push(&orphan.base);  // queued, never served (its consumer "vanished")
  f.queue.ResetAfterFork();
  std::thread consumer(ConsumerLoop, &f.queue);
  EXPECT_EQ(Produce(&f.queue, 0, 100), 0u);
  StopConsumer(&f.queue, &consumer);
  EXPECT_EQ(orphan.runs, 0);
  EXPECT_EQ(f.served.total, 100u);
}

}  // namespace
}  // namespace pristine
