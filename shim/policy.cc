// SPDX-License-Identifier: Apache-2.0
#include "policy.h"

namespace pristine {

const char* DecisionName(Decision d) {
  switch (d) {
    case Decision::kDirect: return "direct";
    case Decision::kForward: return "forwarded";
    case Decision::kAudited: return "audit";
    case Decision::kRestricted: return "restricted";
  }
  return "?";
}

Decision Decide(DimSet taint, const Options& options) {
  if (options.mode == Mode::kOff || (taint & options.isolated).empty()) {
    return Decision::kDirect;
  }
  if (options.mode == Mode::kAudit) return Decision::kAudited;
  // Never escalate: a seccomp filter or a Landlock domain cannot be put on a
  // thread the template creates, so such a caller creates its own threads,
  // which inherit exactly what it has. Capabilities, no_new_privs and
  // credentials are re-applied on the forwarded thread (privileges.h).
  if (taint.intersects(kUnforwardableDims)) return Decision::kRestricted;
  return Decision::kForward;
}

DimSet DimsToReapply(DimSet taint, const Options& options) {
  return taint - options.isolated;
}

}  // namespace pristine
