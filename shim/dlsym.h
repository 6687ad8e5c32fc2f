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

// Whether another copy of the library came before this one in lookup order (a system-wide
// preload and an LD_PRELOAD naming another file): that copy answers the program's calls and
// lookups, and this one stands aside (lifecycle.cc). The dynamic loader answered before any
// constructor ran: with -z now it bound this library's reference to the exported
// pristine_rebase_v1 to the first definition in lookup order. Any thread; no system call.
bool AnotherCopyCameFirst();

// This copy's pristine_rebase_v1 and the first copy's, for saying which files they are.
void* ThisCopyEntry();
void* FirstCopyEntry();

}  // namespace pristine

#endif  // PRISTINE_SHIM_DLSYM_H_
