#include "report.h"

namespace pristine {
namespace report_internal {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_created{0};
}  // namespace report_internal

void ReportTaintedCreate(DimSet, Decision, bool) {}

void ReportInit() {}

}  // namespace pristine
