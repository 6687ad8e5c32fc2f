// SPDX-License-Identifier: Apache-2.0
// dlsym and dlvsym, interposed (dlsym.cc): a function of libc looked up through a handle
// (dlopen("libc.so.6"), ctypes.CDLL("libc.so.6"), JNA's Native.load("c")) is the library's own
// entry point for the names it interposes, so that changes made through such a handle are seen.
//
// The library itself never calls the exported dlsym: its own lookups (REAL(), libunwind) go to
// libc's, through LibcDlsym().
#ifndef PRISTINE_SHIM_DLSYM_H_
#define PRISTINE_SHIM_DLSYM_H_

namespace pristine {

using DlsymFn = void* (*)(void* handle, const char* name);

// libc's dlsym, found without calling any function (dlsym.cc, "Finding libc's dlsym"); null if
// this process has no libc.so.6 defining it (glibc older than 2.34). Any thread, any time:
// lock-free, no allocation, idempotent.
DlsymFn LibcDlsym();

}  // namespace pristine

#endif  // PRISTINE_SHIM_DLSYM_H_
