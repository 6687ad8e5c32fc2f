// SPDX-License-Identifier: Apache-2.0
// The baseline: the state new threads get for isolated dimensions.
//
// Most of it is a snapshot, copied from the thread that defines the baseline
// (the loading thread, a forked child's only thread, the first creator with
// baseline=first-thread, a rebasing thread), just before the first change is
// recorded anywhere (lifecycle.h): until then every thread still has it, so a
// process that changes nothing reads none of it. The snapshot holds the
// identity of every namespace, descriptors of the namespaces a thread may
// re-enter while the process is multi-threaded (net, uts, ipc, cgroup: a new
// thread repairs itself with them), the CPU affinity, name, scheduling,
// securebits and privileges. The signal mask alone is read when the baseline
// is defined (one system call), so that changing a mask, which signal
// handlers do, never waits for the snapshot.
//
// What only a live thread can answer is asked of the template (when it runs):
// whether a thread shares the baseline's fs_struct and fd table (kcmp). The
// privileges a forwarded thread starts with are the template's own
// (template_thread.h).
#ifndef PRISTINE_SHIM_BASELINE_H_
#define PRISTINE_SHIM_BASELINE_H_

#include <sched.h>

#include <cstdint>

#include "dimension.h"
#include "state.h"

namespace pristine {

// The dimensions compared with a live thread sharing the baseline's (the
// template; without one, the thread that defined the baseline): a private
// fs_struct or fd table has no identity of its own to copy.
constexpr DimSet kSharedDims = DimSet(Dim::kFs) | Dim::kFiles;

// Whether other threads may be using the library's descriptors of an earlier
// baseline (a new thread re-entering with one) when it is defined: no at
// load, in a forked child and wherever the defining thread is alone; yes at a
// rebase, which therefore keeps them open.
enum class OtherThreads : uint8_t { kNone, kMayRun };

// The calling thread (whose tid is `tid`) defines the baseline from now on:
// reads its signal mask and forgets the template. Where no other thread runs
// (kNone) the snapshot is read later, by BaselineCaptureSnapshot before the
// first recorded change; where others may (kMayRun, a rebase) it is read now
// and replaces the old one in the same step, so that no other thread ever
// finds the baseline without one. Under the lifecycle lock.
void BaselineDefine(OtherThreads others, int tid);

// Reads the snapshot from the calling thread, which must be in the baseline
// state for every dimension (lifecycle.h, "The first change"); opens the
// library's /proc descriptor (proc_fd.h) and the re-entry descriptors. Under
// the lifecycle lock, not on the template.
void BaselineCaptureSnapshot();

// Adopts a newly started template (its tid) for the live dimensions. Called
// by the thread that started it.
void BaselineSetTemplate(int template_tid);

// Reads the snapshot's privileges again after a process-wide credential
// change (a glibc setuid-family call changes every thread).
void BaselineInvalidateSecurity();

// Forked child only, on its only thread: the template did not survive; the
// child's baseline is defined afresh (lifecycle.cc).
void BaselineForgetAfterFork();

// Which of `dims` differ between the calling thread and the baseline. A value
// that cannot be read counts as different (the safe side for every policy).
// Before the snapshot is taken every thread equals the baseline. The shared
// dimensions (kSharedDims) are compared with the template, or, before one
// runs, with the thread that defined the baseline, which shares the
// baseline's fs_struct and fd table until a change of those, which starts
// the template first (lifecycle.h). Not on the template. Returns only `dims`
// members.
DimSet BaselineDifferences(DimSet dims);

// For a new thread that re-enters the baseline's namespaces `dims` (a subset
// of kRepairableDims) itself: fills fds[d] with the library's descriptor of
// each. False if one of them cannot be re-entered that way (no descriptor, or
// a namespace owned by a user namespace the process has no capabilities in).
// Any thread.
bool BaselineReentryDescriptors(DimSet dims, int fds[kDimCount]);

// The namespaces of kRepairableDims a new thread cannot re-enter (no
// descriptor, or owned by a user namespace the process has no capabilities
// in, as after unshare(CLONE_NEWUSER)): only a forwarded create isolates
// them. Empty until the snapshot is taken. Lock-free; any thread.
DimSet BaselineUnenterable();

// The baseline's identifier (nsfs inode) of namespace `d`; false if unknown
// (no snapshot yet). For reports.
bool BaselineNamespaceId(Dim d, uint64_t* id);

// The baseline's CPU affinity; false if unknown.
bool BaselineAffinity(cpu_set_t* out);

// The baseline's signal mask (glibc's internal signals excluded). Lock-free:
// safe in a signal handler.
uint64_t BaselineSigmask();

// The baseline's thread name, NUL-terminated.
void BaselineName(char out[16]);

// The baseline's scheduling policy, priority and nice value.
void BaselineSched(SchedState* out);

}  // namespace pristine

#endif  // PRISTINE_SHIM_BASELINE_H_
