// SPDX-License-Identifier: Apache-2.0
#include "sites.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>

#include <atomic>
#include <cstring>

#include <sys/mman.h>

#include <new>

#include "dlsym.h"
#include "futex.h"
#include "interpose.h"
#include "raw_syscall.h"

namespace pristine {
namespace {

// --- Stack capture -----------------------------------------------------------
//
// Measured here (x86_64, glibc 2.36, libunwind 1.6, a 12-frame stack):
//   dlopen("libunwind.so.8")                 ~160 us, once
//   first unw_backtrace (builds its caches)  ~170-280 us, once
//   unw_backtrace, warm                       0.09 us
//   first glibc backtrace() (loads libgcc_s)  ~140 us, once
//   glibc backtrace(), warm                   1.3 us
//   exec of /bin/true                         ~1 ms (so loading libunwind at
//                                             start would cost ~+30%)
// Hence: libunwind, loaded at the first capture; backtrace() as the fallback.

using BacktraceFn = int (*)(void** buffer, int size);

enum UnwinderState : uint32_t { kUnresolved, kResolving, kResolved };

std::atomic<uint32_t> g_unwinder_state{kUnresolved};
std::atomic<BacktraceFn> g_unwinder{nullptr};
std::atomic<bool> g_is_libunwind{false};

// The shim's own executable segment: frames in it are skipped.
uintptr_t g_self_lo = 0;
uintptr_t g_self_hi = 0;

int FindSelf(struct dl_phdr_info* info, size_t, void* data) {
  uintptr_t me = reinterpret_cast<uintptr_t>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    if (me >= lo && me < hi) {
      g_self_lo = lo;
      g_self_hi = hi;
      return 1;
    }
  }
  return 0;
}

// Once per process, on the first thread to capture a stack. Others capture
// with glibc's backtrace() meanwhile.
void ResolveUnwinder() {
  LIBC(dl_iterate_phdr)(FindSelf, reinterpret_cast<void*>(&CaptureStack));
  BacktraceFn fn = nullptr;
  // RTLD_LOCAL: libunwind's own backtrace and _Unwind_* must not interpose on
  // the host's.
  void* h = LIBC(dlopen)("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (h != nullptr) fn = reinterpret_cast<BacktraceFn>(LibcDlsym()(h, "unw_backtrace"));
  g_is_libunwind.store(fn != nullptr, std::memory_order_relaxed);
  if (fn == nullptr) fn = LIBC(backtrace);
  g_unwinder.store(fn, std::memory_order_release);
  g_unwinder_state.store(kResolved, std::memory_order_release);
}

// --- The table ---------------------------------------------------------------

constexpr int kSlots = kMaxSites * 2;  // open addressing, load factor <= 1/2

// ~45 KB: mapped at the first recorded site rather than kept in .bss, which
// every process that preloads the shim would map at start-up (measured: a
// 100 KB .bss made the exec of /bin/true ~2% slower).
struct Table {
  FutexMutex mu;
  int n ABSL_GUARDED_BY(mu) = 0;
  uint16_t slot[kSlots] ABSL_GUARDED_BY(mu) = {};  // site index + 1; 0 = empty
  Site sites[kMaxSites] ABSL_GUARDED_BY(mu);
};

std::atomic<Table*> g_table{nullptr};
std::atomic<uint64_t> g_dropped{0};

// The table, mapped on first use if `create`; null if not mapped (or the
// mapping failed: sites are then counted as dropped).
Table* GetTable(bool create) {
  Table* t = g_table.load(std::memory_order_acquire);
  if (t != nullptr || !create) return t;
  long p = RawSyscall6(SYS_mmap, 0, sizeof(Table), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p < 0 && p > -4096) return nullptr;
  Table* fresh = new (reinterpret_cast<void*>(p)) Table;
  if (g_table.compare_exchange_strong(t, fresh, std::memory_order_acq_rel)) return fresh;
  RawSyscall(SYS_munmap, fresh, sizeof(Table));  // another thread won
  return t;
}

uint64_t HashSite(const SiteStack& s, Decision d) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the pcs and decision
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (i * 8)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  for (int i = 0; i < s.depth; ++i) mix(s.pc[i]);
  mix(static_cast<uint64_t>(d) | (static_cast<uint64_t>(s.depth) << 8));
  return h;
}

bool SameSite(const Site& a, const SiteStack& s, Decision d) {
  return a.decision == d && a.stack.depth == s.depth &&
         memcmp(a.stack.pc, s.pc, sizeof(uintptr_t) * static_cast<size_t>(s.depth)) == 0;
}

}  // namespace

void CaptureStack(SiteStack* out) {
  out->depth = 0;
  uint32_t state = g_unwinder_state.load(std::memory_order_acquire);
  if (state == kUnresolved &&
      g_unwinder_state.compare_exchange_strong(state, kResolving, std::memory_order_acq_rel)) {
    ResolveUnwinder();
  }
  BacktraceFn fn = g_unwinder.load(std::memory_order_acquire);
  if (fn == nullptr) fn = LIBC(backtrace);  // another thread is loading libunwind
  // Room for the shim's own frames (entry point, create path, this) on top.
  void* raw[kMaxSiteFrames + 8];
  int n = fn(raw, kMaxSiteFrames + 8);
  int i = 0;
  while (i < n && reinterpret_cast<uintptr_t>(raw[i]) >= g_self_lo &&
         reinterpret_cast<uintptr_t>(raw[i]) < g_self_hi) {
    ++i;
  }
  for (; i < n && out->depth < kMaxSiteFrames; ++i) {
    out->pc[out->depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  }
}

const char* UnwinderName() {
  if (g_unwinder_state.load(std::memory_order_acquire) != kResolved) return "none";
  return g_is_libunwind.load(std::memory_order_relaxed) ? "libunwind" : "backtrace";
}

bool RecordSite(const SiteStack& stack, DimSet taint, Decision decision, const char* reason) {
  uint64_t h = HashSite(stack, decision);
  Table* table = GetTable(/*create=*/true);
  if (table == nullptr) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  FutexLock lock(&table->mu);
  for (uint32_t probe = 0; probe < kSlots; ++probe) {
    uint32_t s = static_cast<uint32_t>((h + probe) % kSlots);
    uint16_t idx = table->slot[s];
    if (idx == 0) {
      if (table->n == kMaxSites) break;
      Site& site = table->sites[table->n];
      site.hash = h;
      site.count = 1;
      site.dims = taint.bits();
      site.decision = decision;
      site.reason = reason;
      site.stack = stack;
      table->slot[s] = static_cast<uint16_t>(++table->n);
      return true;
    }
    Site& site = table->sites[idx - 1];
    if (site.hash == h && SameSite(site, stack, decision)) {
      ++site.count;
      site.dims |= taint.bits();
      return false;
    }
  }
  g_dropped.fetch_add(1, std::memory_order_relaxed);
  return false;
}

int SnapshotSites(Site* out) {
  Table* table = GetTable(/*create=*/false);
  if (table == nullptr) return 0;
  FutexLock lock(&table->mu);
  for (int i = 0; i < table->n; ++i) out[i] = table->sites[i];
  return table->n;
}

uint64_t SitesDropped() { return g_dropped.load(std::memory_order_relaxed); }

void ResetSitesAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_dropped.store(0, std::memory_order_relaxed);
  Table* table = GetTable(/*create=*/false);
  if (table == nullptr) return;
  table->mu.ResetAfterFork();
  table->n = 0;
  memset(table->slot, 0, sizeof table->slot);
}

}  // namespace pristine
