// SPDX-License-Identifier: Apache-2.0
// Never escalate: a forwarded thread is created by the template, with the
// template's privileges, and must end up with at most its caller's before any
// code of the program runs on it. (A thread the caller creates itself inherits
// the caller's privileges exactly and needs none of this.)
//
// The caller plans (PlanPrivileges) from its real current state, read from
// the kernel at every forwarded create whatever verify= says (a drop made
// behind the library's back is seen too); the new thread applies
// (ApplyPrivileges): capability sets become caller ∩ template (capabilities
// the caller holds above the template's are not carried over), the bounding
// set loses what the caller lacks, ambient capabilities follow, a per-thread
// uid/gid/fsuid/fsgid/groups set is re-applied, and no_new_privs is set if
// the caller has it. What cannot be re-applied this way (a seccomp filter, a
// Landlock domain, securebits other than the template's, a credential change
// the template lacks the capability for) makes the create "restricted": the
// caller creates the thread itself, inheriting everything.
#ifndef PRISTINE_SHIM_PRIVILEGES_H_
#define PRISTINE_SHIM_PRIVILEGES_H_

#include <sys/types.h>

#include <cstdint>

#include "dimension.h"
#include "thread_role.h"

namespace pristine {

constexpr int kMaxGroups = 64;

struct PrivilegePlan {
  bool apply = false;  // false: the new thread keeps the template's (the caller's equal)
  uint64_t cap_eff = 0, cap_prm = 0, cap_inh = 0, cap_amb = 0;
  uint64_t bounding_drop = 0;  // capabilities to drop from the bounding set
  bool set_creds = false;
  uint32_t uid[4] = {}, gid[4] = {};  // real, effective, saved, filesystem
  int ngroups = 0;
  gid_t groups[kMaxGroups] = {};
  bool no_new_privs = false;
};

// On the caller, for a forwarded create. Fills `plan` from the caller's
// current privileges and the template's, and returns true if a thread the
// template creates can be brought down to the caller's; false if the create
// must be restricted (or the privileges cannot be read: the safe side).
bool PlanPrivileges(PrivilegePlan* plan);

// Whether the calling thread holds capability `cap` in its effective set
// (one capget). Any thread.
bool HoldsCapability(int cap);

// On a newly created thread, before the program's start routine. Returns
// false if a step failed; the thread has then dropped every capability and
// set no_new_privs, so it is still never more privileged than its caller.
bool ApplyPrivileges(const PrivilegePlan& plan) PRISTINE_REQUIRES_ROLE(kNewThreadRole);

}  // namespace pristine

#endif  // PRISTINE_SHIM_PRIVILEGES_H_
