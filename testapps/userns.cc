// SPDX-License-Identifier: Apache-2.0
// userns: namespace changes that Linux allows only in a single-threaded process, and pid
// namespaces (PRODUCT.md, "Baseline"; issue 3 items 2 and 3).
//
//   userns --mode rebase [--via unshare|syscall]
//     1. main starts a worker and joins it (under the shim only the template remains);
//     2. main: unshare(CLONE_NEWUSER)                        -> "unshare_user"
//        (then, as `unshare -r`, it maps uid/gid 0 to its own ids)
//     3. main creates a thread                              -> "t_after_unshare"
//     4. a worker unshares its net namespace and creates one -> "w_after_unshare" / "c_after_unshare"
//     5. main clones a helper process into a new user+mount namespace (clone(2), nested in the new
//        user namespace), then setns(user) into it          -> "setns_user"
//        and creates a thread                               -> "t_after_setns_user"
//     6. main: setns(mnt) into the helper's mount namespace  -> "setns_mnt"
//        and creates a thread                               -> "t_after_setns_mnt"
//     7. a worker unshares its net namespace and creates one -> "w_after_setns" / "c_after_setns"
//     The program stops at the first step that fails (later keys are null).
//
//   userns --mode busy [--threads N] [--via unshare|syscall]
//     N (default 2) threads are alive (blocked on a pipe) while main calls unshare(CLONE_NEWUSER)
//     -> "unshare_user"; the threads are then released and joined.
//
//   userns --mode pidns
//     a worker calls unshare(CLONE_NEWPID), then pthread_create -> "create_error" / "child";
//     then fork()s: the forked child reports its getpid() through a pipe -> "fork_child_pid".
//
// Every state is {"ns": {...every /proc/thread-self/ns link...}, "tid": N}. A step result is
// {"rc": 0|-1, "errno": "0"|"EINVAL"...}. One JSON object on stdout; exit 0 (also when a step
// failed), 2 usage, 3 unsupported here.

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <functional>

#include "issue3_util.h"

