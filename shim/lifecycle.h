// SPDX-License-Identifier: Apache-2.0
// The library's life in its host process: load, the first change, fork,
// rebase, and when the template thread is started, stopped and started again.
//
// One state, advanced under the lifecycle lock and read without it:
//
//   state                  meaning                               next (who, when)
//   ─────────────────────  ────────────────────────────────────  ──────────────────────────────
//   kUninitialised         nothing done                          kInitialising (first caller)
//   kInitialising          options being read                    any below (the same caller)
//   kAwaitingFirstCreate   baseline=first-thread: the first      kBaselineDefined (its first
//                          create will define the baseline       create, on the creating thread)
//   kPassThrough           mode=off, another copy of the         (final)
//                          library is active, or no template
//                          could start: every call passes on
//   kBaselineDefined       the baseline is defined (its signal   kSnapshotTaken (BeforeChange,
//                          mask read); no change recorded yet    before the first change but of
//                                                                a signal mask)
//   kSnapshotTaken         the snapshot is read (baseline.h);    kTemplateRunning (BeforeChange,
//                          new threads repair themselves or      before the first change only a
//                          carry the baseline in attributes      forwarded create can isolate)
//   kTemplateRunning       the template serves forwarded         kBaselineDefined (a rebase, a
//                          creates                               single-threaded change)
//
// A forked child starts again at kBaselineDefined from its forking thread (or
// stays kAwaitingFirstCreate / kPassThrough). verify=strict, which must be
// ready for changes no entry point sees, takes the snapshot and starts the
// template when the baseline is defined. forward=all starts it at the first
// create whose caller differs at most in what the template repairs (a program
// that creates no thread stays single-threaded).
//
// The template is wanted only for what a thread the caller creates cannot
// get right by itself (policy.h: kForwardedDims, or a namespace its caller
// can no longer re-enter): a program that changes only its own namespaces of
// the re-enterable kinds, its CPU set, signal mask or privileges never gets
// one, and a single-threaded program stays single-threaded.
//
// The first change (several threads may make theirs at the same moment):
//
//   thread A (first change)           thread B (its own change, same moment)
//   ───────────────────────           ──────────────────────────────────────
//   BeforeChange: state < needed
//   lock                              BeforeChange: state < needed
//   snapshot, template (A still       lock ── waits ──────┐
//     in the baseline)                                    │
//   state = kTemplateRunning (release)                    │
//   unlock ───────────────────────────────────────────────┘ state >= needed:
//   change                                                  unlock, change
//
// Invariants, kept by BeforeChange and the transitions above:
//  1. Only a thread holding the lifecycle lock, inside BeforeChange and
//     before its own change, reads the snapshot or starts the template. Every
//     change passes BeforeChange first, and a state a change needs is reached
//     before that change: so the snapshot is read from a thread that has
//     recorded no change at all, and the template is started by a thread that
//     differs from the baseline at most in what it can repair on itself
//     (template_thread.h), which the template does before it serves.
//  2. The state advances only after what it stands for is done (the snapshot
//     read, the template running and its tid known; release, read with
//     acquire), or to kPassThrough. A thread that reads a state too early for
//     its change takes the lock and waits; one that reads a later state finds
//     everything it implies in place. So no change is made while the
//     snapshot is read or the template starts, and neither inherits one.
//  3. A thread's fs_struct and fd table are compared with a live thread that
//     shares the baseline's: the template, or before it runs the thread that
//     defined the baseline (no thread can differ in them before the template
//     runs, by 1 and 2); during a rebase, the rebasing thread, which is the
//     baseline by definition. A verdict is never made against nothing.
// Tested by testapps/first_change (K threads released at once into different
// first changes, through every entry point), the stress program's forked
// children and the property test's simultaneous steps.
#ifndef PRISTINE_SHIM_LIFECYCLE_H_
#define PRISTINE_SHIM_LIFECYCLE_H_

#include <atomic>
#include <cstdint>

#include "dimension.h"
#include "futex.h"
#include "taint.h"
#include "thread_role.h"

