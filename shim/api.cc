// SPDX-License-Identifier: Apache-2.0
// The opt-in API's implementations (include/pristine.h). The header's inline
// wrappers find these with dlsym(RTLD_DEFAULT, "..._v1"); the _v1 suffix lets
// a future incompatible change coexist with programs built against this one.
// Exported through exports.map; called by the host program on any of its
// threads (never by the template, which runs no program code).
#include <atomic>

#include "dimension.h"
#include "lifecycle.h"
#include "taint.h"

#define PRISTINE_API extern "C" __attribute__((visibility("default")))

namespace pristine {
namespace {

// Must match the enum in include/pristine.h (the header names the bits).
static_assert(kDimCount == 18, "update PRISTINE_DIM_* in include/pristine.h");

}  // namespace
}  // namespace pristine

// 0 on success, -1 if the shim is not active or the template could not start.
PRISTINE_API int pristine_rebase_v1(void) {
  return pristine::RebaseToCallingThread() ? 0 : -1;
}

// This copy's own definition, which no other object can interpose: a second
// copy of the library in the process finds the first copy's
// pristine_rebase_v1 under the exported name (dlsym.h, AnotherCopyCameFirst).
extern "C" __attribute__((visibility("hidden"), alias("pristine_rebase_v1"))) int
pristine_this_copy_v1(void);

// The calling thread's tainted dimensions (every dimension read from the
// kernel), or 0 when there is no baseline to compare with.
PRISTINE_API unsigned pristine_tainted_dimensions_v1(void) {
  if (!pristine::BaselineAvailable()) return 0;
  return pristine::CurrentTaint(/*strict=*/true).bits();
}

// The option key of dimension `bit_index`, or null.
PRISTINE_API const char* pristine_dimension_name_v1(unsigned bit_index) {
  if (bit_index >= static_cast<unsigned>(pristine::kDimCount)) return nullptr;
  return pristine::DimName(static_cast<pristine::Dim>(bit_index));
}