namespace {

bool g_via_syscall = false;

std::string Capture() {
  JsonWriter w;
  w.begin_object();
  w.key("ns");
  t3::WriteNs(w);
  w.key("tid");
  w.value(static_cast<long long>(t3::Gettid()));
  w.end_object();
  return w.str();
}

struct StepResult {
  int rc = 0;
  int err = 0;
  std::string Json() const {
    JsonWriter w;
    w.begin_object();
    w.key("rc"); w.value(rc);
    w.key("errno"); w.value(t3::ErrName(err));
    w.end_object();
    return w.str();
  }
};

StepResult DoUnshare(int flags) {
  StepResult r;
  r.rc = g_via_syscall ? static_cast<int>(syscall(SYS_unshare, flags)) : unshare(flags);
  r.err = r.rc == 0 ? 0 : errno;
  return r;
}

StepResult DoSetns(int fd, int nstype) {
  StepResult r;
  r.rc = g_via_syscall ? static_cast<int>(syscall(SYS_setns, fd, nstype)) : setns(fd, nstype);
  r.err = r.rc == 0 ? 0 : errno;
  return r;
}

// Runs `fn` on a new thread (plain pthread_create) and joins it; returns its result string, or
// "" after storing the create error in *err. Returns once the kernel has let the thread go:
// pthread_join returns when the thread's tid is cleared, a moment before Linux stops counting it,
// and a single-threaded change (setns into a user namespace) made right after would see it (with
// or without the library).
std::string OnThread(const std::function<std::string()>& fn, std::string* err) {
  struct Ctx {
    const std::function<std::string()>* fn;
    std::string out;
    pid_t tid;
  } ctx{&fn, "", 0};
  pthread_t th;
  int r = pthread_create(&th, nullptr, [](void* p) -> void* {
    auto* c = static_cast<Ctx*>(p);
    c->tid = t3::Gettid();
    c->out = (*c->fn)();
    return nullptr;
  }, &ctx);
  if (r != 0) {
    *err = t3::ErrName(r);
    return "";
  }
  pthread_join(th, nullptr);
  while (syscall(SYS_tgkill, getpid(), ctx.tid, 0) == 0) sched_yield();
  return ctx.out;
}

// A worker that unshares its net namespace and creates one child: {"worker": S, "child": S|null,
// "create_error": ...} (the worker itself is created untainted).
std::string TaintedCreate() {
  std::string err;
  std::string out = OnThread([]() -> std::string {
    StepResult u = DoUnshare(CLONE_NEWNET);
    std::string worker = Capture();
    std::string create_err;
    std::string child;
    if (u.rc == 0) child = OnThread([] { return Capture(); }, &create_err);
    JsonWriter w;
    w.begin_object();
    w.key("unshare_net"); w.raw(u.Json());
    w.key("worker"); w.raw(worker);
    w.key("child");
    if (child.empty()) w.null(); else w.raw(child);
    w.key("create_error");
    if (create_err.empty()) w.null(); else w.value(create_err);
    w.end_object();
    return w.str();
  }, &err);
  if (!err.empty()) t3::Die("tainted worker: " + err);
  return out;
}

struct Out {
  JsonWriter w;
  Out() { w.begin_object(); }
  void Raw(const char* k, const std::string& v) {
    w.key(k);
    if (v.empty()) w.null(); else w.raw(v);
  }
  void Str(const char* k, const std::string& v) { w.key(k); w.value(v); }
  [[noreturn]] void Finish() {
    w.end_object();
    t3::PrintJson(w);
    std::exit(0);
  }
};

std::string ThreadOrDie(Out* out, const char* key) {
  std::string err;
  std::string s = OnThread([] { return Capture(); }, &err);
  if (!err.empty()) {
    out->Str((std::string(key) + "_error").c_str(), err);
    out->Finish();
  }
  return s;
}

// Helper process: a child cloned into new user+mount namespaces that waits until `release` closes.
struct Helper {
  pid_t pid = -1;
  int ready[2];
  int release[2];
};

int HelperMain(void* p) {
  auto* h = static_cast<Helper*>(p);
  close(h->ready[0]);
  close(h->release[1]);
  char c = 'r';
  if (write(h->ready[1], &c, 1) != 1) _exit(1);
  while (read(h->release[0], &c, 1) > 0) {
  }
  _exit(0);
}

void ModeRebase() {
  Out out;
  out.Raw("main_before", Capture());
  std::string w0 = ThreadOrDie(&out, "first_worker");
  out.Raw("first_worker", w0);

  StepResult u = DoUnshare(CLONE_NEWUSER);
  out.Raw("unshare_user", u.Json());
  out.Raw("main_after_unshare", Capture());
  if (u.rc != 0) out.Finish();
  // As `unshare -r`: map our ids to root, so that user namespaces can be nested below this one
  // (creating one needs the creator's uid mapped in its parent) and threads keep a mapped uid.
  if (!t3::WriteFile("/proc/self/setgroups", "deny") || !t3::WriteFile("/proc/self/uid_map", "0 0 1") ||
      !t3::WriteFile("/proc/self/gid_map", "0 0 1"))
    t3::Unsupported("writing /proc/self/{setgroups,uid_map,gid_map}: " + t3::ErrName(errno));
  out.Raw("t_after_unshare", ThreadOrDie(&out, "t_after_unshare"));
  out.Raw("after_unshare", TaintedCreate());

  // The helper: new user (nested in ours) and mount namespaces from birth (clone, not unshare).
  static Helper h;
  if (pipe2(h.ready, O_CLOEXEC) != 0 || pipe2(h.release, O_CLOEXEC) != 0) t3::Die("pipe");
  const size_t kStack = 256 * 1024;
  void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) t3::Die("mmap");
  h.pid = clone(HelperMain, static_cast<char*>(stack) + kStack, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, &h);
  if (h.pid < 0) t3::Unsupported("clone(CLONE_NEWUSER|CLONE_NEWNS): " + t3::ErrName(errno));
  close(h.ready[1]);
  close(h.release[0]);
  char c;
  if (read(h.ready[0], &c, 1) != 1) t3::Die("helper did not start");
  std::string base = "/proc/" + std::to_string(h.pid) + "/ns/";
  int userfd = open((base + "user").c_str(), O_RDONLY | O_CLOEXEC);
  int mntfd = open((base + "mnt").c_str(), O_RDONLY | O_CLOEXEC);
  if (userfd < 0 || mntfd < 0) t3::Die("open helper ns: " + t3::ErrName(errno));
  {
    JsonWriter w;
    w.begin_object();
    w.key("user"); w.value(t3::NsInodeOf(h.pid, "user"));
    w.key("mnt"); w.value(t3::NsInodeOf(h.pid, "mnt"));
    w.end_object();
    out.Raw("helper_ns", w.str());
  }
  auto finish = [&]() {
    close(h.release[1]);
    int st;
    while (waitpid(h.pid, &st, 0) < 0 && errno == EINTR) {
    }
    out.Finish();
  };

