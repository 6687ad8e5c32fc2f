// SPDX-License-Identifier: Apache-2.0
// userns_after_join: unshare(CLONE_NEWUSER) from a main thread whose other threads just ended
// (issue 12 item 10). Linux refuses it (EINVAL) in a multi-threaded process; under the library
// the template and its spares are its own threads, which it must stop and wait for, whatever
// they are doing at that moment (a spare being made, a spare making its replacement).
//
//   userns_after_join --runs N [--creates M]
//
// Runs N forked children one after another (each starts with nothing of the library running: a
// forked child's template starts again on first need). In each, the main thread starts a worker
// that makes its fs private (unshare(CLONE_FS): its creates are forwarded, so the template
// starts and spares are made) and creates and joins M threads with default attributes; the main
// thread joins the worker and at once calls unshare(CLONE_NEWUSER), then creates and joins one
// thread (the library must still serve). A child exits 0 on success, 10 + errno of a failed
// unshare, 9 if the create after it failed. A child that has not exited after 60 s is hung (a
// safety net only).
// One JSON object: {"runs": N, "failed": F, "hung": H, "errors": {"EINVAL": n, ...}}
// Exit 0, 2 usage.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <map>

#include "regress_util.h"

namespace {

int g_creates = 1;
long g_spin = 0;  // busy-loop iterations between the join and the unshare (varied per run)

// Tids of the program's threads of this cycle: Linux counts a joined thread until it has been
// released (pthread_join returns a moment earlier), and without the library an unshare in that
// moment fails too. The program waits for its own threads; the library must handle its own.
std::atomic<int> g_tids[65];
std::atomic<int> g_ntids{0};

void NoteTid() {
  int i = g_ntids.fetch_add(1);
  if (i < 65) g_tids[i].store(t3::Gettid());
}

void WaitProgramThreadsReleased() {
  int n = g_ntids.exchange(0);
  for (int i = 0; i < n && i < 65; ++i) {
    while (syscall(SYS_tgkill, getpid(), g_tids[i].load(), 0) == 0 || errno != ESRCH) {
      sched_yield();
    }
  }
}

void* Nothing(void*) {
  NoteTid();
  return nullptr;
}

void* Worker(void*) {
  NoteTid();
  if (unshare(CLONE_FS) != 0) _exit(8);
  // All created before any is joined: every create finds the pool of spares empty or short,
  // so the template is still making spares when the worker ends.
  pthread_t t[64];
  int n = g_creates < 64 ? g_creates : 64;
  for (int i = 0; i < n; ++i) {
    if (pthread_create(&t[i], nullptr, Nothing, nullptr) != 0) _exit(7);
  }
  for (int i = 0; i < n; ++i) pthread_join(t[i], nullptr);
  return nullptr;
}

int g_cycles = 1;

// One cycle; returns 0 or the errno of the failed unshare (-1: a create failed).
int Cycle() {
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, nullptr) != 0) return -1;
  pthread_join(w, nullptr);
  WaitProgramThreadsReleased();
  for (volatile long i = 0; i < g_spin; ++i) {
  }
  if (unshare(CLONE_NEWUSER) != 0) return errno;
  // Map root to the creator's ids, so that the next cycle may nest one more (Linux requires the
  // caller's ids to be mapped).
  if (!t3::WriteFile("/proc/self/setgroups", "deny") ||
      !t3::WriteFile("/proc/self/uid_map", "0 0 1") ||
      !t3::WriteFile("/proc/self/gid_map", "0 0 1")) {
    return -2;
  }
  pthread_t t;
  if (pthread_create(&t, nullptr, Nothing, nullptr) != 0) return -1;
  pthread_join(t, nullptr);
  WaitProgramThreadsReleased();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--cycles" && i + 1 < argc) g_cycles = std::atoi(argv[++i]);
    else if (a == "--creates" && i + 1 < argc) g_creates = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: userns_after_join --runs N [--cycles C] [--creates M]\n");
      return 2;
    }
  }
  // Each unshare nests a user namespace (at most 32 deep).
  if (g_cycles < 1 || g_cycles > 30) return 2;
  int cycles = 0, failed = 0, hung = 0, crashed = 0;
  std::map<std::string, int> errors;
  for (int run = 0; run < runs && hung == 0; ++run) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) t3::Die("pipe");
    pid_t pid = fork();
    if (pid < 0) t3::Die("fork");
    if (pid == 0) {
      close(p[0]);
      g_spin = (run % 8) * 2000;
      for (int c = 0; c < g_cycles; ++c) {
        int r = Cycle();
        if (write(p[1], &r, sizeof r) != sizeof r) _exit(1);
      }
      _exit(0);
    }
    close(p[1]);
    int r;
    while (read(p[0], &r, sizeof r) == sizeof r) {
      ++cycles;
      if (r == 0) continue;
      ++failed;
      errors[r == -1 ? std::string("create failed")
                     : r == -2 ? std::string("id map failed") : t3::ErrName(r)]++;
    }
    close(p[0]);
    bool is_hung = false;
    int status = rg::WaitChild(pid, 60, &is_hung);
    if (is_hung) ++hung;
    else if (status != 0) ++crashed;
  }
  JsonWriter out;
  out.begin_object();
  out.key("cycles"); out.value(cycles);
  out.key("failed"); out.value(failed);
  out.key("hung"); out.value(hung);
  out.key("crashed"); out.value(crashed);
  out.key("errors");
  out.begin_object();
  for (auto& e : errors) {
    out.key(e.first);
    out.value(e.second);
  }
  out.end_object();
  out.end_object();
  t3::PrintJson(out);
  return 0;
}
