// SPDX-License-Identifier: Apache-2.0
// Never escalate (PRODUCT.md): a forwarded thread is created by the template,
// with the baseline's privileges, and must end up with at most its caller's
// before any code of the program runs on it.
//
// The caller plans (PlanPrivileges), the new thread applies (ApplyPrivileges):
// capability sets become caller ∩ baseline (raised capabilities above the
// baseline are not carried over), the bounding set loses what the caller
// lacks, ambient capabilities follow, a per-thread uid/gid/groups set with raw
// system calls is re-applied, and no_new_privs is set if the caller has it.
// What cannot be re-applied this way (a seccomp filter, a Landlock domain,
// securebits other than the baseline's, a credential change the baseline
// lacks the capability for) makes the create "restricted": the caller creates
// the thread itself, inheriting everything.
#ifndef PRISTINE_SHIM_PRIVILEGES_H_
#define PRISTINE_SHIM_PRIVILEGES_H_

#include <sys/types.h>

#include <cstdint>

#include "dimension.h"

namespace pristine {

constexpr int kMaxGroups = 64;

struct PrivilegePlan {
  bool apply = false;  // false: the new thread keeps the baseline's (caller's equal)
  uint64_t cap_eff = 0, cap_prm = 0, cap_inh = 0, cap_amb = 0;
  uint64_t bounding_drop = 0;  // capabilities to drop from the bounding set
  bool set_creds = false;
  uint32_t uid[3] = {}, gid[3] = {};  // real, effective, saved
  int ngroups = 0;
  gid_t groups[kMaxGroups] = {};
  bool no_new_privs = false;
};

// On the caller, which differs from the baseline in `taint`. Fills `plan` and
// returns true if a thread created with the baseline's privileges can be
// brought down to the caller's; false if the create must be restricted.
bool PlanPrivileges(DimSet taint, PrivilegePlan* plan);

// On a newly created thread, before the program's start routine. Returns
// false if a step failed; the thread has then dropped every capability and
// set no_new_privs, so it is still never more privileged than its caller.
bool ApplyPrivileges(const PrivilegePlan& plan);

}  // namespace pristine

#endif  // PRISTINE_SHIM_PRIVILEGES_H_