  // Diagnostics: every thread, and all but the shim's own ("pristine-*": template, spares).
  out.w.key("tasks_before_setns_user");
  out.w.value(t3::CountTasks());
  out.w.key("program_tasks_before_setns_user");
  out.w.value(t3::CountProgramTasks());
  StepResult su = DoSetns(userfd, CLONE_NEWUSER);
  out.Raw("setns_user", su.Json());
  out.Raw("main_after_setns_user", Capture());
  if (su.rc != 0) finish();
  out.Raw("t_after_setns_user", ThreadOrDie(&out, "t_after_setns_user"));

  StepResult sm = DoSetns(mntfd, CLONE_NEWNS);
  out.Raw("setns_mnt", sm.Json());
  out.Raw("main_after_setns_mnt", Capture());
  if (sm.rc != 0) finish();
  out.Raw("t_after_setns_mnt", ThreadOrDie(&out, "t_after_setns_mnt"));
  out.Raw("after_setns", TaintedCreate());
  finish();
}

void ModeBusy(int n) {
  Out out;
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) != 0) t3::Die("pipe");
  std::vector<pthread_t> threads(n);
  for (auto& th : threads) {
    int r = pthread_create(&th, nullptr, [](void* p) -> void* {
      char c;
      while (read(static_cast<int>(reinterpret_cast<intptr_t>(p)), &c, 1) > 0) {
      }
      return nullptr;
    }, reinterpret_cast<void*>(static_cast<intptr_t>(gate[0])));
    if (r != 0) t3::Die("busy thread: " + t3::ErrName(r));
  }
  out.Raw("main_before", Capture());
  StepResult u = DoUnshare(CLONE_NEWUSER);
  out.Raw("unshare_user", u.Json());
  out.Raw("main_after", Capture());
  close(gate[1]);
  for (auto& th : threads) pthread_join(th, nullptr);
  out.w.key("tasks_after_join");
  out.w.value(t3::CountTasks());
  out.Finish();
}

void ModePidns() {
  Out out;
  out.Raw("baseline", Capture());
  std::string err;
  std::string res = OnThread([]() -> std::string {
    StepResult u = DoUnshare(CLONE_NEWPID);
    if (u.rc != 0) t3::Unsupported("unshare(CLONE_NEWPID): " + t3::ErrName(u.err));
    std::string create_err;
    std::string child = OnThread([] { return Capture(); }, &create_err);
    // The caller's own pid_for_children must be untouched by whatever the create did.
    int p[2];
    if (pipe(p) != 0) t3::Die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
      int v = static_cast<int>(getpid());
      if (write(p[1], &v, sizeof v) != sizeof v) _exit(1);
      _exit(0);
    }
    close(p[1]);
    int v = -1;
    if (pid < 0 || read(p[0], &v, sizeof v) != sizeof v) v = -1;
    close(p[0]);
    int st = 0;
    if (pid > 0) {
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
    std::string caller = Capture();  // after the fork: pid_for_children is readable now
    JsonWriter w;
    w.begin_object();
    w.key("caller"); w.raw(caller);
    w.key("child");
    if (child.empty()) w.null(); else w.raw(child);
    w.key("create_error");
    if (create_err.empty()) w.null(); else w.value(create_err);
    w.key("fork_child_pid"); w.value(v);
    w.end_object();
    return w.str();
  }, &err);
  if (!err.empty()) t3::Die("worker: " + err);
  out.Raw("worker", res);
  out.Finish();
}

[[noreturn]] void Usage() {
  std::fprintf(stderr, "usage: userns --mode rebase|busy|pidns [--via unshare|syscall] [--threads N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    std::string v = argv[++i];
    if (a == "--mode") mode = v;
    else if (a == "--via" && (v == "unshare" || v == "syscall")) g_via_syscall = v == "syscall";
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else Usage();
  }
  if (mode == "rebase") ModeRebase();
  if (mode == "busy" && threads >= 1) ModeBusy(threads);
  if (mode == "pidns") ModePidns();
  Usage();
}
