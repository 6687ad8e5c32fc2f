// SPDX-License-Identifier: Apache-2.0
// escalate: never-escalate test program (README, "Never escalate").
//
// The main thread records the baseline (namespaces + the security lines of
// /proc/thread-self/status), starts a worker with a plain pthread_create, the worker applies the
// --taint steps in the order given, records its own state ("caller") and creates one child with
// pthread_create; the child records its state. One JSON object on stdout:
//   {"baseline": S, "caller": S, "child": S|null, "create_error": null|"EAGAIN"...}
//   S = {"ns": {"net": ino, ...}, "sec": {"cap_inh": "hex", ..., "cap_amb", "nnp", "seccomp",
//        "seccomp_filters", "uid": "r e s fs", "gid": ..., "groups": ...}}
//
// Taints (apply a namespace or fs first: most later steps drop the right to unshare):
//   net        unshare(CLONE_NEWNET): an isolated taint a new thread can repair itself
//   fs         unshare(CLONE_FS) + chdir("/"): one only a forwarded create can isolate
//   caps       capget + capset(2) (raw syscall) dropping CAP_NET_ADMIN from effective+permitted
//   capbset    prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN): out of the bounding set
//   raise      capset adding CAP_NET_ADMIN to the inheritable set, then
//              prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN): above the baseline
//   nnp        prctl(PR_SET_NO_NEW_PRIVS, 1)
//   seccomp    nnp + an allow-all seccomp BPF filter (prctl(PR_SET_SECCOMP))
//   creds      raw syscall(SYS_setgroups 0 / SYS_setresgid / SYS_setresuid) to 65534 (per thread)
//   landlock   nnp + a Landlock domain that handles (denies) LANDLOCK_ACCESS_FS_MAKE_DIR
//
// Every state has "fs_shared": 1 if the thread shares its fs_struct with the main thread (kcmp).
// --scratch DIR: every state also gets "mkdir": the result ("0", "EACCES", ...) of mkdir(2) of a
// fresh directory under DIR (removed again): how a Landlock domain shows.
//
// Exit: 0 JSON printed, 2 usage, 3 this machine cannot apply a taint.

#include <linux/capability.h>
#include <linux/kcmp.h>
#include <sys/resource.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>

#include "thread_state.h"

namespace {

std::string g_scratch;
pid_t g_main_tid;

std::string MkdirResult() {
  std::string d = g_scratch + "/t" + std::to_string(testapp::Gettid());
  if (mkdir(d.c_str(), 0700) != 0) return testapp::ErrName(errno);
  rmdir(d.c_str());
  return "0";
}

std::string Capture() {
  JsonWriter w;
  w.begin_object();
  w.key("ns");
  testapp::WriteNs(w);
  w.key("sec");
  testapp::WriteSecState(w, testapp::ReadSecState());
  if (!g_scratch.empty()) {
    w.key("mkdir");
    w.value(MkdirResult());
  }
  w.key("fs_shared");
  w.value(static_cast<long long>(
      syscall(SYS_kcmp, g_main_tid, testapp::Gettid(), KCMP_FS, 0, 0) == 0));
  w.key("tid");
  w.value(static_cast<long long>(testapp::Gettid()));
  w.end_object();
  return w.str();
}

std::vector<std::string> g_taints;
std::string g_caller, g_child;
std::string g_create_error;

void Capset(void (*edit)(__user_cap_data_struct* d)) {
  __user_cap_header_struct hdr;
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2];
  std::memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) testapp::CannotRunHere("capget: " + testapp::ErrName(errno));
  edit(data);
  if (syscall(SYS_capset, &hdr, data) != 0) testapp::CannotRunHere("capset: " + testapp::ErrName(errno));
}

