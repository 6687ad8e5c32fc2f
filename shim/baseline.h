// SPDX-License-Identifier: Apache-2.0
// The baseline: the state new threads get for isolated dimensions
// (PRODUCT.md, "Baseline").
//
// Two sources. The snapshot dimensions (signal mask, name, scheduling) are
// copied from the thread that defines the baseline, when it does (library
// load, the first create with baseline=first-thread, a fork, a rebase): three
// cheap reads. Everything else is the live state of the template thread, read
// from the kernel by tid the first time a comparison needs it and cached until
// the next rebase: a process that never taints a thread never reads it.
//
// The template may start later than the baseline is defined, from any thread
// that has recorded no change outside the snapshot dimensions: such a thread
// is in the baseline state for every dimension the template provides.
#ifndef PRISTINE_SHIM_BASELINE_H_
#define PRISTINE_SHIM_BASELINE_H_

#include <cstdint>

#include "dimension.h"
#include "state.h"

namespace pristine {

// The dimensions copied from the defining thread rather than the template.
constexpr DimSet kSnapshotDims = DimSet(Dim::kSigmask) | Dim::kName | Dim::kSched;

// Whether threads other than the one defining the baseline may differ from it
// before the next template runs: no at load, in a forked child and wherever
// the defining thread is alone or no change was recorded yet; yes at a rebase.
enum class OtherThreads : uint8_t { kInBaseline, kMayDiffer };

// Makes the calling thread's snapshot dimensions the baseline's and forgets
// everything read from a template. The calling thread defines the baseline.
void BaselineCaptureSnapshot(OtherThreads others);

// Adopts a newly started template (its tid) as the source of the other
// dimensions. Called by the thread that started it.
void BaselineSetTemplate(int template_tid);

// Forgets cached security values after a process-wide credential change (a
// glibc setuid-family call changes every thread, the template included).
void BaselineInvalidateSecurity();

// Forked child only: no template, nothing cached.
void BaselineForgetAfterFork();

// Which of `dims` differ between the calling thread and the baseline. A value
// that cannot be read counts as different (the safe side for every policy).
// With no template running, only snapshot dimensions are compared: the
// others equal the baseline's (the template runs before any thread records a
// change of them: lifecycle.h, "The first change"), except while a rebase
// replaces the template (OtherThreads::kMayDiffer), when they are returned in
// *unverified, neither different nor equal.
// Not on the template thread. Returns only `dims` members.
DimSet BaselineDifferences(DimSet dims, DimSet* unverified);

// The baseline's signal mask (glibc's internal signals excluded).
uint64_t BaselineSigmask();

// The baseline's thread name, NUL-terminated.
void BaselineName(char out[16]);

// The baseline's capability sets, no_new_privs, seccomp mode and
// credentials, read from the template. False if unknown (no template, no /proc).
bool BaselineSecurity(SecurityState* out);

// The baseline's securebits (snapshot; prctl(PR_GET_SECUREBITS)).
long BaselineSecurebits();

// The baseline's scheduling policy, priority and nice value.
void BaselineSched(int* policy, int* priority, int* nice);

}  // namespace pristine

#endif  // PRISTINE_SHIM_BASELINE_H_
