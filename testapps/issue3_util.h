// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the test programs (escalate, userns, forker, dlopen_ctor,
// glibc_threads, failures; probe and faults for its file helpers): reading the calling thread's namespaces and security state from the
// kernel, a few error helpers, and JSON output through json_out.h.
//
// Everything is read by the thread it describes, from /proc/thread-self (never from a cache).
#ifndef PRISTINE_TESTAPPS_ISSUE3_UTIL_H_
#define PRISTINE_TESTAPPS_ISSUE3_UTIL_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json_out.h"

namespace t3 {

// Exit code for "this machine cannot run the requested set-up" (as the probe's).
constexpr int kExitUnsupported = 3;

inline pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

inline std::string ErrName(int err) {
  if (err == 0) return "0";
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return std::to_string(err);
}

[[noreturn]] inline void Unsupported(const std::string& msg) {
  std::fprintf(stderr, "cannot run here: %s\n", msg.c_str());
  std::fflush(stderr);
  _exit(kExitUnsupported);
}

[[noreturn]] inline void Die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::fflush(stderr);
  _exit(1);
}

// Inode of /proc/thread-self/ns/<link> of the calling thread; -1 if it cannot be read.
inline long long NsInode(const char* link) {
  std::string path = std::string("/proc/thread-self/ns/") + link;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<long long>(st.st_ino);
}

// Same for another process/thread's link (/proc/<pid>/ns/<link>).
inline long long NsInodeOf(pid_t pid, const char* link) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + link;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<long long>(st.st_ino);
}

// The security-relevant lines of /proc/thread-self/status, verbatim (after the tab).
struct SecState {
  std::string cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
  std::string nnp, seccomp, seccomp_filters;
  std::string uid, gid, groups;
};

inline SecState ReadSecState() {
  SecState s;
  std::ifstream in("/proc/thread-self/status");
  std::string line;
  auto val = [&](const char* key) -> std::string {
    std::string v = line.substr(std::strlen(key));
    size_t b = v.find_first_not_of(" \t");
    return b == std::string::npos ? "" : v.substr(b);
  };
  while (std::getline(in, line)) {
    if (line.rfind("CapInh:", 0) == 0) s.cap_inh = val("CapInh:");
    else if (line.rfind("CapPrm:", 0) == 0) s.cap_prm = val("CapPrm:");
    else if (line.rfind("CapEff:", 0) == 0) s.cap_eff = val("CapEff:");
    else if (line.rfind("CapBnd:", 0) == 0) s.cap_bnd = val("CapBnd:");
    else if (line.rfind("CapAmb:", 0) == 0) s.cap_amb = val("CapAmb:");
    else if (line.rfind("NoNewPrivs:", 0) == 0) s.nnp = val("NoNewPrivs:");
    else if (line.rfind("Seccomp_filters:", 0) == 0) s.seccomp_filters = val("Seccomp_filters:");
    else if (line.rfind("Seccomp:", 0) == 0) s.seccomp = val("Seccomp:");
    else if (line.rfind("Uid:", 0) == 0) s.uid = val("Uid:");
    else if (line.rfind("Gid:", 0) == 0) s.gid = val("Gid:");
    else if (line.rfind("Groups:", 0) == 0) s.groups = val("Groups:");
  }
  return s;
}

inline void WriteSecState(JsonWriter& w, const SecState& s) {
  w.begin_object();
  w.key("cap_inh"); w.value(s.cap_inh);
  w.key("cap_prm"); w.value(s.cap_prm);
  w.key("cap_eff"); w.value(s.cap_eff);
  w.key("cap_bnd"); w.value(s.cap_bnd);
  w.key("cap_amb"); w.value(s.cap_amb);
  w.key("nnp"); w.value(s.nnp);
  w.key("seccomp"); w.value(s.seccomp);
  w.key("seccomp_filters"); w.value(s.seccomp_filters);
  w.key("uid"); w.value(s.uid);
  w.key("gid"); w.value(s.gid);
  w.key("groups"); w.value(s.groups);
  w.end_object();
}

// Every namespace link of the calling thread, as a JSON object (null where unreadable).
inline void WriteNs(JsonWriter& w) {
  static const char* const kLinks[] = {"net", "uts", "ipc", "mnt", "cgroup", "pid",
                                       "pid_for_children", "time", "time_for_children", "user"};
  w.begin_object();
  for (const char* l : kLinks) {
    w.key(l);
    long long ino = NsInode(l);
    if (ino < 0) w.null(); else w.value(ino);
  }
  w.end_object();
}

// Number of entries in /proc/self/task (threads of the process).
inline int CountTasks() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n;
}

// Same, without the shim's own threads: the template and the spare threads it keeps, which carry
// the template's name ("pristine-..."; a thread's name is its creator's until it sets one).
inline int CountProgramTasks() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/comm");
      std::string comm;
      std::getline(in, comm);
      if (comm.rfind("pristine-", 0) != 0) ++n;
    }
    closedir(d);
  }
  return n;
}

inline bool WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, value.data(), value.size());
  int saved = errno;
  close(fd);
  errno = saved;
  return n == static_cast<ssize_t>(value.size());
}

inline std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Prints the JSON object as the program's one line of output.
inline void PrintJson(const JsonWriter& w) {
  std::printf("%s\n", w.str().c_str());
  std::fflush(stdout);
}

// Finds the mount point of the pids controller and our cgroup path in it.
inline bool FindPidsCgroup(std::string* dir) {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, v1_path, v2_path;
  bool have_v2 = false;
  while (std::getline(cg, line)) {
    // hierarchy-ID:controller-list:cgroup-path
    auto c1 = line.find(':');
    auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    std::stringstream ss(ctrls);
    std::string c;
    while (std::getline(ss, c, ','))
      if (c == "pids") v1_path = path;
    if (line.rfind("0::", 0) == 0) {
      have_v2 = true;
      v2_path = path;
    }
  }
  std::ifstream mi("/proc/self/mountinfo");
  while (std::getline(mi, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::stringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, parent, devno, root, mnt, fstype, source, super;
    pre >> id >> parent >> devno >> root >> mnt;
    post >> fstype >> source >> super;
    if (root != "/") continue;
    if (fstype == "cgroup" && !v1_path.empty()) {
      std::stringstream ss(super);
      std::string o;
      while (std::getline(ss, o, ','))
        if (o == "pids") {
          *dir = mnt + (v1_path == "/" ? "" : v1_path);
          return true;
        }
    }
  }
  if (have_v2) {
    std::ifstream mi2("/proc/self/mountinfo");
    while (std::getline(mi2, line)) {
      auto dash = line.find(" - ");
      if (dash == std::string::npos) continue;
      std::stringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
      std::string id, parent, devno, root, mnt, fstype;
      pre >> id >> parent >> devno >> root >> mnt;
      post >> fstype;
      if (fstype == "cgroup2" && root == "/") {
        std::string d = mnt + (v2_path == "/" ? "" : v2_path);
        if (ReadFirstLine(d + "/cgroup.controllers").find("pids") == std::string::npos &&
            access((d + "/cgroup.subtree_control").c_str(), W_OK) != 0)
          continue;
        *dir = d;
        return true;
      }
    }
  }
  return false;
}

}  // namespace t3

#endif  // PRISTINE_TESTAPPS_ISSUE3_UTIL_H_
