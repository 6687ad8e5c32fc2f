// SPDX-License-Identifier: Apache-2.0
// What the test programs share: reading a thread's state from the kernel (namespaces, the
// security part of /proc/thread-self/status, privileges with system calls only, the process's
// threads), and the rules every program follows for errors, exit codes and output.
//
// Conventions (pytests/programs.py relies on them):
//   * a program prints its result as one JSON object, the last line of stdout (json_out.h);
//   * exit 3 (kExitCannotRunHere) means "this machine cannot run the requested set-up"; the tests
//     skip on it only when the program cannot run without the library either;
//   * exit 1 with a message on stderr is an error of the program itself.
// State is read by the thread it describes, from /proc/thread-self, never from a cache; a value
// that cannot be read is -1 (never a value a real reading can have).
#ifndef PRISTINE_TESTAPPS_THREAD_STATE_H_
#define PRISTINE_TESTAPPS_THREAD_STATE_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "../shim/raw_syscall.h"
#include "json_out.h"

namespace testapp {

// ---------------------------------------------------------------------------------------------
// Errors, exit codes and output

// Exit code for "this machine cannot run the requested set-up".
constexpr int kExitCannotRunHere = 3;

inline pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// "0" for no error, else the errno's name ("EAGAIN"), or its number if it has none.
inline std::string ErrName(int err) {
  if (err == 0) return "0";
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return std::to_string(err);
}

[[noreturn]] inline void CannotRunHere(const std::string& msg) {
  std::fprintf(stderr, "cannot run here: %s\n", msg.c_str());
  std::fflush(stderr);
  _exit(kExitCannotRunHere);
}

[[noreturn]] inline void Die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::fflush(stderr);
  _exit(1);
}

// Prints the JSON object as the program's last line of output.
inline void PrintJson(const JsonWriter& w) {
  std::printf("%s\n", w.str().c_str());
  std::fflush(stdout);
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

// Waits for child `pid`. A child that has not exited after `hang_after_s` seconds is taken for
// hung (a deadlock): it is killed with SIGKILL and reaped, and *hung is set. This is a safety net
// against hangs only, never a measurement: the programs' results never depend on it.
// Returns the wait status.
inline int WaitChild(pid_t pid, int hang_after_s, bool* hung) {
  *hung = false;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    struct pollfd p = {pidfd, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, hang_after_s * 1000);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      *hung = true;
      kill(pid, SIGKILL);
    }
    close(pidfd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// "exit N" or "signal NAME" (NAME as sigabbrev_np: "SEGV"); callers compare with these strings.
inline std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("signal ") + (name ? name : std::to_string(WTERMSIG(status)).c_str());
  }
  return "status " + std::to_string(status);
}

// A system call made with the instruction, not through libc's syscall(): what a statically
// linked part or hand-written assembly does, invisible to any LD_PRELOAD interposer. The library's
// own helper (header-only; the programs never link the library). Returns -errno on failure.
inline long InlineSyscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                          long a5 = 0) {
  return pristine::RawSyscall6(nr, a1, a2, a3, a4, a5, 0);
}

// Sets no_new_privs and installs a seccomp filter under which getppid fails with EPERM and every
// other call is allowed; through libc's prctl, or with the instruction (`inline_syscall`: a change
// no interposer sees). Returns whether both calls succeeded.
inline bool DenyGetppid(bool inline_syscall) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (inline_syscall) {
    return InlineSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           InlineSyscall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                         reinterpret_cast<long>(&prog), 0, 0) == 0;
  }
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
}

// ---------------------------------------------------------------------------------------------
// Namespaces

// Inode of the namespace link DIR/ns/LINK (DIR: "/proc/thread-self", "/proc/PID",
// "/proc/self/task/TID"); -1 if it cannot be read.
inline long long NsInodeAt(const std::string& dir, const char* link) {
  std::string path = dir + "/ns/" + link;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<long long>(st.st_ino);
}

// The calling thread's /proc/thread-self/ns/LINK.
inline long long NsInode(const char* link) { return NsInodeAt("/proc/thread-self", link); }