namespace pristine {

namespace lifecycle_internal {
enum State : uint32_t {
  kUninitialised,
  kInitialising,
  kAwaitingFirstCreate,
  kPassThrough,
  // The active states, in the order they are reached.
  kBaselineDefined,
  kSnapshotTaken,
  kTemplateRunning,
};
extern std::atomic<uint32_t> g_state;
extern std::atomic<bool> g_forward_all;  // forward=all: every create is forwarded
// forward=all or verify=strict: no create is straight (strict reads the kernel
// on every create: a change made behind the library's back leaves no record).
extern std::atomic<bool> g_no_fast_path;
// Serialises the state's transitions. The first in the library's lock order:
// the baseline's and the spare pool's locks are taken under it.
extern FutexMutex g_lifecycle_mu;
}  // namespace lifecycle_internal

// What no function of this file may run in: they take the lifecycle lock,
// wait for or start the template, and may initialise.
#define PRISTINE_LIFECYCLE_EXCLUDED \
  PRISTINE_EXCLUDES_ROLE(kTemplateRole, kSpareRole, kNewThreadRole, kSignalSafeRole)

// The create path's first test: true when the real function can be called
// right away (the library is off, or the caller is known to be clean).
inline bool CreatePassesStraightThrough() {
  using namespace lifecycle_internal;
  uint32_t state = g_state.load(std::memory_order_acquire);
  return state == kPassThrough || (state >= kBaselineDefined && ThreadLooksUntainted() &&
                                   !g_no_fast_path.load(std::memory_order_relaxed));
}

// Initialises the library if nothing did yet. Any thread but the template;
// not in a signal handler (the entry points handlers call need none).
void EnsureInitialized() PRISTINE_LIFECYCLE_EXCLUDED;

// Called by the create slow path before it looks at the caller's taint:
// initialises, and with baseline=first-thread makes the first create's caller
// the baseline. Returns false when creates must pass through.
bool PrepareForCreate() PRISTINE_LIFECYCLE_EXCLUDED;

// Whether the library is active (a baseline exists to compare with). For the
// opt-in API; reads the snapshot if no change was recorded yet.
bool BaselineAvailable() PRISTINE_LIFECYCLE_EXCLUDED;

// Called by an entry point before it changes `dims` of the calling thread
// (self) or of another thread (!self): reads the snapshot and starts the
// template first where the change needs them (see above). Not in a vfork
// child (it returns at once there), not in a signal handler (a signal mask
// change needs none of this and does not call it).
void BeforeChange(DimSet dims, bool self) PRISTINE_LIFECYCLE_EXCLUDED;

// For the changes Linux allows only in a single-threaded process: unshare
// with CLONE_NEWUSER, setns into a user or time namespace, setns into a mount
// namespace by a thread that shares its fs_struct. `dims` are what the call
// changes. Runs `change(ctx)` (a libc call returning 0 or -1 with errno); if
// it fails with EINVAL (EUSERS for a time namespace) while the library's own
// threads exist, stops them, waits until the kernel has let them go, and runs
// it once more: the second answer is the kernel's answer about the program's
// threads alone. A change that succeeded in a single-threaded process is the
// whole process's: the calling thread becomes the baseline. Returns the
// call's result.
int RunSingleThreadedChange(DimSet dims, int (*change)(void* ctx), void* ctx) PRISTINE_LIFECYCLE_EXCLUDED;

// Around glibc's set*id functions, which change every thread of the process
// (glibc broadcasts them and aborts the process if a thread disagrees), the
// library's threads included. Before: a thread that entered another
// namespace may lose what it needs to re-enter the baseline's, so the
// template must run first (started here, from the calling thread); and the
// template must be able to follow, so one whose per-thread security
// (capabilities, keep-caps, securebits) differs from the calling thread's is
// stopped for the change. Returns whether After must start it again. Not in
// a vfork child or a signal handler.
bool BeforeProcessWideCredentialChange() PRISTINE_LIFECYCLE_EXCLUDED;
void AfterProcessWideCredentialChange(bool restart) PRISTINE_LIFECYCLE_EXCLUDED;

// Whether the calling thread is the process's main thread (after a fork, the
// child's: the forking thread). A thread-pointer comparison.
bool OnMainThread();

// Makes the calling thread's state the baseline (pristine_rebase()). Not on
// the template. Returns false if the library is not active or the template
// it needs could not start (creates then pass through, with a warning).
bool RebaseToCallingThread() PRISTINE_LIFECYCLE_EXCLUDED;

}  // namespace pristine

#endif  // PRISTINE_SHIM_LIFECYCLE_H_
