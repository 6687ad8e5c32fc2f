// SPDX-License-Identifier: Apache-2.0
#include "baseline.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>

#include "absl/base/attributes.h"
#include "futex.h"
#include "lifecycle.h"
#include "proc_fd.h"
#include "raw_syscall.h"
#include "state.h"

namespace pristine {
namespace {

struct Snapshot {
  bool taken = false;
  uint64_t ns_id[kDimCount] = {};
  uint32_t ns_ok = 0;  // DimSet bits: ns_id read
  // Re-entry descriptors (kRepairableDims), -1 where none; `enterable` says
  // which of them the process holds capabilities for (owned by its own user
  // namespace).
  int ns_fd[kDimCount] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  uint32_t enterable = 0;
  cpu_set_t affinity = {};
  bool affinity_ok = false;
  char name[16] = {};
  SchedState sched;
  bool sched_ok = false;
  SecurityState security;
  bool security_ok = false;
};

struct Baseline {
  FutexMutex mu ABSL_ACQUIRED_AFTER(lifecycle_internal::g_lifecycle_mu);
  int defining_tid ABSL_GUARDED_BY(mu) = 0;
  int template_tid ABSL_GUARDED_BY(mu) = 0;
  // Whether other threads may still use the descriptors of an earlier
  // baseline (a rebase): they are then kept open.
  bool others_may_run ABSL_GUARDED_BY(mu) = false;
  Snapshot snap ABSL_GUARDED_BY(mu);
};

ABSL_CONST_INIT Baseline g_baseline;
// Outside the lock: read by signal handlers (pthread_sigmask's path).
ABSL_CONST_INIT std::atomic<uint64_t> g_sigmask{0};
// Outside the lock: read by every change (BeforeChange).
ABSL_CONST_INIT std::atomic<uint32_t> g_unenterable{0};

// Outside the lock: the re-entry descriptors and which of them can be
// entered, read by every repaired create (with several creators at once, a
// lock there would serialise them). A sequence lock: odd while the snapshot
// is replaced (under the baseline's lock); readers retry. Descriptors of an
// earlier baseline stay open while other threads run (InstallSnapshot), so a
// reader that raced a replacement and retried never used a closed one.
ABSL_CONST_INIT std::atomic<uint32_t> g_reentry_seq{0};
ABSL_CONST_INIT std::atomic<int> g_reentry_fd[kDimCount] = {};
ABSL_CONST_INIT std::atomic<uint32_t> g_enterable{0};

void PublishReentry(const Snapshot& s) {
  g_reentry_seq.fetch_add(1, std::memory_order_acq_rel);
  for (int i = 0; i < kDimCount; ++i) g_reentry_fd[i].store(s.ns_fd[i], std::memory_order_relaxed);
  g_enterable.store(s.taken ? s.enterable : 0, std::memory_order_relaxed);
  g_reentry_seq.fetch_add(1, std::memory_order_release);
}

static_assert(kDimCount == 18, "Snapshot::ns_fd lists one -1 per dimension");

// Whether the namespace behind `fd` is owned by the user namespace
// `own_userns` (an inode): then CAP_SYS_ADMIN in the process's own user
// namespace suffices to re-enter it. Owned by an ancestor (the process
// unshared a user namespace since), it cannot be re-entered.
bool OwnedBy(int fd, uint64_t own_userns) {
  long owner = RawSyscall(SYS_ioctl, fd, NS_GET_USERNS);
  if (owner < 0) return false;
  struct stat st;
  bool same = RawSyscall(SYS_fstat, owner, &st) == 0 && st.st_ino == own_userns;
  RawSyscall(SYS_close, owner);
  return same;
}

void CloseDescriptors(Snapshot* s) {
  for (int& fd : s->ns_fd) {
    if (fd >= 0) RawSyscall(SYS_close, fd);
    fd = -1;
  }
}

// The namespace `d` of the calling thread: its identity and, for a
// repairable one, a descriptor kept by the library.
void SnapshotNamespace(Dim d, int proc, uint64_t own_userns, Snapshot* s) {
  char path[48] = "thread-self/";
  strncat(path, NamespaceLeaf(d), sizeof path - strlen(path) - 1);
  if (!kRepairableDims.has(d)) {
    struct stat st;
    if (RawSyscall(SYS_newfstatat, proc, path, &st, 0) == 0) {
      s->ns_id[static_cast<int>(d)] = st.st_ino;
      s->ns_ok |= DimSet(d).bits();
    }
    return;
  }
  long fd = RawSyscall(SYS_openat, proc, path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) return;
  if (RawSyscall(SYS_fstat, fd, &st) != 0) {
    RawSyscall(SYS_close, fd);
    return;
  }
  s->ns_id[static_cast<int>(d)] = st.st_ino;
  s->ns_ok |= DimSet(d).bits();
  if (OwnedBy(static_cast<int>(fd), own_userns)) s->enterable |= DimSet(d).bits();
  s->ns_fd[static_cast<int>(d)] = MoveToHighFd(static_cast<int>(fd));
}

}  // namespace

namespace {

// Reads the snapshot from the calling thread.
void ReadSnapshot(Snapshot* fresh) {
  OpenProcFdInBaseline();
  int proc = ProcFd();
  if (proc >= 0) {
    struct stat user;
    uint64_t own_userns =
        RawSyscall(SYS_newfstatat, proc, "thread-self/ns/user", &user, 0) == 0 ? user.st_ino : 0;
    ForEachDim(kNamespaceDims, [&](Dim d) { SnapshotNamespace(d, proc, own_userns, fresh); });
  }
  fresh->affinity_ok = ReadAffinity(0, &fresh->affinity);
  ReadName(fresh->name);
  fresh->sched_ok = ReadSched(0, &fresh->sched);
  fresh->security_ok = ReadSecurity(Whose::kCallingThread, &fresh->security);
  fresh->taken = true;
}

// Installs a snapshot. Descriptors of an earlier baseline: a new thread
// created before this point may still be re-entering with one, so they are
// closed only where no other thread runs (a forked child re-capturing, the
// snapshot of a baseline defined alone); a rebase keeps them (a few
// descriptors).
void InstallSnapshot(const Snapshot& fresh) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_baseline.mu) {
  if (!g_baseline.others_may_run) CloseDescriptors(&g_baseline.snap);
  g_baseline.snap = fresh;
  PublishReentry(fresh);
  g_unenterable.store((kRepairableDims - DimSet(fresh.enterable)).bits(),
                      std::memory_order_release);
}

}  // namespace

