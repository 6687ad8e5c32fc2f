// SPDX-License-Identifier: Apache-2.0
#include "absl/base/attributes.h"
#include "sites.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <new>

#include "dlsym.h"
#include "futex.h"
#include "interpose.h"
#include "lazy_region.h"
#include "raw_syscall.h"

namespace pristine {
namespace {

// --- Stack capture -----------------------------------------------------------
//
// Measured here (x86_64, glibc 2.36, libunwind 1.6, a 12-frame stack):
//   dlopen("libunwind.so.8")                 ~160 us, once, at load
//   unw_backtrace, warm                       0.09 us
//   glibc backtrace(), warm                   1.3 us
// The first unw_backtrace builds libunwind's caches (~170-280 us) from memory
// (dl_iterate_phdr); it opens no file.

using BacktraceFn = int (*)(void** buffer, int size);

// Written once by StackCaptureInit on the loading thread before the program
// runs; read by any thread.
ABSL_CONST_INIT std::atomic<BacktraceFn> g_unwinder{nullptr};
ABSL_CONST_INIT std::atomic<bool> g_is_libunwind{false};

// The shim's own executable segment: frames in it are skipped.
ABSL_CONST_INIT std::atomic<uintptr_t> g_self_lo{0};
ABSL_CONST_INIT std::atomic<uintptr_t> g_self_hi{0};

int FindSelf(struct dl_phdr_info* info, size_t, void* data) {
  uintptr_t me = reinterpret_cast<uintptr_t>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    if (me >= lo && me < hi) {
      g_self_lo.store(lo, std::memory_order_relaxed);
      g_self_hi.store(hi, std::memory_order_relaxed);
      return 1;
    }
  }
  return 0;
}

bool InSelf(uintptr_t pc) {
  return pc >= g_self_lo.load(std::memory_order_relaxed) &&
         pc < g_self_hi.load(std::memory_order_relaxed);
}

// --- The tables --------------------------------------------------------------

constexpr int kSiteSlots = kMaxSites * 2;  // open addressing, load factor <= 1/2
constexpr int kChangeSlots = kMaxChanges * 2;
constexpr int kSetSlots = kMaxOriginSets * 2;

struct OriginSet {
  uint64_t hash;
  uint16_t change[kDimCount];  // change index + 1 per dimension, 0 none
};

struct Tables {
  FutexMutex mu;
  int nsites ABSL_GUARDED_BY(mu) = 0;
  int nchanges ABSL_GUARDED_BY(mu) = 0;
  int nsets ABSL_GUARDED_BY(mu) = 0;
  // Zero in fresh anonymous memory (no initializers: see sites.h).
  uint16_t site_slot[kSiteSlots] ABSL_GUARDED_BY(mu);  // index + 1; 0 = empty
  uint16_t change_slot[kChangeSlots] ABSL_GUARDED_BY(mu);
  uint16_t set_slot[kSetSlots] ABSL_GUARDED_BY(mu);
  Site sites[kMaxSites] ABSL_GUARDED_BY(mu);
  Change changes[kMaxChanges] ABSL_GUARDED_BY(mu);
  OriginSet sets[kMaxOriginSets] ABSL_GUARDED_BY(mu);
};

ABSL_CONST_INIT LazyRegion<Tables> g_tables;
ABSL_CONST_INIT std::atomic<uint64_t> g_sites_dropped{0};
ABSL_CONST_INIT std::atomic<uint64_t> g_changes_dropped{0};

// FNV-1a, 64-bit.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void Mix(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (i * 8)) & 0xff;
      h *= 1099511628211ull;
    }
  }
};

void MixStack(Hasher* h, const SiteStack& s) {
  for (int i = 0; i < s.depth; ++i) h->Mix(s.pc[i]);
  h->Mix(static_cast<uint64_t>(s.depth));
}

bool SameStack(const SiteStack& a, const SiteStack& b) {
  return a.depth == b.depth &&
         memcmp(a.pc, b.pc, sizeof(uintptr_t) * static_cast<size_t>(a.depth)) == 0;
}

void ReadThreadName(char out[16]) {
  memset(out, 0, 16);
  RawSyscall(SYS_prctl, 16 /* PR_GET_NAME */, out);
  out[15] = '\0';
}

}  // namespace

