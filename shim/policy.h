// SPDX-License-Identifier: Apache-2.0
// What to do with a create, given the caller's taint and the options
// (PRODUCT.md, "Dimensions and the default policy" and "Never escalate").
#ifndef PRISTINE_SHIM_POLICY_H_
#define PRISTINE_SHIM_POLICY_H_

#include "dimension.h"
#include "options.h"

namespace pristine {

enum class Decision : uint8_t {
  kDirect,      // the caller creates the thread itself: nothing isolated differs
  kForward,     // the template creates it; inherited dimensions are re-applied
  kAudited,     // would be forwarded, but mode=audit: detected and reported only
  kRestricted,  // would be forwarded, but the caller carries a restriction that
                // cannot be re-applied on a forwarded thread: created directly
};

const char* DecisionName(Decision d);

// Restrictions no forwarded thread can be given: their holders are restricted.
constexpr DimSet kUnforwardableDims = DimSet(Dim::kSeccomp) | Dim::kLandlock;

// Pure function of its arguments.
Decision Decide(DimSet taint, const Options& options);

// The dimensions a forwarded thread must get from its caller rather than from
// the template: the tainted ones the policy inherits.
DimSet DimsToReapply(DimSet taint, const Options& options);

}  // namespace pristine

#endif  // PRISTINE_SHIM_POLICY_H_
