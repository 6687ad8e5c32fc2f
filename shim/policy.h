// SPDX-License-Identifier: Apache-2.0
// What to do with a create, given the caller's taint, the options and what
// the caller can repair: the policy table and never-escalate (README,
// "Policy"). Pure functions.
#ifndef PRISTINE_SHIM_POLICY_H_
#define PRISTINE_SHIM_POLICY_H_

#include "dimension.h"
#include "options.h"

namespace pristine {

enum class Decision : uint8_t {
  kDirect,      // the caller creates the thread itself: nothing isolated differs
  kRepaired,    // the caller creates it, with the baseline's values carried in
                // its attributes and namespaces re-entered by the new thread
                // before any program code (inherited dimensions come for free)
  kForward,     // a thread in the baseline state (a spare or the template)
                // creates it; inherited dimensions are re-applied
  kAudited,     // would be isolated, but mode=audit: detected and reported only
  kRestricted,  // needs forwarding, but the caller carries a restriction that
                // cannot be re-applied on a forwarded thread: created directly
  kCount,
};
constexpr int kDecisionCount = static_cast<int>(Decision::kCount);

const char* DecisionName(Decision d);

// Restrictions no forwarded thread can be given: their holders are restricted.
constexpr DimSet kUnforwardableDims = DimSet(Dim::kSeccomp) | Dim::kLandlock;

// How a create is made: the decision, and for kRepaired what the attributes
// carry and what the new thread re-enters.
struct Route {
  Decision decision = Decision::kDirect;
  DimSet carry;   // kCarriedDims set to the baseline's in the attributes
  DimSet repair;  // kRepairableDims the new thread re-enters
};

// `taint`: where the caller differs from the baseline. `repairable`: the
// namespaces (of kRepairableDims) a thread created by this caller can
// re-enter (descriptors exist, the caller holds the capability). With
// `forward_all`, every create is forwarded, tainted or not (conformance
// testing: forwarding must change nothing for the program).
Route Decide(DimSet taint, const Options& options, DimSet repairable, bool forward_all);

// The dimensions a forwarded thread must get from its caller rather than from
// the template: the tainted ones the policy inherits.
DimSet DimsToReapply(DimSet taint, const Options& options);

}  // namespace pristine

#endif  // PRISTINE_SHIM_POLICY_H_