void Apply(const std::string& t) {
  auto fail = [&](const char* what) { testapp::CannotRunHere("taint " + t + ": " + what + ": " + testapp::ErrName(errno)); };
  if (t == "net") {
    if (unshare(CLONE_NEWNET) != 0) fail("unshare(CLONE_NEWNET)");
  } else if (t == "fs") {
    if (unshare(CLONE_FS) != 0) fail("unshare(CLONE_FS)");
    if (chdir("/") != 0) fail("chdir");
  } else if (t == "caps") {
    Capset([](__user_cap_data_struct* d) {
      d[0].effective &= ~(1u << CAP_NET_ADMIN);
      d[0].permitted &= ~(1u << CAP_NET_ADMIN);
    });
  } else if (t == "capbset") {
    if (prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) != 0) fail("PR_CAPBSET_DROP");
  } else if (t == "raise") {
    Capset([](__user_cap_data_struct* d) { d[0].inheritable |= 1u << CAP_NET_ADMIN; });
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0) fail("PR_CAP_AMBIENT_RAISE");
  } else if (t == "nnp") {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
  } else if (t == "seccomp") {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
    struct sock_filter filter[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog;
    prog.len = 1;
    prog.filter = filter;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) fail("PR_SET_SECCOMP");
  } else if (t == "landlock") {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
    struct landlock_ruleset_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_DIR;
    long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (fd < 0) fail("landlock_create_ruleset");
    if (syscall(SYS_landlock_restrict_self, fd, 0) != 0) fail("landlock_restrict_self");
    close(static_cast<int>(fd));
  } else if (t == "creds") {
    // A finite RLIMIT_NPROC (the process-wide soft limit; lowering needs no
    // privilege) makes the outcome the same on every machine: the shim must
    // leave the create to the caller, which the kernel charges to uid 65534.
    struct rlimit nproc;
    if (getrlimit(RLIMIT_NPROC, &nproc) != 0) fail("getrlimit");
    if (nproc.rlim_cur == RLIM_INFINITY || nproc.rlim_cur > 4096) nproc.rlim_cur = 4096;
    if (setrlimit(RLIMIT_NPROC, &nproc) != 0) fail("setrlimit");
    if (syscall(SYS_setgroups, 0, nullptr) != 0) fail("setgroups");
    if (syscall(SYS_setresgid, 65534, 65534, 65534) != 0) fail("setresgid");
    if (syscall(SYS_setresuid, 65534, 65534, 65534) != 0) fail("setresuid");
  } else if (t == "creds-admin") {
    // The same uid/gid, but keeping the permitted capabilities across the
    // change and making them effective again: CAP_SYS_ADMIN exempts the
    // caller from RLIMIT_NPROC, so the shim may forward it.
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail("PR_SET_KEEPCAPS");
    if (syscall(SYS_setgroups, 0, nullptr) != 0) fail("setgroups");
    if (syscall(SYS_setresgid, 65534, 65534, 65534) != 0) fail("setresgid");
    if (syscall(SYS_setresuid, 65534, 65534, 65534) != 0) fail("setresuid");
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) fail("PR_SET_KEEPCAPS 0");
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) != 0) fail("capget");
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    if (syscall(SYS_capset, &header, data) != 0) fail("capset");
  } else {
    std::fprintf(stderr, "escalate: unknown taint '%s'\n", t.c_str());
    std::exit(2);
  }
}

void* Child(void*) {
  g_child = Capture();
  return nullptr;
}

void* Worker(void*) {
  for (const auto& t : g_taints) Apply(t);
  g_caller = Capture();
  pthread_t th;
  int r = pthread_create(&th, nullptr, Child, nullptr);
  if (r != 0) {
    g_create_error = testapp::ErrName(r);
  } else {
    pthread_join(th, nullptr);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--taint" && i + 1 < argc) {
      g_taints.push_back(argv[++i]);
    } else if (a == "--scratch" && i + 1 < argc) {
      g_scratch = argv[++i];
    } else {
      std::fprintf(stderr, "usage: escalate [--scratch DIR] "
                           "[--taint net|fs|caps|capbset|raise|nnp|seccomp|creds|creds-admin|landlock]...\n");
      return 2;
    }
  }
  g_main_tid = testapp::Gettid();
  std::string baseline = Capture();
  pthread_t w;
  int r = pthread_create(&w, nullptr, Worker, nullptr);
  if (r != 0) testapp::Die("worker: " + testapp::ErrName(r));
  pthread_join(w, nullptr);
  JsonWriter out;
  out.begin_object();
  out.key("baseline"); out.raw(baseline);
  out.key("caller"); out.raw(g_caller);
  out.key("child");
  if (g_child.empty()) out.null(); else out.raw(g_child);
  out.key("create_error");
  if (g_create_error.empty()) out.null(); else out.value(g_create_error);
  out.end_object();
  testapp::PrintJson(out);
  return 0;
}