void StackCaptureInit() {
  LIBC(dl_iterate_phdr)(FindSelf, reinterpret_cast<void*>(&CaptureStack));
  BacktraceFn fn = nullptr;
  // RTLD_LOCAL: libunwind's own backtrace and _Unwind_* must not interpose on
  // the host's.
  void* h = LIBC(dlopen)("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (h != nullptr) fn = reinterpret_cast<BacktraceFn>(LibcDlsym()(h, "unw_backtrace"));
  g_is_libunwind.store(fn != nullptr, std::memory_order_relaxed);
  if (fn == nullptr) {
    fn = LIBC(backtrace);
    // glibc's first backtrace() loads libgcc_s: here, not on a tainted thread.
    void* one[1];
    if (fn != nullptr) fn(one, 1);
  }
  g_unwinder.store(fn, std::memory_order_release);
}

void CaptureStack(SiteStack* out) {
  out->depth = 0;
  out->entry = 0;
  BacktraceFn fn = g_unwinder.load(std::memory_order_acquire);
  if (fn == nullptr) return;
  // Room for the shim's own frames (entry point, create path, this) on top.
  void* raw[kMaxSiteFrames + 8];
  int n = fn(raw, kMaxSiteFrames + 8);
  int i = 0;
  while (i < n && InSelf(reinterpret_cast<uintptr_t>(raw[i]))) {
    out->entry = reinterpret_cast<uintptr_t>(raw[i]);
    ++i;
  }
  for (; i < n && out->depth < kMaxSiteFrames; ++i) {
    out->pc[out->depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  }
}

const char* UnwinderName() {
  if (g_unwinder.load(std::memory_order_acquire) == nullptr) return "none";
  return g_is_libunwind.load(std::memory_order_relaxed) ? "libunwind" : "backtrace";
}

// Mapped at load when a report or log asks for sites (a failed mapping: sites
// are then counted as dropped).
void TablesInit() { g_tables.Get(/*create=*/true); }

int RecordSite(const SiteStack& stack, const SiteInfo& info, bool* is_new) {
  *is_new = false;
  Hasher hasher;
  MixStack(&hasher, stack);
  hasher.Mix(static_cast<uint64_t>(info.decision));
  Tables* t = g_tables.Get(/*create=*/false);
  if (t == nullptr) {
    g_sites_dropped.fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  FutexLock lock(&t->mu);
  // The origins of the tainted dimensions, from the caller's origin set.
  uint16_t origin[kDimCount] = {};
  if (info.origin_set > 0 && info.origin_set <= static_cast<uint32_t>(t->nsets)) {
    const OriginSet& set = t->sets[info.origin_set - 1];
    ForEachDim(info.taint, [&](Dim d) {
      origin[static_cast<int>(d)] = set.change[static_cast<int>(d)];
    });
  }
  for (uint16_t o : origin) hasher.Mix(o);
  uint64_t h = hasher.h;
  for (uint32_t probe = 0; probe < kSiteSlots; ++probe) {
    uint32_t slot = static_cast<uint32_t>((h + probe) % kSiteSlots);
    uint16_t idx = t->site_slot[slot];
    if (idx == 0) {
      if (t->nsites == kMaxSites) break;
      int i = t->nsites;
      Site& site = t->sites[i];
      site = Site{};
      site.hash = h;
      site.count = 1;
      site.dims = info.taint.bits();
      site.decision = info.decision;
      site.reason = info.reason;
      memcpy(site.origin, origin, sizeof origin);
      site.stack = stack;
      t->site_slot[slot] = static_cast<uint16_t>(++t->nsites);
      *is_new = true;
      return i;
    }
    Site& site = t->sites[idx - 1];
    if (site.hash == h && site.decision == info.decision && SameStack(site.stack, stack) &&
        memcmp(site.origin, origin, sizeof origin) == 0) {
      ++site.count;
      site.dims |= info.taint.bits();
      return idx - 1;
    }
  }
  g_sites_dropped.fetch_add(1, std::memory_order_relaxed);
  return -1;
}

void CompleteSite(int index, const SiteThread& thread) {
  Tables* t = g_tables.Get(/*create=*/false);
  if (t == nullptr || index < 0) return;
  FutexLock lock(&t->mu);
  if (index < t->nsites) t->sites[index].thread = thread;
}

void UnrecordSite(int index) {
  Tables* t = g_tables.Get(/*create=*/false);
  if (t == nullptr || index < 0) return;
  FutexLock lock(&t->mu);
  if (index < t->nsites && t->sites[index].count > 0) --t->sites[index].count;
}

uint32_t RecordChange(const SiteStack& stack, DimSet dims, uint32_t origin_set) {
  Tables* t = g_tables.Get(/*create=*/false);
  if (t == nullptr || dims.empty()) return origin_set;
  Hasher ch;
  MixStack(&ch, stack);
  ch.Mix(dims.bits());
  char name[16];
  ReadThreadName(name);
  int tid = RawGettid();
  if (!t->mu.TryLock()) {
    g_changes_dropped.fetch_add(1, std::memory_order_relaxed);
    return origin_set;
  }
  uint32_t result = origin_set;
  // The change.
  int change = -1;
  for (uint32_t probe = 0; probe < kChangeSlots; ++probe) {
    uint32_t slot = static_cast<uint32_t>((ch.h + probe) % kChangeSlots);
    uint16_t idx = t->change_slot[slot];
    if (idx == 0) {
      if (t->nchanges == kMaxChanges) break;
      change = t->nchanges;
      Change& c = t->changes[change];
      c = Change{};
      c.hash = ch.h;
      c.dims = dims.bits();
      c.tid = tid;
      memcpy(c.name, name, sizeof name);
      c.stack = stack;
      t->change_slot[slot] = static_cast<uint16_t>(++t->nchanges);
      break;
    }
    Change& c = t->changes[idx - 1];
    if (c.hash == ch.h && c.dims == dims.bits() && SameStack(c.stack, stack)) {
      change = idx - 1;
      break;
    }
  }
  if (change < 0) {
    g_changes_dropped.fetch_add(1, std::memory_order_relaxed);
  } else {
    ++t->changes[change].count;
    // The thread's new origin set: its old one with `dims` now from `change`.
    OriginSet next{};
    if (origin_set > 0 && origin_set <= static_cast<uint32_t>(t->nsets)) {
      memcpy(next.change, t->sets[origin_set - 1].change, sizeof next.change);
    }
    ForEachDim(dims, [&](Dim d) { next.change[static_cast<int>(d)] = static_cast<uint16_t>(change + 1); });
    Hasher sh;
    for (uint16_t c : next.change) sh.Mix(c);
    next.hash = sh.h;
    for (uint32_t probe = 0; probe < kSetSlots; ++probe) {
      uint32_t slot = static_cast<uint32_t>((sh.h + probe) % kSetSlots);
      uint16_t idx = t->set_slot[slot];
      if (idx == 0) {
        if (t->nsets == kMaxOriginSets) break;
        t->sets[t->nsets] = next;
        t->set_slot[slot] = static_cast<uint16_t>(++t->nsets);
        result = static_cast<uint32_t>(t->nsets);
        break;
      }
      const OriginSet& s = t->sets[idx - 1];
      if (s.hash == next.hash && memcmp(s.change, next.change, sizeof next.change) == 0) {
        result = idx;
        break;
      }
    }
    if (result == origin_set) g_changes_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  t->mu.Unlock();
  return result;
}

int SnapshotSites(Site* sites, Change* changes, int* nchanges) {
  Tables* t = g_tables.Get(/*create=*/false);
  if (nchanges != nullptr) *nchanges = 0;
  if (t == nullptr) return 0;
  FutexLock lock(&t->mu);
  for (int i = 0; i < t->nsites; ++i) sites[i] = t->sites[i];
  if (changes != nullptr) {
    for (int i = 0; i < t->nchanges; ++i) changes[i] = t->changes[i];
    *nchanges = t->nchanges;
  }
  return t->nsites;
}

void MarkSitesLogged(int n) {
  Tables* t = g_tables.Get(/*create=*/false);
  if (t == nullptr) return;
  FutexLock lock(&t->mu);
  for (int i = 0; i < n && i < t->nsites; ++i) t->sites[i].logged = true;
}

uint64_t SitesDropped() { return g_sites_dropped.load(std::memory_order_relaxed); }
uint64_t ChangesDropped() { return g_changes_dropped.load(std::memory_order_relaxed); }

void ResetSitesAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_sites_dropped.store(0, std::memory_order_relaxed);
  g_changes_dropped.store(0, std::memory_order_relaxed);
  Tables* t = g_tables.Get(/*create=*/false);
  if (t == nullptr) return;
  t->mu.ResetAfterFork();
  // Changes and origin sets stay: the forking thread's taint record (and so
  // its children's) may still name them.
  t->nsites = 0;
  memset(t->site_slot, 0, sizeof t->site_slot);
}

}  // namespace pristine
