// SPDX-License-Identifier: Apache-2.0
// vfork_child: interposed calls made in a vfork child, before exec (issue 12 item 4).
//
//   vfork_child --call CALL [--exit exec|_exit]
//
// CALL, made once by the vfork child (it shares the parent's memory, the library's records
// included, but is another process):
//   affinity      sched_setaffinity(0) to its current CPU set
//   setns-net     setns() into its own network namespace (an fd of /proc/self/ns/net)
//   unshare-fs    unshare(CLONE_FS)
//   unshare-net   unshare(CLONE_NEWNET)
//   unshare-user  unshare(CLONE_NEWUSER)
//   syscall-unshare  syscall(SYS_unshare, CLONE_FS)
//   capset        capset(2) of its own current sets
//   nnp           prctl(PR_SET_NO_NEW_PRIVS, 1)
//   sigmask       pthread_sigmask(SIG_BLOCK, {SIGUSR2})
// then execs /bin/true (--exit exec, the default) or calls _exit(0).
//
// The parent, once the child is gone: "tasks_after_vfork" (entries in /proc/self/task: the
// library must not have started a thread for the parent, nor believe one runs), then a worker
// thread makes a change only a forwarded create isolates (unshare(CLONE_FS) + chdir("/")) and
// creates a thread, which reports its cwd; the main thread also creates and joins one. Both
// creates must return (a library that believes in a template that lived in the child waits
// forever: the test's timeout is the hang detector).
// One JSON object: {"child_status": "exit 0", "tasks_after_vfork": N, "baseline_cwd": "...",
//   "worker_cwd": "/", "child_cwd": "...", "create_rc": 0, "main_create_rc": 0}
// Exit 0, 2 usage.
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <climits>
#include <cstring>

#include "regress_util.h"

namespace {

std::string g_call;
int g_net_fd = -1;
bool g_exec = true;  // a global: the vfork child reads it on the parent's stack frame otherwise

std::string Cwd() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof buf) ? buf : "?";
}

// In the vfork child: only calls that are safe there (no allocation, no stdio).
int MakeCall() {
  if (g_call == "affinity") {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return sched_setaffinity(0, sizeof set, &set);
  }
  if (g_call == "setns-net") return setns(g_net_fd, CLONE_NEWNET);
  if (g_call == "unshare-fs") return unshare(CLONE_FS);
  if (g_call == "unshare-net") return unshare(CLONE_NEWNET);
  if (g_call == "unshare-user") return unshare(CLONE_NEWUSER);
  if (g_call == "syscall-unshare") return static_cast<int>(syscall(SYS_unshare, CLONE_FS));
  if (g_call == "capset") {
    rg::Privs p = rg::ReadPrivs();
    return rg::SetCaps(p.cap_eff, p.cap_prm, p.cap_inh, false) ? 0 : -1;
  }
  if (g_call == "nnp") return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (g_call == "sigmask") {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    return pthread_sigmask(SIG_BLOCK, &s, nullptr);
  }
  return -2;
}

std::string g_child_cwd;
void* Report(void*) {
  g_child_cwd = Cwd();
  return nullptr;
}
void* Nothing(void*) { return nullptr; }

struct WorkerResult {
  std::string cwd;
  int create_rc = -1;
};

void* Worker(void* arg) {
  WorkerResult* r = static_cast<WorkerResult*>(arg);
  if (unshare(CLONE_FS) != 0 || chdir("/") != 0) t3::Die("unshare(CLONE_FS)/chdir");
  r->cwd = Cwd();
  pthread_t t;
  r->create_rc = pthread_create(&t, nullptr, Report, nullptr);
  if (r->create_rc == 0) pthread_join(t, nullptr);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--call" && i + 1 < argc) g_call = argv[++i];
    else if (a == "--exit" && i + 1 < argc) g_exec = std::string(argv[++i]) == "exec";
    else {
      std::fprintf(stderr, "usage: vfork_child --call CALL [--exit exec|_exit]\n");
      return 2;
    }
  }
  if (g_call.empty()) return 2;
  g_net_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  std::string baseline_cwd = Cwd();

  pid_t pid = vfork();
  if (pid == 0) {
    int rc = MakeCall();
    if (rc != 0) _exit(10);
    if (g_exec) {
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(127);
    }
    _exit(0);
  }
  if (pid < 0) t3::Die("vfork");
  bool hung = false;
  int status = rg::WaitChild(pid, 60, &hung);
  int tasks = t3::CountTasks();

  WorkerResult wr;
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, &wr) != 0) t3::Die("pthread_create(worker)");
  pthread_join(w, nullptr);
  pthread_t m;
  int main_rc = pthread_create(&m, nullptr, Nothing, nullptr);
  if (main_rc == 0) pthread_join(m, nullptr);

  JsonWriter out;
  out.begin_object();
  out.key("child_status"); out.value(hung ? std::string("hung") : rg::DescribeStatus(status));
  out.key("tasks_after_vfork"); out.value(tasks);
  out.key("baseline_cwd"); out.value(baseline_cwd);
  out.key("worker_cwd"); out.value(wr.cwd);
  out.key("child_cwd"); out.value(g_child_cwd);
  out.key("create_rc"); out.value(wr.create_rc);
  out.key("main_create_rc"); out.value(main_rc);
  out.end_object();
  t3::PrintJson(out);
  return 0;
}
