// SPDX-License-Identifier: Apache-2.0
// forged_proc: the library's /proc reads must not follow a tainted thread's root or mount
// namespace. A thread that chroot()ed into a directory it controls, or entered
// a mount namespace whose /proc is something else, would otherwise feed the library forged
// privileges or a forged thread count.
//
//   forged_proc --dir DIR --drop caps|nnp|seccomp|caps,seccomp
//   forged_proc --dir DIR --count
//
// --drop: a worker makes its fs private (unshare(CLONE_FS): its creates are forwarded), builds
// DIR/root/proc with copies of the real status files taken now, while it is still root with every
// capability and no restriction (proc/thread-self/status, proc/self/status and
// proc/self/task/<tid>/status of every thread, the library's included), chroot()s into DIR/root,
// then drops through libc: "caps" every capability (capset to empty sets), "nnp"
// prctl(PR_SET_NO_NEW_PRIVS), "seccomp" no_new_privs and a filter under which getppid() fails
// with EPERM. It then creates a thread with default attributes, which reports its privileges
// with system calls only, and whether getppid() is denied.
// JSON: {"caller": P, "child": P, "child_getppid_denied": bool, "create_rc": 0}
//   P = {"cap_eff", "cap_prm", "cap_inh", "uid", "gid", "nnp", "seccomp"} (WritePrivs, thread_state.h)
//
// --count: a worker makes its fs private and creates a mount namespace M (unshare(CLONE_NEWNS),
// every mount made private first, so nothing propagates out) whose /proc is DIR/proc, a bind
// mount of a copy of /proc/self/stat that says the process has one thread; it goes back to the
// original mount namespace, then setns()es into M (a change Linux allows a thread with a private
// fs in a multi-threaded process; if the process had one thread, the library would make this
// thread's state the baseline). It then creates a thread, which reports whether it shares the
// main thread's fs_struct (kcmp): a forwarded create gives it the baseline's.
// JSON: {"child_shares_main_fs": bool, "create_rc": 0, "tasks": N}
// Exit 0, 2 usage, 3 cannot apply the set-up.
#include <dirent.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>

#include <fstream>
#include <sstream>

#include "thread_state.h"

namespace {

std::string g_dir;
std::string g_drop;
pid_t g_main_tid;

void MkdirP(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += "/" + part;
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) testapp::Die("mkdir " + cur);
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path);
  out << data;
  if (!out) testapp::Die("write " + path);
}

// ---- --drop ----

testapp::Privs g_caller, g_child;
bool g_child_denied = false;

void* Child(void*) {
  g_child = testapp::ReadPrivs();
  g_child_denied = testapp::InlineSyscall(SYS_getppid) == -EPERM;
  return nullptr;
}

void InstallFilter() {
  if (!testapp::DenyGetppid(/*inline_syscall=*/false)) testapp::CannotRunHere("seccomp filter");
}

int g_create_rc = -1;

void* DropWorker(void*) {
  if (unshare(CLONE_FS) != 0) testapp::CannotRunHere("unshare(CLONE_FS)");
  std::string root = g_dir + "/root";
  MkdirP(root + "/proc/thread-self");
  WriteAll(root + "/proc/thread-self/status", ReadAll("/proc/thread-self/status"));
  MkdirP(root + "/proc/self");
  WriteAll(root + "/proc/self/status", ReadAll("/proc/self/status"));
  WriteAll(root + "/proc/self/stat", ReadAll("/proc/self/stat"));
  if (DIR* d = opendir("/proc/self/task")) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string t = std::string("/proc/self/task/") + e->d_name;
      MkdirP(root + t);
      WriteAll(root + t + "/status", ReadAll(t + "/status"));
    }
    closedir(d);
  }
  if (chroot(root.c_str()) != 0 || chdir("/") != 0) testapp::CannotRunHere("chroot");
  std::stringstream ss(g_drop);
  std::string step;
  while (std::getline(ss, step, ',')) {
    if (step == "caps") {
      if (!testapp::SetCaps(0, 0, 0, false)) testapp::CannotRunHere("capset");
    } else if (step == "nnp") {
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) testapp::CannotRunHere("nnp");
    } else if (step == "seccomp") {
      InstallFilter();
    } else {
      testapp::Die("unknown --drop step " + step);
    }
  }
  g_caller = testapp::ReadPrivs();
  pthread_t t;
  g_create_rc = pthread_create(&t, nullptr, Child, nullptr);
  if (g_create_rc == 0) pthread_join(t, nullptr);
  return nullptr;
}

