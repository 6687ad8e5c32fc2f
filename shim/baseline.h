// The baseline: the state new threads get for isolated dimensions. It is the
// live state of the template thread (PRODUCT.md, "Baseline"), plus the signal
// mask and name of the thread that started the template (the template's own
// are special: all signals blocked, its own name).
//
// Values are read from the kernel lazily, the first time a comparison needs
// them, and cached until the next rebase: a process that never taints a thread
// never reads them at all.
#ifndef PRISTINE_SHIM_BASELINE_H_
#define PRISTINE_SHIM_BASELINE_H_

#include <cstdint>

#include "dimension.h"

namespace pristine {

// Adopts a new template. Called by the thread that started it, which must be
// in the baseline state itself (its signal mask and name are recorded).
void BaselineReset(int template_tid);

// Forgets cached security values after a process-wide credential change (a
// glibc setuid-family call changes every thread, the template included).
void BaselineInvalidateSecurity();

// Forked child only: no template, nothing cached.
void BaselineForgetAfterFork();

// Which of `dims` differ between the calling thread and the baseline. A value
// that cannot be read counts as different (the safe side for every policy).
// Not on the template thread. Returns only `dims` members.
DimSet BaselineDifferences(DimSet dims);

// The baseline's signal mask (glibc's internal signals excluded).
uint64_t BaselineSigmask();

// The baseline's thread name, NUL-terminated.
void BaselineName(char out[16]);

}  // namespace pristine

#endif  // PRISTINE_SHIM_BASELINE_H_