// Another process's (or thread's, by tid) /proc/PID/ns/LINK.
inline long long NsInodeOf(pid_t pid, const char* link) {
  return NsInodeAt("/proc/" + std::to_string(pid), link);
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

// ---------------------------------------------------------------------------------------------
// Security state

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

// The calling thread's privileges, read with system call instructions (capget, prctl,
// getresuid, setfsuid(-1)): valid inside a chroot or a foreign mount namespace, where /proc may
// be anything.
struct Privs {
  uint64_t cap_eff = 0, cap_prm = 0, cap_inh = 0;
  uint32_t uid[4] = {}, gid[4] = {};  // real, effective, saved, filesystem
  long nnp = -1, seccomp = -1;
};

inline Privs ReadPrivs() {
  Privs p;
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (InlineSyscall(SYS_capget, reinterpret_cast<long>(&hdr), reinterpret_cast<long>(d)) == 0) {
    p.cap_eff = d[0].effective | (static_cast<uint64_t>(d[1].effective) << 32);
    p.cap_prm = d[0].permitted | (static_cast<uint64_t>(d[1].permitted) << 32);
    p.cap_inh = d[0].inheritable | (static_cast<uint64_t>(d[1].inheritable) << 32);
  }
  InlineSyscall(SYS_getresuid, reinterpret_cast<long>(&p.uid[0]), reinterpret_cast<long>(&p.uid[1]),
                reinterpret_cast<long>(&p.uid[2]));
  InlineSyscall(SYS_getresgid, reinterpret_cast<long>(&p.gid[0]), reinterpret_cast<long>(&p.gid[1]),
                reinterpret_cast<long>(&p.gid[2]));
  // An invalid id changes nothing and returns the current one.
  p.uid[3] = static_cast<uint32_t>(InlineSyscall(SYS_setfsuid, -1));
  p.gid[3] = static_cast<uint32_t>(InlineSyscall(SYS_setfsgid, -1));
  p.nnp = InlineSyscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  p.seccomp = InlineSyscall(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0);
  return p;
}

inline std::string Hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

inline std::string Ids(const uint32_t (&ids)[4]) {
  return std::to_string(ids[0]) + " " + std::to_string(ids[1]) + " " + std::to_string(ids[2]) +
         " " + std::to_string(ids[3]);
}

// {"cap_eff": "hex", "cap_prm", "cap_inh", "uid": "r e s fs", "gid": ..., "nnp": N, "seccomp": N}
inline void WritePrivs(JsonWriter& w, const Privs& p) {
  w.begin_object();
  w.key("cap_eff"); w.value(Hex(p.cap_eff));
  w.key("cap_prm"); w.value(Hex(p.cap_prm));
  w.key("cap_inh"); w.value(Hex(p.cap_inh));
  w.key("uid"); w.value(Ids(p.uid));
  w.key("gid"); w.value(Ids(p.gid));
  w.key("nnp"); w.value(p.nnp);
  w.key("seccomp"); w.value(p.seccomp);
  w.end_object();
}

// Sets the calling thread's capability sets (capset(2) through libc's syscall(), which the
// library sees, or through the instruction, which it does not).
inline bool SetCaps(uint64_t eff, uint64_t prm, uint64_t inh, bool inline_insn) {
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  d[0].effective = static_cast<uint32_t>(eff);
  d[1].effective = static_cast<uint32_t>(eff >> 32);
  d[0].permitted = static_cast<uint32_t>(prm);
  d[1].permitted = static_cast<uint32_t>(prm >> 32);
  d[0].inheritable = static_cast<uint32_t>(inh);
  d[1].inheritable = static_cast<uint32_t>(inh >> 32);
  if (inline_insn) {
    return InlineSyscall(SYS_capset, reinterpret_cast<long>(&hdr), reinterpret_cast<long>(d)) == 0;
  }
  return syscall(SYS_capset, &hdr, d) == 0;
}

// ---------------------------------------------------------------------------------------------
// The process's threads

// Number of entries in /proc/self/task (threads of the process); -1 if it cannot be listed.
inline int CountTasks() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

// Same, without the library's own threads: the template and the spare threads it keeps, which
// carry the template's name ("pristine-..."; a thread's name is its creator's until it sets one).
inline int CountProgramTasks() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string comm = ReadFirstLine(std::string("/proc/self/task/") + e->d_name + "/comm");
    if (comm.rfind("pristine-", 0) != 0) ++n;
  }
  closedir(d);
  return n;
}

}  // namespace testapp

#endif  // PRISTINE_TESTAPPS_THREAD_STATE_H_
