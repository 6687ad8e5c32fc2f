// SPDX-License-Identifier: Apache-2.0
// Call-site reports: what the create path tells the report, and when.
// (Implementation: report.cc; written at exit when report= is set.)
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
// calling thread, before the thread is created: records the call site.
// `decision` is what the policy decided; `forwarded_ok` whether the template
// created it.
void ReportTaintedCreate(DimSet taint, Decision decision, bool forwarded_ok);

// Called once at load after the options are parsed: sets up counting and the
// exit-time writer when report= or log= asks for them.
void ReportInit();

}  // namespace pristine

#endif  // PRISTINE_SHIM_REPORT_H_