void BaselineDefine(OtherThreads others, int tid) {
  uint64_t mask = ReadSigmask();
  Snapshot fresh;
  if (others == OtherThreads::kMayRun) ReadSnapshot(&fresh);
  FutexLock lock(&g_baseline.mu);
  g_sigmask.store(mask, std::memory_order_relaxed);
  g_baseline.defining_tid = tid;
  g_baseline.template_tid = 0;
  g_baseline.others_may_run = others == OtherThreads::kMayRun;
  if (fresh.taken) {
    InstallSnapshot(fresh);
  } else {
    g_baseline.snap.taken = false;
    g_unenterable.store(0, std::memory_order_release);
    PublishReentry(g_baseline.snap);
  }
}

void BaselineCaptureSnapshot() {
  Snapshot fresh;
  ReadSnapshot(&fresh);
  FutexLock lock(&g_baseline.mu);
  InstallSnapshot(fresh);
}

DimSet BaselineUnenterable() { return DimSet(g_unenterable.load(std::memory_order_acquire)); }

void BaselineSetTemplate(int template_tid) {
  FutexLock lock(&g_baseline.mu);
  g_baseline.template_tid = template_tid;
}

void BaselineInvalidateSecurity() {
  FutexLock lock(&g_baseline.mu);
  // The snapshot's privileges moved with every thread's; read them again
  // from the main thread's (the process's status: see ReadSecurity).
  g_baseline.snap.security_ok = ReadSecurity(Whose::kMainThread, &g_baseline.snap.security);
}

void BaselineForgetAfterFork() {
  g_baseline.mu.ResetAfterFork();
  FutexLock lock(&g_baseline.mu);
  g_baseline.template_tid = 0;
  g_baseline.others_may_run = false;
  // A writer the fork interrupted left the sequence odd: even it.
  uint32_t seq = g_reentry_seq.load(std::memory_order_relaxed);
  if (seq & 1) g_reentry_seq.store(seq + 1, std::memory_order_relaxed);
  // The descriptors are the child's copies; the next snapshot replaces them.
}

