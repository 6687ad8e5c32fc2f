// SPDX-License-Identifier: Apache-2.0
// The shim's life in its host process: load, first use, fork and rebase, and
// when the template thread is started, stopped and started again.
//
// The baseline is defined at library load (the loading thread: the main thread
// before main), or at the first create with baseline=first-thread, in a forked
// child (the forking thread), and at a rebase. The template that holds it
// starts lazily: just before the first change that makes some thread differ
// from the baseline outside the snapshot dimensions (baseline.h), from the
// thread about to change, which is still in the baseline state. A process that
// never changes a thread's namespaces, affinity or privileges never starts it,
// stays single-threaded if it was, and pays a few microseconds at load. With
// verify=strict, which must also catch changes no entry point sees, the
// template starts when the baseline is defined.
//
// The first change (several threads may make theirs at the same moment):
//
//   thread A (first change)           thread B (its own change, same moment)
//   ───────────────────────           ──────────────────────────────────────
//   BeforeChange: plan == kAtFirstChange
//   lock g_mu                         BeforeChange: plan == kAtFirstChange
//   snapshot (if pending)             lock g_mu ── waits ─┐
//   StartTemplate (A still baseline)                      │
//     template tid -> baseline                            │
//   plan = kSettled (release)                             │
//   unlock ───────────────────────────────────────────────┘ plan == kSettled:
//   change                                                  unlock, change
//
// Invariants, kept by BeforeChange and StartTemplateHere:
//  1. Only a thread holding g_mu, inside BeforeChange and before its own
//     change, starts the template. Every change passes BeforeChange first, so
//     that thread has recorded no change outside the snapshot dimensions, and
//     no other thread changed it (a change of another thread starts the
//     template first, from the changing thread): it is in the baseline state.
//  2. The plan leaves kAtFirstChange only after the template runs and the
//     baseline knows its tid (StartTemplateHere; release, read with acquire),
//     or when the shim passes through. A thread that reads kAtFirstChange
//     waits for g_mu; one that reads kSettled finds the template running. So
//     no change outside the snapshot dimensions is made while the template is
//     starting, and the template inherits none.
//  3. A taint verdict for a dimension outside the snapshot is cached only when
//     it was compared with a running template (baseline.h: unverified
//     dimensions stay pending). That covers the one window where the template
//     is replaced while other threads run: a rebase.
// Tested by testapps/first_change (K threads released at once into different
// first changes, through every entry point), the stress program's forked
// children and the property test's simultaneous steps.
#ifndef PRISTINE_SHIM_LIFECYCLE_H_
#define PRISTINE_SHIM_LIFECYCLE_H_

#include <atomic>
#include <cstdint>

#include "dimension.h"
#include "taint.h"

namespace pristine {

namespace lifecycle_internal {
enum State : uint32_t {
  kUninitialised,
  kInitialising,
  kActive,
  kPassThrough,
  kAwaitingFirstCreate,  // baseline=first-thread, before the first create
};
extern std::atomic<uint32_t> g_state;
}  // namespace lifecycle_internal

// The create path's first test: true when the real function can be called
// right away (the shim is off, or the caller is known to be clean).
inline bool CreatePassesStraightThrough() {
  using namespace lifecycle_internal;
  uint32_t state = g_state.load(std::memory_order_acquire);
  return state == kPassThrough || (state == kActive && ThreadLooksUntainted());
}

// Initialises the shim if nothing did yet. Any thread but the template.
void EnsureInitialized();

// Called by the create slow path before it looks at the caller's taint:
// initialises, and with baseline=first-thread makes the first create's caller
// the baseline. Returns false when creates must pass through.
bool PrepareForCreate();

// Makes sure the baseline's snapshot dimensions have been read (they are
// read lazily after load). Any thread but the template; with the snapshot
// pending no change has been recorded anywhere, so the caller is in the
// baseline state for them.
void EnsureBaselineSnapshot();

// Called by an entry point before it changes `dims` of the calling thread
// (self) or of another thread (!self): starts the template first if it is
// needed and not running.
void BeforeChange(DimSet dims, bool self);

// For the changes Linux allows only in a single-threaded process: unshare
// with CLONE_NEWUSER, setns into a user or time namespace, setns into a mount
// namespace by a thread that shares its fs_struct. Runs `change(ctx)` (a libc
// call returning 0 or -1 with errno); if it fails with EINVAL (EUSERS for a
// time namespace) only because the template and its spares are the other
// threads, stops them and runs it again. A
// change that succeeded in a single-threaded process is the whole process's:
// the calling thread becomes the baseline. Returns the call's result.
int RunSingleThreadedChange(int (*change)(void* ctx), void* ctx);

// Whether the calling thread is the process's main thread (after a fork, the
// child's: the forking thread). A thread-pointer comparison.
bool OnMainThread();

// Makes the calling thread's state the baseline and starts the template from
// it (pristine_rebase()). Not on the template. Returns false if the template
// could not start (creates then pass through, with a warning).
bool RebaseToCallingThread();

}  // namespace pristine

#endif  // PRISTINE_SHIM_LIFECYCLE_H_
