// SPDX-License-Identifier: Apache-2.0
// Counters, the new-site log line and the exit-time JSON report.
//
// Costs: with neither report= nor log= in PRISTINE_OPTIONS nothing is counted
// (ReportCountCreate is one relaxed load) and nothing is registered. Otherwise
// every create adds to an atomic counter, and each tainted create captures its
// stack (sites.h: ~0.1 us with libunwind, loaded at the first one) and takes
// the site-table lock briefly.
#include "report.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <new>

#include "interpose.h"
#include "json_writer.h"
#include "log.h"
#include "options.h"
#include "raw_syscall.h"
#include "sites.h"
#include "symbolize.h"

namespace pristine {
namespace report_internal {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_created{0};
}  // namespace report_internal

using report_internal::g_counting;
using report_internal::g_created;

namespace {

constexpr int kDecisionCount = 4;

std::atomic<uint64_t> g_forwarded{0};
std::atomic<uint64_t> g_tainted{0};
std::atomic<uint64_t> g_per_dim[kDimCount];
std::atomic<uint64_t> g_per_decision[kDecisionCount];

bool g_log_sites = false;  // log= was given: one line per new site
// report= with a relative path made absolute against the cwd at load, so that
// a program that changes directory still writes where the user ran it.
char g_report_path[kMaxPathLen + 512];

// Why a tainted create was not forwarded (static strings: the site table
// keeps the pointers).
const char* ReasonFor(DimSet taint, Decision decision, bool forwarded_ok) {
  switch (decision) {
    case Decision::kForward:
      return forwarded_ok ? nullptr : "no template thread serves creates (pass-through)";
    case Decision::kAudited:
      return "mode=audit";
    case Decision::kRestricted:
      if (taint.has(Dim::kSeccomp)) return "seccomp filter cannot be re-applied";
      if (taint.has(Dim::kLandlock)) return "Landlock domain cannot be re-applied";
      return "caller's privileges cannot be re-applied on a forwarded thread (never escalate)";
    case Decision::kDirect:
      if (CurrentOptions().mode == Mode::kOff) return "mode=off";
      return "inherited dimensions only";
  }
  return "?";
}

// The decision a site is filed under: a forward that found no template was
// in fact a direct create.
Decision Outcome(Decision decision, bool forwarded_ok) {
  return decision == Decision::kForward && !forwarded_ok ? Decision::kDirect : decision;
}

const char* Basename(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

void AppendHex(LogLine& line, uint64_t v) {
  char buf[19] = "0x";
  int n = 0;
  char digits[16];
  do {
    digits[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  int k = 2;
  while (n > 0) buf[k++] = digits[--n];
  line.Append(buf, static_cast<size_t>(k));
}

void AppendDims(LogLine& line, DimSet dims) {
  bool first = true;
  ForEachDim(dims, [&](Dim d) {
    line << (first ? "" : ",") << DimName(d);
    first = false;
  });
}

// One line for a site seen for the first time, on the creating thread. Only
// dladdr (exported names; module+offset otherwise): reading symbol tables
// from disk on a creating thread is not cheap.
void LogNewSite(const SiteStack& stack, DimSet taint, Decision decision, const char* reason) {
  LogLine line;
  line << "pristine: new call site: " << DecisionName(decision);
  if (reason != nullptr) line << " (" << reason << ")";
  line << "; dimensions ";
  AppendDims(line, taint);
  line << "; frames";
  for (int i = 0; i < stack.depth && i < 3; ++i) {
    line << (i == 0 ? " " : " < ");
    Dl_info info;
    struct link_map* lm = nullptr;
    uintptr_t pc = stack.pc[i];
    if (LIBC(dladdr1)(reinterpret_cast<void*>(pc - 1), &info, reinterpret_cast<void**>(&lm),
                RTLD_DL_LINKMAP) == 0 || lm == nullptr) {
      AppendHex(line, pc);
      continue;
    }
    if (info.dli_sname != nullptr && info.dli_saddr != nullptr) {
      line << info.dli_sname << "+";
      AppendHex(line, pc - reinterpret_cast<uintptr_t>(info.dli_saddr));
      line << " ";
    }
    line << "(" << Basename(info.dli_fname != nullptr ? info.dli_fname : "?") << "+";
    AppendHex(line, pc - lm->l_addr);
    line << ")";
  }
  Log(line.Finish());
}

// --- The report file ---------------------------------------------------------

// PATH with every %p replaced by the pid (and %% by %). False if too long.
bool ExpandPath(const char* in, char* out, size_t cap) {
  size_t n = 0;
  for (const char* c = in; *c != '\0'; ++c) {
    char num[24];
    const char* piece = c;
    size_t len = 1;
    if (c[0] == '%' && c[1] == 'p') {
      int pid = RawGetpid();
      int d = 0;
      char rev[24];
      do {
        rev[d++] = static_cast<char>('0' + pid % 10);
        pid /= 10;
      } while (pid > 0);
      for (int i = 0; i < d; ++i) num[i] = rev[d - 1 - i];
      piece = num;
      len = static_cast<size_t>(d);
      ++c;
    } else if (c[0] == '%' && c[1] == '%') {
      ++c;
    }
    if (n + len + 1 > cap) return false;
    memcpy(out + n, piece, len);
    n += len;
  }
  out[n] = '\0';
  return true;
}

void WriteFrames(JsonWriter& w, Symbolizer& sym, const SiteStack& stack) {
  w.BeginArray();
  for (int i = 0; i < stack.depth; ++i) {
    SymbolizedFrame f;
    sym.Symbolize(stack.pc[i], &f);
    w.BeginObject();
    w.Key("function");
    if (f.function != nullptr) w.StringN(f.function, f.function_len);
    else w.Null();
    w.Key("offset");
    w.Uint(f.offset);
    w.Key("module");
    w.String(f.module);
    w.EndObject();
  }
  w.EndArray();
}

void WriteDimList(JsonWriter& w, DimSet dims) {
  w.BeginArray();
  ForEachDim(dims, [&](Dim d) { w.String(DimName(d)); });
  w.EndArray();
}

// What the exit-time writer needs (~60 KB): mapped when the report is
// written, not kept in .bss, which every process would map at start-up.
struct ExitScratch {
  Site snapshot[kMaxSites];
  Symbolizer symbolizer{/*read_files=*/true};
};

// Returns false if a write failed (disk full, ...).
bool WriteReport(int fd, const Site* sites, int nsites, Symbolizer* sym) {
  JsonWriter w(fd);
  w.BeginObject();
  w.Key("pid");
  w.Uint(static_cast<uint64_t>(RawGetpid()));
  w.Key("created");
  w.Uint(g_created.load(std::memory_order_relaxed));
  w.Key("forwarded");
  w.Uint(g_forwarded.load(std::memory_order_relaxed));
  w.Key("tainted");
  w.Uint(g_tainted.load(std::memory_order_relaxed));
  w.Key("mode");
  const Options& o = CurrentOptions();
  w.String(o.mode == Mode::kEnforce ? "enforce" : o.mode == Mode::kAudit ? "audit" : "off");
  w.Key("dimensions");
  w.BeginObject();
  for (int i = 0; i < kDimCount; ++i) {
    uint64_t n = g_per_dim[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    w.Key(DimName(static_cast<Dim>(i)));
    w.Uint(n);
  }
  w.EndObject();
  w.Key("decisions");
  w.BeginObject();
  for (int i = 0; i < kDecisionCount; ++i) {
    w.Key(DecisionName(static_cast<Decision>(i)));
    w.Uint(g_per_decision[i].load(std::memory_order_relaxed));
  }
  w.EndObject();
  w.Key("unwinder");
  w.String(UnwinderName());
  w.Key("sites_dropped");
  w.Uint(SitesDropped());
  w.Key("sites");
  w.BeginArray();
  for (int i = 0; i < nsites; ++i) {
    const Site& s = sites[i];
    w.BeginObject();
    w.Key("count");
    w.Uint(s.count);
    w.Key("dimensions");
    WriteDimList(w, DimSet(s.dims));
    w.Key("decision");
    w.String(DecisionName(s.decision));
    w.Key("reason");
    if (s.reason != nullptr) w.String(s.reason);
    else w.Null();
    w.Key("frames");
    WriteFrames(w, *sym, s.stack);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndLine();
  return w.Flush();
}

void WriteReportFile(const char* path, const char* tmp, ExitScratch* scratch, int nsites);

// Registered with atexit() by ReportInit when report= is set. Runs on the
// thread that called exit(); other threads may still be creating threads
// (their creates after the snapshot are not in the report).
void WriteReportAtExit() {
  char path[kMaxPathLen + 600];
  if (!ExpandPath(g_report_path, path, sizeof path - 32)) {
    LogRaw(2, "pristine: report path too long after %p expansion; no report written\n");
    return;
  }
  char tmp[sizeof path];
  {
    size_t n = strlen(path);
    memcpy(tmp, path, n);
    const char kSuffix[] = ".tmp.";
    memcpy(tmp + n, kSuffix, sizeof kSuffix - 1);
    n += sizeof kSuffix - 1;
    char rev[16];
    int d = 0;
    int pid = RawGetpid();
    do {
      rev[d++] = static_cast<char>('0' + pid % 10);
      pid /= 10;
    } while (pid > 0);
    while (d > 0) tmp[n++] = rev[--d];
    tmp[n] = '\0';
  }
  long mem = RawSyscall6(SYS_mmap, 0, sizeof(ExitScratch), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem < 0 && mem > -4096) {
    LogRaw(2, "pristine: out of memory writing the report\n");
    return;
  }
  ExitScratch* scratch = new (reinterpret_cast<void*>(mem)) ExitScratch;
  int nsites = SnapshotSites(scratch->snapshot);
  WriteReportFile(path, tmp, scratch, nsites);
  scratch->~ExitScratch();
  RawSyscall(SYS_munmap, mem, sizeof(ExitScratch));
}

// Writes the report to `tmp` and renames it to `path`; if `path` exists and
// is not a regular file (report=/dev/stderr, a fifo), writes to it directly:
// a rename would replace the device or fifo itself.
void WriteReportFile(const char* path, const char* tmp, ExitScratch* scratch, int nsites) {
  struct stat st;
  if (RawSyscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0 && !S_ISREG(st.st_mode)) {
    long fd = RawSyscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      WriteReport(static_cast<int>(fd), scratch->snapshot, nsites, &scratch->symbolizer);
      RawSyscall(SYS_close, fd);
    }
    return;
  }
  long fd = RawSyscall(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    LogLine line;
    line << "pristine: cannot write the report " << tmp << " (errno " << static_cast<int>(-fd)
         << ")";
    LogRaw(2, line.Finish());
    return;
  }
  bool written = WriteReport(static_cast<int>(fd), scratch->snapshot, nsites, &scratch->symbolizer);
  RawSyscall(SYS_close, fd);
  if (!written) {  // never leave a truncated report under the final name
    RawSyscall(SYS_unlink, tmp);
    LogLine line;
    line << "pristine: cannot write the report " << tmp << " (write failed)";
    LogRaw(2, line.Finish());
    return;
  }
  long r = RawSyscall(SYS_rename, tmp, path);
  if (r < 0) {
    RawSyscall(SYS_unlink, tmp);
    LogLine line;
    line << "pristine: cannot rename the report to " << path << " (errno "
         << static_cast<int>(-r) << ")";
    LogRaw(2, line.Finish());
  }
}

// Forked child, on the forking thread: the child reports its own creates.
void ResetAfterFork() {
  g_created.store(0, std::memory_order_relaxed);
  g_forwarded.store(0, std::memory_order_relaxed);
  g_tainted.store(0, std::memory_order_relaxed);
  for (auto& c : g_per_dim) c.store(0, std::memory_order_relaxed);
  for (auto& c : g_per_decision) c.store(0, std::memory_order_relaxed);
  ResetSitesAfterFork();
}

}  // namespace

void ReportTaintedCreate(DimSet taint, Decision decision, bool forwarded_ok) {
  if (!g_counting.load(std::memory_order_relaxed) || taint.empty()) return;
  Decision outcome = Outcome(decision, forwarded_ok);
  g_tainted.fetch_add(1, std::memory_order_relaxed);
  if (outcome == Decision::kForward) g_forwarded.fetch_add(1, std::memory_order_relaxed);
  g_per_decision[static_cast<int>(outcome)].fetch_add(1, std::memory_order_relaxed);
  ForEachDim(taint, [](Dim d) {
    g_per_dim[static_cast<int>(d)].fetch_add(1, std::memory_order_relaxed);
  });
  SiteStack stack;
  CaptureStack(&stack);
  const char* reason = ReasonFor(taint, decision, forwarded_ok);
  if (RecordSite(stack, taint, outcome, reason) && g_log_sites) {
    LogNewSite(stack, taint, outcome, reason);
  }
}

void ReportInit() {
  const Options& o = CurrentOptions();
  g_log_sites = o.log != LogDest::kOff && o.log_explicit;
  bool report = o.report_path[0] != '\0';
  if (!report && !g_log_sites) return;
  if (report) {
    size_t n = 0;
    if (o.report_path[0] != '/') {
      long len = RawSyscall(SYS_getcwd, g_report_path, sizeof g_report_path - kMaxPathLen - 2);
      if (len > 1) {  // the kernel's length includes the NUL
        n = static_cast<size_t>(len - 1);
        if (n > 1) g_report_path[n++] = '/';
      }
    }
    size_t plen = strlen(o.report_path);
    memcpy(g_report_path + n, o.report_path, plen + 1);
    atexit(WriteReportAtExit);
  }
  pthread_atfork(nullptr, nullptr, ResetAfterFork);
  g_counting.store(true, std::memory_order_release);
}

}  // namespace pristine
