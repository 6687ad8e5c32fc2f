// SPDX-License-Identifier: Apache-2.0
// The library's own descriptor for /proc, opened while the process is in its
// baseline: every /proc file the library reads (a thread's namespaces, status,
// the thread count) is resolved against it with openat/fstatat and a relative
// path, never against the calling thread's root. A thread that chroot()ed or
// entered a container's mount namespace sees the container's /proc (or a
// forged one) at "/proc"; through this descriptor it still reads the host's.
//
// Who may open it: OpenProcFdInBaseline, called only where the calling thread
// is known to be in the baseline's root and mount namespace (the baseline
// snapshot, before the first recorded change: lifecycle.h). Anyone may use it.
// A program may close it (closefrom(3) in a daemon) or reuse its number: every
// use verifies it is still the same /proc (device and inode), and a lost
// descriptor is never reopened from a thread that may be tainted: readers
// then answer "unknown", the safe side for every caller.
#ifndef PRISTINE_SHIM_PROC_FD_H_
#define PRISTINE_SHIM_PROC_FD_H_

namespace pristine {

// Opens the descriptor if it is not open (or no longer ours). Only on a
// thread in the baseline's root and mount namespace (see above), under the
// lifecycle lock (two openers would leak one descriptor). Not in a signal
// handler. A forked child keeps its parent's (the same /proc).
void OpenProcFdInBaseline();

// The verified descriptor, or -1 (never opened, closed by the program, or a
// different file now). One fstat. Any thread, signal handlers included.
int ProcFd();

// Moves `fd` (a descriptor the library opened) to a number at or above 512
// when the descriptor limit allows, close-on-exec, so that it does not take
// the low numbers a program may expect to get (a daemon that closes 0-2 and
// reopens them). Returns the descriptor to keep (`fd` itself if it could not
// be moved). Any thread.
int MoveToHighFd(int fd);

}  // namespace pristine

#endif  // PRISTINE_SHIM_PROC_FD_H_