// ---- --count ----

bool g_child_shares_main_fs = false;

void* CountChild(void*) {
  g_child_shares_main_fs = syscall(SYS_kcmp, g_main_tid, testapp::Gettid(), KCMP_FS, 0, 0) == 0;
  return nullptr;
}

void* CountWorker(void*) {
  int orig = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (orig < 0) testapp::CannotRunHere("open mnt ns");
  // /proc/self/stat with field 20 (num_threads) set to 1.
  std::string stat = ReadAll("/proc/self/stat");
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) testapp::Die("parse stat");
  std::stringstream fields(stat.substr(close_paren + 2));
  std::vector<std::string> f;
  std::string x;
  while (fields >> x) f.push_back(x);
  if (f.size() < 18) testapp::Die("parse stat fields");
  f[17] = "1";  // field 20 of the line is the 18th after the command
  std::string forged = stat.substr(0, close_paren + 1);
  for (auto& v : f) forged += " " + v;
  forged += "\n";
  std::string fake = g_dir + "/proc";
  MkdirP(fake + "/self");
  WriteAll(fake + "/self/stat", forged);

  if (unshare(CLONE_FS) != 0) testapp::CannotRunHere("unshare(CLONE_FS)");
  if (unshare(CLONE_NEWNS) != 0) testapp::CannotRunHere("unshare(CLONE_NEWNS)");
  // Private first: the bind mount below must stay in this namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    testapp::CannotRunHere("make / private");
  }
  int m = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (m < 0) testapp::CannotRunHere("open new mnt ns");
  if (mount(fake.c_str(), "/proc", nullptr, MS_BIND, nullptr) != 0) testapp::CannotRunHere("bind /proc");
  if (setns(orig, CLONE_NEWNS) != 0) testapp::Die("setns back: " + testapp::ErrName(errno));
  if (setns(m, CLONE_NEWNS) != 0) testapp::Die("setns into M: " + testapp::ErrName(errno));
  pthread_t t;
  g_create_rc = pthread_create(&t, nullptr, CountChild, nullptr);
  if (g_create_rc == 0) pthread_join(t, nullptr);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  bool count = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) g_dir = argv[++i];
    else if (a == "--drop" && i + 1 < argc) g_drop = argv[++i];
    else if (a == "--count") count = true;
    else {
      std::fprintf(stderr, "usage: forged_proc --dir DIR (--drop STEPS | --count)\n");
      return 2;
    }
  }
  if (g_dir.empty() || (g_drop.empty() == !count)) return 2;
  g_main_tid = testapp::Gettid();
  pthread_t w;
  if (pthread_create(&w, nullptr, count ? CountWorker : DropWorker, nullptr) != 0) {
    testapp::Die("pthread_create(worker)");
  }
  pthread_join(w, nullptr);

  JsonWriter out;
  out.begin_object();
  out.key("create_rc"); out.value(g_create_rc);
  if (count) {
    out.key("child_shares_main_fs"); out.value(g_child_shares_main_fs);
    out.key("tasks"); out.value(testapp::CountTasks());
  } else {
    out.key("caller"); testapp::WritePrivs(out, g_caller);
    out.key("child"); testapp::WritePrivs(out, g_child);
    out.key("child_getppid_denied"); out.value(g_child_denied);
  }
  out.end_object();
  testapp::PrintJson(out);
  return 0;
}