DimSet BaselineDifferences(DimSet dims) {
  DimSet diff;
  // The caller's own values first, without the lock.
  uint64_t self_ns[kDimCount] = {};
  uint32_t self_ns_ok = 0;
  ForEachDim(dims & kNamespaceDims, [&](Dim d) {
    if (ReadNamespaceId(0, d, &self_ns[static_cast<int>(d)])) self_ns_ok |= DimSet(d).bits();
  });
  cpu_set_t self_affinity;
  bool self_affinity_ok = dims.has(Dim::kAffinity) && ReadAffinity(0, &self_affinity);
  SchedState self_sched;
  bool self_sched_ok = dims.has(Dim::kSched) && ReadSched(0, &self_sched);
  SecurityState self_security;
  bool self_security_ok = dims.intersects(kSecurityDims - Dim::kLandlock) &&
                          ReadSecurity(Whose::kCallingThread, &self_security);
  uint64_t self_mask = dims.has(Dim::kSigmask) ? ReadSigmask() : 0;
  char self_name[16] = {};
  if (dims.has(Dim::kName)) ReadName(self_name);

  FutexLock lock(&g_baseline.mu);
  if (!g_baseline.snap.taken) {
    // No change recorded anywhere yet (lifecycle.h): every thread is in the
    // baseline state but for the signal mask, which is read at definition.
    if (self_mask != g_sigmask.load(std::memory_order_relaxed)) diff |= dims & Dim::kSigmask;
    return diff;
  }
  // A loop rather than ForEachDim: the thread-safety analysis does not see
  // the lock held inside a lambda.
  for (int i = 0; i < kDimCount; ++i) {
    Dim d = static_cast<Dim>(i);
    if (!(dims & kNamespaceDims).has(d)) continue;
    uint32_t bit = DimSet(d).bits();
    if (!(self_ns_ok & bit) || !(g_baseline.snap.ns_ok & bit) || g_baseline.snap.ns_id[i] != self_ns[i]) diff |= d;
  }
  int live = g_baseline.template_tid != 0 ? g_baseline.template_tid : g_baseline.defining_tid;
  ForEachDim(dims & kSharedDims, [&](Dim d) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (SharesWith(live, d) != 1) diff |= d;
  });
  if (dims.has(Dim::kAffinity) &&
      (!self_affinity_ok || !g_baseline.snap.affinity_ok || !CPU_EQUAL(&self_affinity, &g_baseline.snap.affinity))) {
    diff |= Dim::kAffinity;
  }
  if (dims.has(Dim::kSched) && (!self_sched_ok || !g_baseline.snap.sched_ok || !(self_sched == g_baseline.snap.sched))) {
    diff |= Dim::kSched;
  }
  if (dims.has(Dim::kSigmask) && self_mask != g_sigmask.load(std::memory_order_relaxed)) {
    diff |= Dim::kSigmask;
  }
  if (dims.has(Dim::kName) && memcmp(self_name, g_baseline.snap.name, 16) != 0) diff |= Dim::kName;
  DimSet security_dims = dims & (kSecurityDims - Dim::kLandlock);
  if (!security_dims.empty()) {
    if (!self_security_ok || !g_baseline.snap.security_ok) {
      diff |= security_dims;
    } else {
      diff |= SecurityDifferences(self_security, g_baseline.snap.security) & security_dims;
    }
  }
  return diff;
}

bool BaselineReentryDescriptors(DimSet dims, int fds[kDimCount]) {
  for (;;) {
    uint32_t seq = g_reentry_seq.load(std::memory_order_acquire);
    if (seq & 1) continue;  // being replaced
    // Acquire loads of the data keep the second read of the sequence after
    // them (a fence would do the same, but ThreadSanitizer does not model
    // fences).
    bool ok = (DimSet(g_enterable.load(std::memory_order_acquire)) & dims) == dims;
    for (int i = 0; ok && i < kDimCount; ++i) {
      if (dims.has(static_cast<Dim>(i))) fds[i] = g_reentry_fd[i].load(std::memory_order_acquire);
    }
    if (g_reentry_seq.load(std::memory_order_relaxed) == seq) return ok;
  }
}

bool BaselineAffinity(cpu_set_t* out) {
  FutexLock lock(&g_baseline.mu);
  if (!g_baseline.snap.taken || !g_baseline.snap.affinity_ok) return false;
  *out = g_baseline.snap.affinity;
  return true;
}

bool BaselineNamespaceId(Dim d, uint64_t* id) {
  FutexLock lock(&g_baseline.mu);
  int i = static_cast<int>(d);
  if (!g_baseline.snap.taken || !(g_baseline.snap.ns_ok & DimSet(d).bits())) return false;
  *id = g_baseline.snap.ns_id[i];
  return true;
}

uint64_t BaselineSigmask() { return g_sigmask.load(std::memory_order_relaxed); }

void BaselineName(char out[16]) {
  FutexLock lock(&g_baseline.mu);
  if (g_baseline.snap.taken) memcpy(out, g_baseline.snap.name, 16);
  else ReadName(out);  // no change recorded yet: every thread has the baseline's
}

void BaselineSched(SchedState* out) {
  FutexLock lock(&g_baseline.mu);
  if (g_baseline.snap.taken && g_baseline.snap.sched_ok) *out = g_baseline.snap.sched;
  else ReadSched(0, out);
}


}  // namespace pristine
