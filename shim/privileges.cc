// SPDX-License-Identifier: Apache-2.0
#include "privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstring>

#include "baseline.h"
#include "options.h"
#include "taint.h"
#include "template_thread.h"
#include "raw_syscall.h"
#include "state.h"

namespace pristine {
namespace {

constexpr uint64_t Cap(int c) { return 1ull << c; }

bool SetCapSets(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  data[0].effective = static_cast<uint32_t>(eff);
  data[1].effective = static_cast<uint32_t>(eff >> 32);
  data[0].permitted = static_cast<uint32_t>(prm);
  data[1].permitted = static_cast<uint32_t>(prm >> 32);
  data[0].inheritable = static_cast<uint32_t>(inh);
  data[1].inheritable = static_cast<uint32_t>(inh >> 32);
  return RawSyscall(SYS_capset, &header, data) == 0;
}

// The fallback when a step failed: nothing left to escalate with.
void DropEverything() {
  RawSyscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  SetCapSets(0, 0, 0);
  RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

}  // namespace

namespace {

// What the kernel tells about the calling thread's privileges in three cheap
// system calls: the three capability sets, no_new_privs, the seccomp mode.
struct Fingerprint {
  uint64_t eff = 0, prm = 0, inh = 0;
  long nnp = -1, seccomp = -1;
  uint64_t changes = 0;  // PrivilegeChangeCount() when read
  bool operator==(const Fingerprint& o) const {
    return eff == o.eff && prm == o.prm && inh == o.inh && nnp == o.nnp &&
           seccomp == o.seccomp && changes == o.changes;
  }
};

bool ReadFingerprint(Fingerprint* f) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (RawSyscall(SYS_capget, &header, data) != 0) return false;
  f->eff = data[0].effective | static_cast<uint64_t>(data[1].effective) << 32;
  f->prm = data[0].permitted | static_cast<uint64_t>(data[1].permitted) << 32;
  f->inh = data[0].inheritable | static_cast<uint64_t>(data[1].inheritable) << 32;
  f->nnp = RawSyscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  f->seccomp = RawSyscall(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0);
  f->changes = PrivilegeChangeCount();
  return f->nnp >= 0 && f->seccomp >= 0;
}

// The calling thread's whole privilege state, as last read from its /proc
// status (and its securebits), and the fingerprint it had then.
struct CallerPrivileges {
  bool valid = false;
  Fingerprint fingerprint;
  SecurityState state;
  long securebits = -1;
};
__thread CallerPrivileges t_caller __attribute__((tls_model("initial-exec")));

// The calling thread's real current privileges, for a forwarded create: the
// fingerprint is read from the kernel every time, whatever verify= says, so a
// capability drop, no_new_privs or a seccomp filter made without libc is
// seen; the whole status (bounding and ambient sets, ids, groups) and the
// securebits are read again when the fingerprint changed or the thread
// recorded any privilege change since. (A bounding-set, ambient, id or
// securebits change made with an inline system call and nothing else is seen
// with verify=strict, which reads them at every create.)
bool ReadCallerPrivileges(SecurityState* out, long* securebits) {
  Fingerprint now;
  if (!ReadFingerprint(&now)) return false;
  bool strict = CurrentOptions().verify == Verify::kStrict;
  if (strict || !t_caller.valid || !(now == t_caller.fingerprint)) {
    t_caller.securebits = RawSyscall(SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0);
    t_caller.valid = t_caller.securebits >= 0 &&
                     ReadSecurity(Whose::kCallingThread, &t_caller.state);
    t_caller.fingerprint = now;
    if (!t_caller.valid) return false;
  }
  *out = t_caller.state;
  *securebits = t_caller.securebits;
  // The fingerprint is the kernel's word now, whatever the status said then.
  out->cap_eff = now.eff;
  out->cap_prm = now.prm;
  out->cap_inh = now.inh;
  out->no_new_privs = static_cast<int>(now.nnp);
  out->seccomp_mode = static_cast<int>(now.seccomp);
  return true;
}

}  // namespace

bool PlanPrivileges(PrivilegePlan* plan) {
  SecurityState caller, base;
  long securebits;
  if (!ReadCallerPrivileges(&caller, &securebits) || !TemplateSecurity(&base)) return false;
  // A seccomp filter cannot be put on another thread.
  if (caller.seccomp_mode != 0) return false;
  if (securebits != TemplateSecurebits()) return false;
  if (SecurityDifferences(caller, base).empty()) return true;  // nothing to bring down
  plan->apply = true;
  plan->cap_eff = caller.cap_eff & base.cap_eff;
  plan->cap_prm = caller.cap_prm & base.cap_prm;
  plan->cap_inh = caller.cap_inh & base.cap_inh;
  plan->cap_amb = caller.cap_amb & plan->cap_prm & plan->cap_inh;
  plan->bounding_drop = base.cap_bnd & ~caller.cap_bnd;
  if (plan->bounding_drop != 0 && !(base.cap_eff & Cap(CAP_SETPCAP))) return false;
  plan->no_new_privs = caller.no_new_privs != 0;
  bool same_creds = memcmp(caller.uid, base.uid, sizeof caller.uid) == 0 &&
                    memcmp(caller.gid, base.gid, sizeof caller.gid) == 0 &&
                    caller.groups_hash == base.groups_hash;
  if (!same_creds) {
    if ((base.cap_eff & (Cap(CAP_SETUID) | Cap(CAP_SETGID))) != (Cap(CAP_SETUID) | Cap(CAP_SETGID))) {
      return false;
    }
    // The kernel charges a new thread to its creator's real uid and enforces
    // RLIMIT_NPROC there (root and CAP_SYS_ADMIN/CAP_SYS_RESOURCE are exempt).
    // The template would be charged instead of a caller with another real
    // uid, so while a limit applies only the caller may create its threads.
    struct rlimit nproc;
    bool caller_exempt = caller.uid[0] == 0 ||
                         (caller.cap_eff & (Cap(CAP_SYS_ADMIN) | Cap(CAP_SYS_RESOURCE))) != 0;
    if (caller.uid[0] != base.uid[0] && !caller_exempt &&
        (RawSyscall(SYS_prlimit64, 0, RLIMIT_NPROC, nullptr, &nproc) != 0 ||
         nproc.rlim_cur != RLIM_INFINITY)) {
      return false;
    }
    long n = RawSyscall(SYS_getgroups, kMaxGroups, plan->groups);
    if (n < 0) return false;  // more groups than a plan holds
    plan->ngroups = static_cast<int>(n);
    memcpy(plan->uid, caller.uid, sizeof plan->uid);
    memcpy(plan->gid, caller.gid, sizeof plan->gid);
    plan->set_creds = true;
  }
  return true;
}

bool HoldsCapability(int cap) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (RawSyscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1;
}

bool ApplyPrivileges(const PrivilegePlan& plan) {
  if (!plan.apply) return true;
  bool ok = true;
  // While the baseline's capabilities are still effective: the bounding set
  // (needs CAP_SETPCAP), then the credentials (CAP_SETGID, CAP_SETUID), with
  // keep-caps on so that the permitted set survives leaving uid 0.
  for (int c = 0; c < 64 && ok; ++c) {
    if (plan.bounding_drop & Cap(c)) ok = RawSyscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0) == 0;
  }
  if (ok && plan.set_creds) {
    // setfsuid and setfsgid answer with the previous value, never an error:
    // success is read back.
    ok = RawSyscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0 &&
         RawSyscall(SYS_setgroups, plan.ngroups, plan.groups) == 0 &&
         RawSyscall(SYS_setresgid, plan.gid[0], plan.gid[1], plan.gid[2]) == 0 &&
         RawSyscall(SYS_setresuid, plan.uid[0], plan.uid[1], plan.uid[2]) == 0;
    if (ok) {
      RawSyscall(SYS_setfsgid, plan.gid[3]);
      RawSyscall(SYS_setfsuid, plan.uid[3]);
      ok = RawSyscall(SYS_setfsgid, -1) == static_cast<long>(plan.gid[3]) &&
           RawSyscall(SYS_setfsuid, -1) == static_cast<long>(plan.uid[3]);
    }
    // Securebits equal the baseline's (PlanPrivileges checked): keep-caps off.
    RawSyscall(SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  ok = ok && SetCapSets(plan.cap_eff, plan.cap_prm, plan.cap_inh);
  ok = ok && RawSyscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0;
  for (int c = 0; c < 64 && ok; ++c) {
    if (plan.cap_amb & Cap(c)) {
      ok = RawSyscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) == 0;
    }
  }
  if (ok && plan.no_new_privs) ok = RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
  if (!ok) DropEverything();
  return ok;
}

}  // namespace pristine
