// SPDX-License-Identifier: Apache-2.0
// Evidence for the user: counters, call sites and where their taints came
// from, the JSON report (report=) and the new-site log lines (log=).
// (Implementation: report.cc; the schema is in the README.)
//
// When the report is written: when a new call site (or a new decision at a
// known one) appears, by a thread that may write (below), and at exit(). So a
// process killed by SIGTERM or SIGKILL, or one that crashes, leaves every site
// seen so far, with counts that may lag; no signal handler is installed.
//
// Who writes: any thread of the host but the template, whose taint holds no
// privilege or restriction (a seccomp filter could kill the process for an
// open(2); lowered credentials could fail it). Such a thread only records;
// the next thread that may write, or exit(), writes for it. Files are named
// relative to a directory opened at load (log.h, OutputDir), so a thread in
// another mount namespace or root still writes where the user asked.
#ifndef PRISTINE_SHIM_REPORT_H_
#define PRISTINE_SHIM_REPORT_H_

#include <atomic>
#include <cstdint>

#include "dimension.h"
#include "policy.h"

namespace pristine {

namespace report_internal {
extern std::atomic<bool> g_counting;  // a report or log needs figures
extern std::atomic<uint64_t> g_created;
}  // namespace report_internal

// Every create under the shim, fast path included: one relaxed load when no
// report is wanted. Any thread but the template.
inline void ReportCountCreate() {
  if (report_internal::g_counting.load(std::memory_order_relaxed)) {
    report_internal::g_created.fetch_add(1, std::memory_order_relaxed);
  }
}

// A create whose caller differs from the baseline (taint not empty), on the
// calling thread, before the thread is created (so that a process exiting
// while the create returns still counts it): records the call site.
// `decision` is what the policy decided; `as_decided` whether the create
// goes that way (false for a forward that finds no template, or a repaired
// create whose attributes could not be built: the caller's own create, in its
// state, filed as direct with the reason). Returns a handle for
// ReportForwardFellThrough. Under forward=all a clean caller's create (taint
// empty) that is not direct is counted in `forwarded` and `decisions` only.
int ReportTaintedCreate(DimSet taint, Decision decision, bool as_decided);

// A create recorded as forwarded found no template after all: takes it back;
// the caller then records it again with as_decided false.
void ReportForwardFellThrough(int handle, DimSet taint);

// Called once at load after the options are parsed, on the loading thread:
// records what descriptor 2 is, and when report= or log= asks for evidence,
// opens their directories and loads the unwinder (all in the baseline).
void ReportInit();

// The program's arguments, for the report: called by the library's load hook,
// which the dynamic loader calls with (argc, argv, envp), before anything
// else it does. Kept by reference (argv outlives the process's main).
void ReportSaveArgs(int argc, char** argv);

}  // namespace pristine

#endif  // PRISTINE_SHIM_REPORT_H_
