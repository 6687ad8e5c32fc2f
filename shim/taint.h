// SPDX-License-Identifier: Apache-2.0
// Which dimensions of the calling thread differ from the baseline, at a cost
// close to nothing for a thread that never changed its state.
//
// Reading every dimension from the kernel costs about as much as creating a
// thread (eight namespace links alone ~15 us). So in verify=fast mode each
// thread keeps a record of what may have changed: the entry points that change
// per-thread state (setns, unshare, sched_setaffinity, syscall(2) forms, ...)
// mark the dimensions they touch as *pending*; the next create reads only the
// pending dimensions from the kernel and caches the result as *known*. Changes
// one thread makes to another (sched_setaffinity(tid)) and rebases advance a
// process-wide epoch that sends every thread back to the kernel once.
// verify=strict reads every dimension on every create.
//
// A thread that never changed anything has an all-zero record and current
// epochs: the create path tests that with a few loads (ThreadLooksUntainted).
#ifndef PRISTINE_SHIM_TAINT_H_
#define PRISTINE_SHIM_TAINT_H_

#include <atomic>
#include <cstdint>

#include "dimension.h"
#include "thread_role.h"

namespace pristine {

// Per-thread record. Zero-initialised TLS: a new thread starts clean, which is
// right for a thread created by a clean creator; creators that are not clean
// hand their record on (InheritedTaint / AdoptTaint).
struct ThreadTaint {
  uint32_t pending = 0;       // dims that may have changed since last verified
  uint32_t known = 0;         // dims verified to differ from the baseline
  uint32_t cross_epoch = 0;   // last g_cross_epoch verified against
  uint32_t rebase_epoch = 0;  // last g_rebase_epoch verified against
  uint32_t security_epoch = 0;  // last g_security_epoch verified against
  // Where this thread's changes came from (an origin set of sites.h, 0 none);
  // kept only when a report or log asks for it, inherited with the record.
  uint32_t origin = 0;
};

namespace taint_internal {
extern __thread ThreadTaint t_taint __attribute__((tls_model("initial-exec")));
extern std::atomic<uint32_t> g_cross_epoch;
extern std::atomic<uint32_t> g_rebase_epoch;
// Set once at load when a report or log asks where taints come from
// (report.cc): records the calling thread's change of `dims` and returns its
// new origin set. Null otherwise: NoteSelfChange then pays one load.
using SelfChangeHook = uint32_t (*)(DimSet dims, uint32_t origin);
extern std::atomic<SelfChangeHook> g_self_change_hook;
}  // namespace taint_internal

// The create path's test: true if the calling thread is known to be in the
// baseline state without asking the kernel. Any thread; a few loads.
inline bool ThreadLooksUntainted() {
  using namespace taint_internal;
  const ThreadTaint& t = t_taint;
  return (t.pending | t.known) == 0 &&
         t.cross_epoch == g_cross_epoch.load(std::memory_order_relaxed) &&
         t.rebase_epoch == g_rebase_epoch.load(std::memory_order_relaxed);
}

// The calling thread changed its own state in `dims` (after the change).
void NoteSelfChange(DimSet dims);

// The dimensions unshare(flags) changes on the calling thread.
DimSet DimsChangedByUnshare(int flags);

// The CLONE_NEW* flags setns(fd, nstype) acts on: nstype itself, or for
// nstype 0 (any) what the kernel says `fd` refers to; every namespace flag
// if it will not say.
int SetnsNamespaceFlags(int fd, int nstype);

// Some thread changed another thread's affinity, scheduling or name.
void NoteCrossThreadChange();

// The baseline changed: every thread must compare itself afresh.
void NoteRebase();

// A change of privileges reached every thread, the template included (glibc's
// set*id functions): threads that differed in privileges compare those again.
// Clean threads still equal the baseline and pay nothing.
void NoteProcessWideSecurityChange();

// The calling thread's taint: which dimensions differ from the baseline now.
// verify=fast reads only what may have changed; verify=strict reads all.
// Not on the template thread.
DimSet CurrentTaint(bool strict)
    PRISTINE_EXCLUDES_ROLE(kTemplateRole, kNewThreadRole, kSignalSafeRole);

// Whether the calling thread has recorded any change since it was last known
// to be clean (pending or known dimensions), regardless of epochs.
bool ThreadRecordedChanges();

// The dimensions in which the calling thread may differ from the baseline by
// its own record (pending or known), regardless of epochs.
DimSet ThreadRecordedDims();

// A number that changes whenever the calling thread records a change of its
// privileges or restrictions, or glibc changes every thread's: equal numbers
// mean no such change went through libc (or a libc handle) in between.
uint64_t PrivilegeChangeCount();

// Whether glibc's set*id functions changed every thread's privileges since
// the library loaded (or the process forked).
bool ProcessWideSecurityChanged();

// The record a thread created directly (not forwarded) by the calling thread
// should start with: it inherits the caller's state, so whatever the caller
// had is pending on the child too.
ThreadTaint InheritedTaint();

// Installs `t` as the calling thread's record (the first thing a new thread
// does when its creator was not clean), with current epochs.
void AdoptTaint(const ThreadTaint& t);

// The calling thread is the baseline now (it just started the template, or it
// is the only thread of a forked child): clean, current epochs.
void MarkThreadClean();

}  // namespace pristine

#endif  // PRISTINE_SHIM_TAINT_H_
