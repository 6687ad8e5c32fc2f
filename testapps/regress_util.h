// SPDX-License-Identifier: Apache-2.0
// Helpers for the regression programs of the core fixes (signal_safety, vfork_child,
// userns_after_join, inherit_private_fds, template_start, fork_stack, forged_proc,
// priv_forwarded): a hang detector for child processes, a system call made with the
// instruction itself (never through libc, so no interposer sees it), and the calling thread's
// privileges read with system calls only (valid inside a chroot or a foreign mount namespace,
// where /proc may be anything).
#ifndef PRISTINE_TESTAPPS_REGRESS_UTIL_H_
#define PRISTINE_TESTAPPS_REGRESS_UTIL_H_

#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "issue3_util.h"

namespace rg {

// A system call made with the instruction, not through libc's syscall(): what a statically
// linked part or hand-written assembly does, invisible to any LD_PRELOAD interposer.
inline long InlineSyscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                          long a5 = 0) {
  long ret;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  ret = x0;
#else
#error "x86_64 and aarch64 only"
#endif
  return ret;
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

// The calling thread's privileges, read with system calls (capget, prctl, getresuid, setfsuid(-1)).
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

}  // namespace rg

#endif  // PRISTINE_TESTAPPS_REGRESS_UTIL_H_
