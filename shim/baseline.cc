// SPDX-License-Identifier: Apache-2.0
#include "baseline.h"

#include <sys/prctl.h>

#include <cstring>
#include <initializer_list>

#include "futex.h"
#include "raw_syscall.h"
#include "state.h"

namespace pristine {
namespace {

struct Cache {
  FutexMutex mu;
  int template_tid ABSL_GUARDED_BY(mu) = 0;
  // Until a template runs: whether threads other than the defining one may
  // differ outside the snapshot dimensions (a rebase).
  bool others_may_differ ABSL_GUARDED_BY(mu) = false;
  // The snapshot dimensions.
  uint64_t sigmask ABSL_GUARDED_BY(mu) = 0;
  char name[16] ABSL_GUARDED_BY(mu) = {};
  SchedState sched ABSL_GUARDED_BY(mu);
  bool sched_ok ABSL_GUARDED_BY(mu) = false;
  long securebits ABSL_GUARDED_BY(mu) = 0;
  // Read from the template on first need.

  uint32_t ns_valid ABSL_GUARDED_BY(mu) = 0;  // bit per namespace Dim
  uint64_t ns[kDimCount] ABSL_GUARDED_BY(mu) = {};
  bool affinity_valid ABSL_GUARDED_BY(mu) = false;
  cpu_set_t affinity ABSL_GUARDED_BY(mu) = {};
  bool security_valid ABSL_GUARDED_BY(mu) = false;
  SecurityState security ABSL_GUARDED_BY(mu);

  void ForgetValues() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ns_valid = 0;
    affinity_valid = security_valid = false;
  }
};

Cache g_cache;

// The baseline value of namespace `d`, read from the template on first need.
bool BaselineNamespace(Dim d, uint64_t* id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_cache.mu) {
  uint32_t bit = DimSet(d).bits();
  if (!(g_cache.ns_valid & bit)) {
    if (!ReadNamespaceId(g_cache.template_tid, d, &g_cache.ns[static_cast<int>(d)])) {
      return false;
    }
    g_cache.ns_valid |= bit;
  }
  *id = g_cache.ns[static_cast<int>(d)];
  return true;
}

}  // namespace

void BaselineCaptureSnapshot(OtherThreads others) {
  uint64_t mask = ReadSigmask();
  char name[16];
  ReadName(name);
  SchedState sched;
  bool sched_ok = ReadSched(0, &sched);
  long securebits = RawSyscall(SYS_prctl, PR_GET_SECUREBITS);
  FutexLock lock(&g_cache.mu);
  g_cache.securebits = securebits;
  g_cache.sigmask = mask;
  memcpy(g_cache.name, name, sizeof name);
  g_cache.sched = sched;
  g_cache.sched_ok = sched_ok;
  g_cache.template_tid = 0;
  g_cache.others_may_differ = others == OtherThreads::kMayDiffer;
  g_cache.ForgetValues();
}

void BaselineSetTemplate(int template_tid) {
  FutexLock lock(&g_cache.mu);
  g_cache.template_tid = template_tid;
  g_cache.ForgetValues();
}

void BaselineInvalidateSecurity() {
  FutexLock lock(&g_cache.mu);
  g_cache.security_valid = false;
}

void BaselineForgetAfterFork() {
  g_cache.mu.ResetAfterFork();
  FutexLock lock(&g_cache.mu);
  g_cache.template_tid = 0;
  g_cache.others_may_differ = false;
  g_cache.ForgetValues();
}

uint64_t BaselineSigmask() {
  FutexLock lock(&g_cache.mu);
  return g_cache.sigmask;
}

void BaselineName(char out[16]) {
  FutexLock lock(&g_cache.mu);
  memcpy(out, g_cache.name, 16);
}

bool BaselineSecurity(SecurityState* out) {
  FutexLock lock(&g_cache.mu);
  if (g_cache.template_tid == 0) return false;
  if (!g_cache.security_valid) {
    g_cache.security_valid = ReadSecurity(g_cache.template_tid, &g_cache.security);
  }
  if (g_cache.security_valid) *out = g_cache.security;
  return g_cache.security_valid;
}

long BaselineSecurebits() {
  FutexLock lock(&g_cache.mu);
  return g_cache.securebits;
}

void BaselineSched(int* policy, int* priority, int* nice) {
  FutexLock lock(&g_cache.mu);
  *policy = g_cache.sched.policy;
  *priority = g_cache.sched.priority;
  *nice = g_cache.sched.nice;
}

DimSet BaselineDifferences(DimSet dims, DimSet* unverified) {
  DimSet diff;
  *unverified = DimSet();
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
                          ReadSecurity(0, &self_security);
  uint64_t self_mask = dims.has(Dim::kSigmask) ? ReadSigmask() : 0;
  char self_name[16] = {};
  if (dims.has(Dim::kName)) ReadName(self_name);

  FutexLock lock(&g_cache.mu);
  if (g_cache.template_tid == 0) {
    if (g_cache.others_may_differ) *unverified = dims - kSnapshotDims;
    dims &= kSnapshotDims;
  }
  // A loop rather than ForEachDim: the thread-safety analysis does not see
  // the lock held inside a lambda.
  for (int i = 0; i < kDimCount; ++i) {
    Dim d = static_cast<Dim>(i);
    if (!(dims & kNamespaceDims).has(d)) continue;
    uint64_t base;
    if (!(self_ns_ok & DimSet(d).bits()) || !BaselineNamespace(d, &base) ||
        base != self_ns[i]) {
      diff |= d;
    }
  }
  for (Dim d : {Dim::kFs, Dim::kFiles}) {
    if (dims.has(d) && SharesWith(g_cache.template_tid, d) != 1) {
      diff |= d;
    }
  }
  if (dims.has(Dim::kAffinity)) {
    if (!g_cache.affinity_valid) {
      g_cache.affinity_valid = ReadAffinity(g_cache.template_tid, &g_cache.affinity);
    }
    if (!self_affinity_ok || !g_cache.affinity_valid ||
        !CPU_EQUAL(&self_affinity, &g_cache.affinity)) {
      diff |= Dim::kAffinity;
    }
  }
  if (dims.has(Dim::kSched) && (!self_sched_ok || !g_cache.sched_ok || !(self_sched == g_cache.sched))) {
    diff |= Dim::kSched;
  }
  if (dims.has(Dim::kSigmask) && self_mask != g_cache.sigmask) diff |= Dim::kSigmask;
  if (dims.has(Dim::kName) && memcmp(self_name, g_cache.name, 16) != 0) diff |= Dim::kName;
  DimSet security_dims = dims & (kSecurityDims - Dim::kLandlock);
  if (!security_dims.empty()) {
    if (!g_cache.security_valid) {
      g_cache.security_valid = ReadSecurity(g_cache.template_tid, &g_cache.security);
    }
    if (!self_security_ok || !g_cache.security_valid) {
      diff |= security_dims;
    } else {
      diff |= SecurityDifferences(self_security, g_cache.security) & security_dims;
    }
  }
  return diff;
}

}  // namespace pristine
