// SPDX-License-Identifier: Apache-2.0
// handoff_order: data written before pthread_create and read by the new thread, from a tainted
// thread, for race detectors that must see the creation as ordering the two (pytests/
// test_contexts.py). Built plain (for helgrind and drd) and with -fsanitize=thread by gcc and clang.
//
//   handoff_order TAINT N [race]
// TAINT: fs (the worker takes a private cwd: its creates are made by a thread in the baseline),
//        net (a new network namespace: the worker makes them itself and the new thread re-enters
//        the baseline's), none.
// The worker makes N creates, alternately with default attributes and with an explicit stack
// size (which a thread made ahead of time cannot serve), joins each and checks what came back.
// With `race`, the creator also writes a field after pthread_create returns that the new thread
// reads: a real data race, which a detector must still report (the library's annotations must not
// order more than pthread_create does).
//
// Output: one JSON object: creates, errors (failed creates), wrong_value (a new thread saw
// another value than its creator wrote, or the creator another result), child_wrong_fs (a new
// thread not sharing the main thread's fs_struct), child_wrong_net (not in the baseline's network
// namespace). Exit: 0 done, 1 error, 2 usage, 3 this machine cannot apply the taint.

#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

struct Slot {
  long in;        // written by the creator before pthread_create
  long out;       // written by the new thread, read by the creator after the join
  int wrong_fs;   // written by the new thread
  int wrong_net;  // written by the new thread
  long late;      // with `race`: written by the creator after pthread_create, read by the thread
  long late_seen;
};

constexpr int kMaxCreates = 64;
Slot g_slots[kMaxCreates];
pid_t g_main_tid;
ino_t g_base_net;
const char* g_taint;
int g_creates;
bool g_race = false;

ino_t OwnNet() {
  struct stat st;
  return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

void* Child(void* arg) {
  Slot* s = static_cast<Slot*>(arg);
  s->out = s->in + 1;
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  s->wrong_fs = syscall(SYS_kcmp, g_main_tid, self, KCMP_FS, 0, 0) != 0;
  s->wrong_net = OwnNet() != g_base_net;
  if (g_race) s->late_seen = s->late;
  return s;
}

struct Result {
  int creates = 0, errors = 0, wrong_value = 0, wrong_fs = 0, wrong_net = 0;
};

void* Worker(void* arg) {
  Result* r = static_cast<Result*>(arg);
  if (std::strcmp(g_taint, "fs") == 0) {
    if (unshare(CLONE_FS) != 0 || chdir("/") != 0) {
      std::fprintf(stderr, "handoff_order: cannot run here: unshare(CLONE_FS): %s\n",
                   strerror(errno));
      std::exit(3);
    }
  } else if (std::strcmp(g_taint, "net") == 0) {
    if (unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "handoff_order: cannot run here: unshare(CLONE_NEWNET): %s\n",
                   strerror(errno));
      std::exit(3);
    }
  }
  pthread_attr_t sized;
  pthread_attr_init(&sized);
  pthread_attr_setstacksize(&sized, 1 << 20);
  for (int i = 0; i < g_creates; ++i) {
    Slot* s = &g_slots[i];
    s->in = 1000 + i;  // plain write, ordered before the child's read by pthread_create only
    pthread_t t;
    int rc = pthread_create(&t, i % 2 == 0 ? nullptr : &sized, Child, s);
    if (rc != 0) {
      ++r->errors;
      continue;
    }
    if (g_race) s->late = i;
    void* ret = nullptr;
    pthread_join(t, &ret);
    ++r->creates;
    if (ret != s || s->out != s->in + 1) ++r->wrong_value;
    r->wrong_fs += s->wrong_fs;
    r->wrong_net += s->wrong_net;
  }
  pthread_attr_destroy(&sized);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || std::atoi(argv[2]) < 1 || std::atoi(argv[2]) > kMaxCreates ||
      (argc == 4 && std::strcmp(argv[3], "race") != 0)) {
    std::fprintf(stderr, "usage: handoff_order fs|net|none N (1..%d) [race]\n", kMaxCreates);
    return 2;
  }
  g_race = argc == 4;
  g_taint = argv[1];
  g_creates = std::atoi(argv[2]);
  g_main_tid = static_cast<pid_t>(syscall(SYS_gettid));
  g_base_net = OwnNet();
  Result r;
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, &r) != 0) {
    std::fprintf(stderr, "handoff_order: cannot start the worker\n");
    return 1;
  }
  pthread_join(w, nullptr);
  std::printf(
      "{\"creates\": %d, \"errors\": %d, \"wrong_value\": %d, \"child_wrong_fs\": %d, "
      "\"child_wrong_net\": %d}\n",
      r.creates, r.errors, r.wrong_value, r.wrong_fs, r.wrong_net);
  return 0;
}
