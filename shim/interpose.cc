// SPDX-License-Identifier: Apache-2.0
#include "interpose.h"

#include <dlfcn.h>

#include "absl/base/attributes.h"

namespace pristine {
namespace interpose_internal {

ABSL_CONST_INIT RealFunctions g_real;

// Runs on an ordinary thread or in a half-initialised process (a constructor).
// Two threads resolving the same name at once store the same pointer.
void* Resolve(const char* name) { return dlsym(RTLD_NEXT, name); }

}  // namespace interpose_internal

}  // namespace pristine
