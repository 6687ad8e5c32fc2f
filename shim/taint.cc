// SPDX-License-Identifier: Apache-2.0
#include "taint.h"

#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>

#include "absl/base/attributes.h"
#include "baseline.h"
#include "raw_syscall.h"
#include "state.h"

namespace pristine {
namespace taint_internal {

__thread ThreadTaint t_taint __attribute__((tls_model("initial-exec")));
ABSL_CONST_INIT std::atomic<uint32_t> g_cross_epoch{0};
ABSL_CONST_INIT std::atomic<uint32_t> g_rebase_epoch{0};
ABSL_CONST_INIT std::atomic<SelfChangeHook> g_self_change_hook{nullptr};

}  // namespace taint_internal

namespace {
ABSL_CONST_INIT std::atomic<uint32_t> g_security_epoch{0};
}  // namespace

using taint_internal::g_cross_epoch;
using taint_internal::g_rebase_epoch;
using taint_internal::t_taint;

namespace {

// Landlock domains cannot be read back from the kernel: a thread's Landlock
// taint is what the entry points saw, carried as known and never re-verified.
constexpr DimSet kUnverifiable = DimSet(Dim::kLandlock);

}  // namespace

namespace {
// Privilege changes the calling thread recorded (PrivilegeChangeCount).
__thread uint32_t t_privilege_changes __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace

void NoteSelfChange(DimSet dims) {
  if (dims.intersects(kSecurityDims)) ++t_privilege_changes;
  t_taint.pending |= (dims - kUnverifiable).bits();
  t_taint.known |= (dims & kUnverifiable).bits();
  taint_internal::SelfChangeHook hook =
      taint_internal::g_self_change_hook.load(std::memory_order_relaxed);
  if (hook != nullptr) t_taint.origin = hook(dims, t_taint.origin);
}

DimSet DimsChangedByUnshare(int flags) {
  DimSet dims;
  ForEachDim(kNamespaceDims, [&](Dim d) {
    if (flags & NamespaceCloneFlag(d)) dims |= d;
  });
  // A new mount namespace comes with a private fs_struct (root and cwd).
  if (flags & (CLONE_FS | CLONE_NEWNS)) dims |= Dim::kFs;
  if (flags & CLONE_FILES) dims |= Dim::kFiles;
  // A new user namespace grants a full capability set inside it.
  if (flags & CLONE_NEWUSER) dims |= DimSet(Dim::kCaps) | Dim::kCreds;
  return dims;
}

int SetnsNamespaceFlags(int fd, int nstype) {
  if (nstype != 0) return nstype;
  long type = RawSyscall(SYS_ioctl, fd, NS_GET_NSTYPE);
  if (type > 0) return static_cast<int>(type);
  // Not a namespace file: assume the worst; the next create reads the truth.
  int all = CLONE_NEWUSER;
  ForEachDim(kNamespaceDims, [&](Dim d) { all |= NamespaceCloneFlag(d); });
  return all;
}

void NoteCrossThreadChange() { g_cross_epoch.fetch_add(1, std::memory_order_relaxed); }

void NoteRebase() { g_rebase_epoch.fetch_add(1, std::memory_order_relaxed); }

void NoteProcessWideSecurityChange() {
  BaselineInvalidateSecurity();
  g_security_epoch.fetch_add(1, std::memory_order_relaxed);
}

DimSet CurrentTaint(bool strict) {
  ThreadTaint& t = t_taint;
  uint32_t cross = g_cross_epoch.load(std::memory_order_relaxed);
  uint32_t rebase = g_rebase_epoch.load(std::memory_order_relaxed);
  uint32_t security = g_security_epoch.load(std::memory_order_relaxed);
  DimSet check(t.pending);
  if (strict || t.rebase_epoch != rebase) {
    check = DimSet::All() - kUnverifiable;
  } else {
    if (t.cross_epoch != cross) check |= kCrossThreadDims;
    if (t.security_epoch != security && DimSet(t.pending | t.known).intersects(kSecurityDims)) {
      check |= kSecurityDims - kUnverifiable;
    }
  }
  if (!check.empty()) {
    DimSet diff = BaselineDifferences(check);
    t.known = ((DimSet(t.known) - check) | diff).bits();
  }
  t.pending = 0;
  t.cross_epoch = cross;
  t.rebase_epoch = rebase;
  t.security_epoch = security;
  return DimSet(t.known);
}

bool ThreadRecordedChanges() { return (t_taint.pending | t_taint.known) != 0; }

DimSet ThreadRecordedDims() { return DimSet(t_taint.pending | t_taint.known); }

uint64_t PrivilegeChangeCount() {
  return static_cast<uint64_t>(g_security_epoch.load(std::memory_order_relaxed)) << 32 |
         t_privilege_changes;
}

bool ProcessWideSecurityChanged() {
  return g_security_epoch.load(std::memory_order_relaxed) != 0;
}

ThreadTaint InheritedTaint() {
  ThreadTaint child;
  child.pending = (DimSet(t_taint.pending | t_taint.known) - kUnverifiable).bits();
  child.known = (DimSet(t_taint.known) & kUnverifiable).bits();
  child.origin = t_taint.origin;
  return child;
}

void AdoptTaint(const ThreadTaint& t) {
  t_taint.pending = t.pending;
  t_taint.known = t.known;
  t_taint.origin = t.origin;
  t_taint.cross_epoch = g_cross_epoch.load(std::memory_order_relaxed);
  t_taint.rebase_epoch = g_rebase_epoch.load(std::memory_order_relaxed);
  t_taint.security_epoch = g_security_epoch.load(std::memory_order_relaxed);
}

void MarkThreadClean() { AdoptTaint(ThreadTaint{}); }

}  // namespace pristine
