// SPDX-License-Identifier: Apache-2.0
#include "policy.h"

namespace pristine {

const char* DecisionName(Decision d) {
  switch (d) {
    case Decision::kDirect: return "direct";
    case Decision::kRepaired: return "repaired";
    case Decision::kForward: return "forwarded";
    case Decision::kAudited: return "audit";
    case Decision::kRestricted: return "restricted";
    case Decision::kCount: break;
  }
  return "?";
}

Route Decide(DimSet taint, const Options& options, DimSet repairable, bool forward_all) {
  Route route;
  DimSet isolate = taint & options.isolated;
  if (options.mode == Mode::kOff || (isolate.empty() && !forward_all)) return route;
  if (options.mode == Mode::kAudit) {
    if (!isolate.empty()) route.decision = Decision::kAudited;
    return route;
  }
  bool on_caller = !forward_all && !isolate.intersects(kForwardedDims) &&
                   ((isolate & kRepairableDims) - repairable).empty();
  if (on_caller) {
    // The caller's own thread inherits its restrictions and privileges:
    // nothing to re-apply, nothing to escalate.
    route.decision = Decision::kRepaired;
    route.carry = isolate & kCarriedDims;
    route.repair = isolate & kRepairableDims;
    return route;
  }
  // Never escalate: a seccomp filter or a Landlock domain cannot be put on a
  // thread the template creates, so such a caller creates its own threads,
  // which inherit exactly what it has. Capabilities, no_new_privs and
  // credentials are re-applied on the forwarded thread (privileges.h).
  route.decision =
      taint.intersects(kUnforwardableDims) ? Decision::kRestricted : Decision::kForward;
  return route;
}

DimSet DimsToReapply(DimSet taint, const Options& options) {
  return taint - options.isolated;
}

}  // namespace pristine
