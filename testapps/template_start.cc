// SPDX-License-Identifier: Apache-2.0
// template_start: a program that changes only its own state and never creates a thread stays
// single-threaded under the library (issue 18 item 1): no template, no spare.
//
//   template_start --change KIND[,KIND...] [--forks N]
//
// The main thread (the only thread) makes each change to itself, in order:
//   affinity   sched_setaffinity(0) to the first CPU of its set only
//   net        unshare(CLONE_NEWNET)
//   uts        unshare(CLONE_NEWUTS)
//   sigmask    pthread_sigmask(SIG_BLOCK, {SIGUSR2})
//   caps       capset(2) without CAP_NET_RAW in its effective and permitted sets
//   bounding   prctl(PR_CAPBSET_DROP, CAP_NET_RAW)
//   nnp        prctl(PR_SET_NO_NEW_PRIVS, 1)
//   ids        setgroups(0), setresgid, setresuid to 65534 (glibc's, process-wide)
//   none       nothing
// then reports "tasks" (entries of /proc/self/task) and "single_threaded" (glibc's
// __libc_single_threaded: 1 until the process first creates a thread).
//
// --forks N: then, N times: fork; the parent sends SIGUSR1 to the child at once, whose handler
// (installed before the fork) calls printf, and waits for it. In a single-threaded process
// glibc's fork takes no lock, so the handler never waits; in a multi-threaded one fork takes the
// malloc and stdio locks and a handler that runs in the child before they are reset (the signal
// is pending when the child first returns to user space) waits forever. A child that has not
// exited after 20 s is hung (a safety net only); the loop stops at the first.
// One JSON object: {"tasks": N, "single_threaded": 0|1, "changes_ok": true,
//   "forks": completed, "fork_hung": H, "fork_failed": F}
// Exit 0, 2 usage, 3 cannot apply a change.
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/single_threaded.h>

#include <csignal>
#include <sstream>

#include "regress_util.h"

namespace {

volatile sig_atomic_t g_got = 0;

void Handler(int) {
  // Not async-signal-safe, as many programs do: harmless where glibc takes no lock around fork.
  std::printf("child %d got its signal\n", static_cast<int>(getpid()));
  g_got = 1;
}

bool Change(const std::string& kind) {
  if (kind == "none") return true;
  if (kind == "affinity") {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) {
        CPU_ZERO(&set);
        CPU_SET(c, &set);
        break;
      }
    }
    return sched_setaffinity(0, sizeof set, &set) == 0;
  }
  if (kind == "net") return unshare(CLONE_NEWNET) == 0;
  if (kind == "uts") return unshare(CLONE_NEWUTS) == 0;
  if (kind == "sigmask") {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    return pthread_sigmask(SIG_BLOCK, &s, nullptr) == 0;
  }
  if (kind == "caps") {
    rg::Privs p = rg::ReadPrivs();
    uint64_t raw = 1ull << CAP_NET_RAW;
    return rg::SetCaps(p.cap_eff & ~raw, p.cap_prm & ~raw, p.cap_inh & ~raw, false);
  }
  if (kind == "bounding") return prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) == 0;
  if (kind == "nnp") return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
  if (kind == "ids") {
    return setgroups(0, nullptr) == 0 && setresgid(65534, 65534, 65534) == 0 &&
           setresuid(65534, 65534, 65534) == 0;
  }
  std::fprintf(stderr, "unknown change %s\n", kind.c_str());
  _exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string changes;
  int forks = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--change" && i + 1 < argc) changes = argv[++i];
    else if (a == "--forks" && i + 1 < argc) forks = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: template_start --change KIND[,KIND...] [--forks N]\n");
      return 2;
    }
  }
  std::stringstream ss(changes);
  std::string kind;
  while (std::getline(ss, kind, ',')) {
    if (!Change(kind)) t3::Unsupported("change " + kind + ": " + t3::ErrName(errno));
  }
  int tasks = t3::CountTasks();
  int single = __libc_single_threaded;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = Handler;
  sigaction(SIGUSR1, &sa, nullptr);
  int completed = 0, hung = 0, failed = 0;
  // Nothing printed before the loop: each child's first printf allocates stdout's buffer.
  for (int i = 0; i < forks && hung == 0; ++i) {
    pid_t pid = fork();
    if (pid < 0) t3::Die("fork");
    if (pid == 0) {
      while (!g_got) {
      }
      _exit(0);
    }
    kill(pid, SIGUSR1);
    bool is_hung = false;
    int status = rg::WaitChild(pid, 20, &is_hung);
    if (is_hung) ++hung;
    else if (status != 0) ++failed;
    else ++completed;
  }

  JsonWriter out;
  out.begin_object();
  out.key("tasks"); out.value(tasks);
  out.key("single_threaded"); out.value(single);
  out.key("forks"); out.value(completed);
  out.key("fork_hung"); out.value(hung);
  out.key("fork_failed"); out.value(failed);
  out.end_object();
  t3::PrintJson(out);
  return 0;
}
