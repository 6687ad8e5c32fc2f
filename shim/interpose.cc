// SPDX-License-Identifier: Apache-2.0
#include "interpose.h"

#include <dlfcn.h>

#include "absl/base/attributes.h"
#include "dlsym.h"

namespace pristine {
namespace interpose_internal {

ABSL_CONST_INIT RealFunctions g_real;

// Runs on an ordinary thread or in a half-initialised process (a constructor).
// Two threads resolving the same name at once store the same pointer. libc's
// dlsym, called from here: RTLD_NEXT means after this library, and the
// exported dlsym (dlsym.cc) is never involved.
void* Resolve(const char* name) {
  DlsymFn libc_dlsym = LibcDlsym();
  return libc_dlsym != nullptr ? libc_dlsym(RTLD_NEXT, name) : nullptr;
}

}  // namespace interpose_internal

}  // namespace pristine
