// SPDX-License-Identifier: Apache-2.0
// Call stacks and the tables that aggregate them, for reports and the log:
//
//  * sites: one per creating call stack, decision and taint origins, with a
//    count, the creating thread's id and name, and for namespaces the
//    baseline's and the thread's identifiers;
//  * changes: one per call stack of a state change the library saw (setns,
//    unshare, sched_setaffinity, capset, ...), with the dimensions it touched;
//  * origin sets: which change last touched each dimension of a thread. A
//    thread carries the index of its set in its taint record (taint.h), so a
//    thread created directly by a tainted one inherits its origins.
//
// Nothing here symbolizes: a stack is return addresses; report.cc writes them
// as module, build id and module-relative address (symbolize.h), and
// pristine-report turns those into names and lines.
//
// How stacks are captured (measured on this machine, 12-frame stacks):
// libunwind's unw_backtrace costs 0.09 us per call once warm, glibc's
// backtrace() 1.3 us. Loading either (dlopen of libunwind, or of libgcc_s by
// glibc's first backtrace) resolves paths through the calling thread's root
// and mount namespace, so it happens at load (StackCaptureInit), in the
// baseline, and only in a process that asked for a report or a log. Nothing is
// loaded later, and a thread that entered a container never loads its files.
//
// Memory: the tables (~150 KB) are mapped by TablesInit, when a report or
// log is asked for, not kept in .bss, which every process would map.
#ifndef PRISTINE_SHIM_SITES_H_
#define PRISTINE_SHIM_SITES_H_

#include <cstdint>

#include "dimension.h"
#include "policy.h"

namespace pristine {

constexpr int kMaxSiteFrames = 16;  // frames kept per stack
constexpr int kMaxSites = 256;      // distinct call sites per process
constexpr int kMaxChanges = 256;    // distinct state-changing call stacks
constexpr int kMaxOriginSets = 256;
constexpr int kNamespaceDimCount = 7;  // Dim::kNet .. Dim::kTime

// A call stack: return addresses, innermost first, the shim's own frames
// removed (frame 0 is the return address in the function that called
// pthread_create, setns, ...). `entry` is a return address inside the
// outermost frame of the shim: the exported function the program called
// ("setns", "pthread_create"), 0 if unknown.
//
// These records have no default member initializers on purpose: the tables
// live in fresh anonymous memory (already zero, which is their empty state),
// and initializing them would touch every page at load. Value-initialize
// (`SiteStack s{}`) where a zeroed one is needed.
struct SiteStack {
  uintptr_t pc[kMaxSiteFrames];
  int depth;
  uintptr_t entry;
};

// Loads the unwinder, in the baseline (the library's load, with a report or
// log asked for). Loading thread only, before the program runs.
void StackCaptureInit();

// Captures the calling thread's stack. Async-signal-safe once StackCaptureInit
// ran (libunwind's local unwinding is; nothing is loaded here). Never fails:
// an empty stack at worst (no unwinder loaded).
void CaptureStack(SiteStack* out);

// Which unwinder CaptureStack uses: "libunwind", "backtrace" or "none".
const char* UnwinderName();

// One state change seen by the entry points (origin of a taint).
struct Change {
  uint64_t hash;
  uint64_t count;
  uint32_t dims;  // what the call changed (DimSet bits)
  int tid;        // the first thread seen making it, and its name then
  char name[16];
  SiteStack stack;
};

// The thread of a site's first create.
struct SiteThread {
  int tid;
  char name[16];
  // Tainted namespaces: the thread's and the baseline's identifiers (nsfs
  // inodes), a bit per namespace Dim in ns_valid.
  uint32_t ns_valid;
  uint64_t ns_thread[kNamespaceDimCount];
  uint64_t ns_baseline[kNamespaceDimCount];
};

// One aggregated call site.
struct Site {
  uint64_t hash;
  uint64_t count;
  uint32_t dims;  // union of the taints seen at this site (DimSet bits)
  Decision decision;
  const char* reason;  // why not forwarded; static; null when forwarded
  // The change (index + 1 in the change table, 0 unknown) that made each
  // tainted dimension differ; part of the site's key.
  uint16_t origin[kDimCount];
  SiteThread thread;  // filled by CompleteSite after the first create
  bool logged;        // its log line was written
  SiteStack stack;
};

// What RecordSite needs besides the stack.
struct SiteInfo {
  DimSet taint;
  Decision decision = Decision::kDirect;
  const char* reason = nullptr;
  uint32_t origin_set = 0;  // the caller's origin set (taint.h), 0 for none
};

// Maps the tables. Once, at load, when a report or log is asked for.
void TablesInit();

// Adds one create at `stack` (sites are keyed by stack, decision and the
// origins of the tainted dimensions). Returns the site's index, or -1 when
// the table is full (counted in SitesDropped()) or not mapped. `*is_new`:
// first create there (then the caller describes its thread with
// CompleteSite). Any thread but the template; takes the table lock for a
// bounded time (no allocation, no system call).
int RecordSite(const SiteStack& stack, const SiteInfo& info, bool* is_new);
void CompleteSite(int index, const SiteThread& thread);

// Takes one create back from site `index` (a forward that found no template:
// the create is filed again under its real decision).
void UnrecordSite(int index);

// Records that the calling thread changed `dims` at `stack`; returns the new
// origin set for a thread whose set was `origin_set`. Never waits: if the
// tables are busy (a signal handler interrupted a holder), returns
// `origin_set` unchanged.
uint32_t RecordChange(const SiteStack& stack, DimSet dims, uint32_t origin_set);

// Copies the tables under the lock: sites into `sites` (capacity kMaxSites),
// changes into `changes` (capacity kMaxChanges). Returns the number of sites;
// `*nchanges` the number of changes. Null `changes` copies sites only.
int SnapshotSites(Site* sites, Change* changes, int* nchanges);

// Marks sites [0, n) as logged.
void MarkSitesLogged(int n);

// Creates that found the table full; changes that found it full or busy.
uint64_t SitesDropped();
uint64_t ChangesDropped();

// Forked child only (the forking thread is the only thread): empties the
// tables and resets their lock; the child reports its own creates.
void ResetSitesAfterFork();

}  // namespace pristine

#endif  // PRISTINE_SHIM_SITES_H_
