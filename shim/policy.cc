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
  // Never escalate: a caller whose privileges or restrictions differ from the
  // baseline keeps creating its own threads, so that they inherit exactly
  // what it has.
  if (taint.intersects(kSecurityDims)) return Decision::kRestricted;
  return Decision::kForward;
}

DimSet DimsToReapply(DimSet taint, const Options& options) {
  return taint - options.isolated;
}

}  // namespace pristine
