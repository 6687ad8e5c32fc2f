// SPDX-License-Identifier: Apache-2.0
// Call sites of tainted creates: capturing the creating call stack cheaply at
// create time, and a bounded table that aggregates creates by call stack.
// Symbolization happens later, only when a report is written (symbolize.h).
//
// How stacks are captured (measured on this machine, 12-frame stacks; see
// the comment in sites.cc for the numbers): libunwind's unw_backtrace costs
// 0.09 us per call once warm, glibc's backtrace() 1.3 us; loading libunwind
// costs ~160 us plus ~170 us for its first walk, which would be +30% on the
// exec of /bin/true if paid at every process start. So libunwind is dlopen()ed
// lazily, by the first tainted create of a process that asked for a report or
// a log; if it cannot be loaded (not installed, or the creating thread sits in
// a mount namespace without it), glibc's backtrace() is used. Nothing is
// loaded in a process that never records a site.
#ifndef PRISTINE_SHIM_SITES_H_
#define PRISTINE_SHIM_SITES_H_

#include <cstdint>

#include "dimension.h"
#include "policy.h"

namespace pristine {

constexpr int kMaxSiteFrames = 16;  // frames kept per call site
constexpr int kMaxSites = 256;      // distinct call sites per process

// A call stack: return addresses, innermost first, the shim's own frames
// removed (frame 0 is the return address in the function that called
// pthread_create, thrd_create, std::thread's constructor, ...).
struct SiteStack {
  uintptr_t pc[kMaxSiteFrames] = {};
  int depth = 0;
};

// Captures the calling thread's stack. Any thread but the template (it may
// dlopen libunwind, once per process). Never fails: an empty stack at worst.
void CaptureStack(SiteStack* out);

// Which unwinder CaptureStack uses: "libunwind", "backtrace", or "none" if no
// stack was captured yet.
const char* UnwinderName();

// One aggregated call site. `reason` is a static string (never freed).
struct Site {
  uint64_t hash = 0;
  uint64_t count = 0;
  uint32_t dims = 0;  // union of the taints seen at this site (DimSet bits)
  Decision decision = Decision::kDirect;
  const char* reason = nullptr;  // why not forwarded; null when forwarded
  SiteStack stack;
};

// Adds one create at `stack` with `decision` (sites are keyed by stack and
// decision). Returns true if this is the first create at that site, so that
// the caller logs it once. When the table is full the create is counted in
// SitesDropped() instead. Any thread but the template; takes the table lock
// for a bounded time (no allocation, no system call).
bool RecordSite(const SiteStack& stack, DimSet taint, Decision decision, const char* reason);

// Copies the table into `out` (capacity kMaxSites) under the lock; returns
// the number of sites. For the exit-time writer.
int SnapshotSites(Site* out);

// Creates that found the table full.
uint64_t SitesDropped();

// Forked child only (the forking thread is the only thread): empties the table
// and resets its lock; the child reports its own creates.
void ResetSitesAfterFork();

}  // namespace pristine

#endif  // PRISTINE_SHIM_SITES_H_
