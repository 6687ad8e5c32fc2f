// SPDX-License-Identifier: Apache-2.0
// Unit tests link the library's sources but not its dlsym wrapper (shim/dlsym.cc), which would
// interpose dlsym in the test program itself: there, libc's dlsym is simply dlsym.
#include <dlfcn.h>

#include "dlsym.h"

namespace pristine {

DlsymFn LibcDlsym() { return &dlsym; }

}  // namespace pristine
