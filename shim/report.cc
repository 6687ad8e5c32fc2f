// SPDX-License-Identifier: Apache-2.0
// Counters, call sites, taint origins, the new-site log lines and the JSON
// report.
//
// Costs: with neither report= nor log= in PRISTINE_OPTIONS nothing is counted
// (ReportCountCreate is one relaxed load, NoteSelfChange one more) and nothing
// is loaded or registered; load costs one fstat (of descriptor 2, log.h).
// Otherwise load also opens the report and log directories and loads
// libunwind (sites.h); every create adds to an atomic counter; each tainted
// create and each state change the entry points see captures its stack
// (~0.1 us) and takes the table lock briefly; a new site writes the report.
#include "absl/base/attributes.h"
#include "report.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <new>

#include "baseline.h"
#include "futex.h"
#include "interpose.h"
#include "json_writer.h"
#include "log.h"
#include "options.h"
#include "raw_syscall.h"
#include "sites.h"
#include "state.h"
#include "symbolize.h"
#include "taint.h"

#ifndef PRISTINE_VERSION
#define PRISTINE_VERSION "unknown"  // set by the build from the repository
#endif

namespace pristine {
namespace report_internal {
ABSL_CONST_INIT std::atomic<bool> g_counting{false};
ABSL_CONST_INIT std::atomic<uint64_t> g_created{0};
}  // namespace report_internal

using report_internal::g_counting;
using report_internal::g_created;

namespace {

constexpr int kSchemaVersion = 2;

ABSL_CONST_INIT std::atomic<uint64_t> g_forwarded{0};
ABSL_CONST_INIT std::atomic<uint64_t> g_tainted{0};
ABSL_CONST_INIT std::atomic<uint64_t> g_per_dim[kDimCount] = {};
ABSL_CONST_INIT std::atomic<uint64_t> g_per_decision[kDecisionCount] = {};

// New sites so far, and up to which one the files are written. A thread
// that may write compares them.
ABSL_CONST_INIT std::atomic<uint64_t> g_generation{0};
ABSL_CONST_INIT std::atomic<uint64_t> g_written{0};
FutexMutex g_writer;  // one writer at a time; taken with TryLock only

ABSL_CONST_INIT std::atomic<bool> g_report_failed_said{false};

// The process's argv, as the dynamic loader passes it to constructors.
ABSL_CONST_INIT int g_argc = 0;
ABSL_CONST_INIT char** g_argv = nullptr;

enum class ReportTarget : uint8_t { kNone, kFile, kStream };

// Everything the writer needs, mapped at load when evidence is asked for (not
// .bss, which every process maps). Fixed after ReportInit except `scratch`
// (under g_writer) and `argv` (filled once, on the loading thread).
// The arrays have no initializers: fresh anonymous memory is zero, and
// initializing them would touch every page at load.
struct State {
  ReportTarget target = ReportTarget::kNone;
  int stream_fd = -1;  // report=/dev/stderr or /dev/stdout
  OutputDir dir;       // report=PATH
  bool log_sites = false;
  char exe[512];
  bool argv_copied = false;
  int argc = 0;
  char argv[4096];  // NUL-separated
  size_t argv_len = 0;
  bool options_set = false;
  char options[1024];
  struct Scratch {
    Site sites[kMaxSites];
    Change changes[kMaxChanges];
    ModuleMap modules;
  } scratch;
};

ABSL_CONST_INIT std::atomic<State*> g_state{nullptr};

// Why a tainted create was not forwarded (static strings: the site table
// keeps the pointers).
const char* ReasonFor(DimSet taint, Decision decision, bool as_decided) {
  switch (decision) {
    case Decision::kRepaired:
      return as_decided ? nullptr
                        : "the baseline could not be set up for the new thread (out of memory, or a "
                          "rebase replaced it meanwhile)";
    case Decision::kForward:
      return as_decided ? nullptr : "no template thread serves creates (pass-through)";
    case Decision::kAudited:
      return "mode=audit";
    case Decision::kRestricted:
      if (taint.has(Dim::kSeccomp)) return "seccomp filter cannot be re-applied";
      if (taint.has(Dim::kLandlock)) return "Landlock domain cannot be re-applied";
      return "caller's privileges cannot be re-applied on a forwarded thread (never escalate)";
    case Decision::kDirect:
      if (CurrentOptions().mode == Mode::kOff) return "mode=off";
      return "inherited dimensions only";
    case Decision::kCount:
      break;
  }
  return "?";
}

// The decision a site is filed under: a forward that found no template, or a
// repair that could not be set up, was in fact a direct create.
Decision Outcome(Decision decision, bool as_decided) {
  bool fell_through = decision == Decision::kForward || decision == Decision::kRepaired;
  return fell_through && !as_decided ? Decision::kDirect : decision;
}

// Whether a thread with `taint` may open and write files: not with a seccomp
// filter (an unexpected system call may kill the process), a Landlock domain
// or other privileges than the baseline's (the write could fail, or create
// files owned by another user).
bool MayWriteFrom(DimSet taint) { return !taint.intersects(kSecurityDims); }

bool ThisThreadMayWrite() {
  const ThreadTaint& t = taint_internal::t_taint;
  return MayWriteFrom(DimSet(t.pending | t.known));
}

void CopyArgv(State* s) {
  if (s->argv_copied || g_argv == nullptr) return;
  s->argv_copied = true;
  s->argc = 0;
  size_t n = 0;
  for (int i = 0; i < g_argc && g_argv[i] != nullptr; ++i) {
    size_t len = strlen(g_argv[i]);
    if (n + len + 1 > sizeof s->argv) break;
    memcpy(s->argv + n, g_argv[i], len + 1);
    n += len + 1;
    ++s->argc;
  }
  s->argv_len = n;
}


void AppendDims(LogLine& line, DimSet dims) {
  bool first = true;
  ForEachDim(dims, [&](Dim d) {
    line << (first ? "" : ",") << DimName(d);
    first = false;
  });
}

// The name of the entry point a change came in through ("setns").
const char* EntryName(uintptr_t entry) {
  if (entry == 0) return nullptr;
  Dl_info info;
  if (LIBC(dladdr1)(reinterpret_cast<void*>(entry - 1), &info, nullptr, 0) == 0) return nullptr;
  return info.dli_sname;
}

// One line for a site seen for the first time: its first frame in the
// program's own code, and where its taints came from.
void LogNewSite(const Site& site, const Change* changes, int nchanges, const ModuleMap& modules) {
  LogLine line;
  line << "pristine: new call site: " << DecisionName(site.decision);
  if (site.reason != nullptr) line << " (" << site.reason << ")";
  line << "; dimensions ";
  AppendDims(line, DimSet(site.dims));
  line << "; thread " << site.thread.tid << " (" << site.thread.name << ")";
  char frame[400];
  if (site.stack.depth > 0) {
    int i = FirstProgramFrame(modules, site.stack.pc, site.stack.depth);
    DescribeFrame(modules.Find(site.stack.pc[i]), site.stack.pc[i], frame, sizeof frame);
    line << "; created at " << frame;
  }
  // Each distinct origin once.
  uint16_t said[kDimCount];
  int nsaid = 0;
  ForEachDim(DimSet(site.dims), [&](Dim d) {
    uint16_t o = site.origin[static_cast<int>(d)];
    if (o == 0 || o > nchanges) return;
    for (int k = 0; k < nsaid; ++k) {
      if (said[k] == o) return;
    }
    said[nsaid++] = o;
    const Change& c = changes[o - 1];
    DimSet dims;
    ForEachDim(DimSet(site.dims), [&](Dim e) {
      if (site.origin[static_cast<int>(e)] == o) dims |= e;
    });
    line << "; ";
    AppendDims(line, dims);
    const char* call = EntryName(c.stack.entry);
    line << " changed by " << (call != nullptr ? call : "a call");
    if (c.stack.depth > 0) {
      int i = FirstProgramFrame(modules, c.stack.pc, c.stack.depth);
      DescribeFrame(modules.Find(c.stack.pc[i]), c.stack.pc[i], frame, sizeof frame);
      line << " at " << frame;
    }
  });
  LogAt(CurrentOptions().log_explicit ? kLogWarning : kLogDetail, line.Finish());
}

// --- The report --------------------------------------------------------------

void WriteFrames(JsonWriter& w, const ModuleMap& modules, const SiteStack& stack) {
  w.BeginArray();
  for (int i = 0; i < stack.depth; ++i) {
    const ModuleMap::Module* m = modules.Find(stack.pc[i]);
    w.BeginObject();
    w.Key("module");
    if (m != nullptr && m->path[0] != '\0') w.String(m->path);
    else w.Null();
    w.Key("build_id");
    if (m != nullptr && m->build_id[0] != '\0') w.String(m->build_id);
    else w.Null();
    // Relative to the module: an absolute address of a frame in no module
    // would only tell the address-space layout.
    w.Key("address");
    if (m != nullptr) w.Uint(stack.pc[i] - m->bias);
    else w.Null();
    w.EndObject();
  }
  w.EndArray();
}

void WriteDimList(JsonWriter& w, DimSet dims) {
  w.BeginArray();
  ForEachDim(dims, [&](Dim d) { w.String(DimName(d)); });
  w.EndArray();
}

void WriteOptions(JsonWriter& w, const State& s) {
  const Options& o = CurrentOptions();
  w.BeginObject();
  w.Key("raw");
  if (s.options_set) w.String(s.options);
  else w.Null();
  w.Key("mode");
  w.String(o.mode == Mode::kEnforce ? "enforce" : o.mode == Mode::kAudit ? "audit" : "off");
  w.Key("verify");
  w.String(o.verify == Verify::kStrict ? "strict" : "fast");
  w.Key("baseline");
  w.String(o.baseline == BaselineMode::kFirstThread ? "first-thread" : "load");
  w.Key("verbosity");
  w.Uint(static_cast<uint64_t>(o.verbosity));
  w.Key("report_empty");
  w.Bool(o.report_empty);
  w.Key("policy");
  w.BeginObject();
  for (int i = 0; i < kDimCount; ++i) {
    Dim d = static_cast<Dim>(i);
    w.Key(DimName(d));
    w.String(kSecurityDims.has(d) ? "never-escalate" : o.isolated.has(d) ? "isolate" : "inherit");
  }
  w.EndObject();
  w.EndObject();
}

void WriteSite(JsonWriter& w, const Site& s, const Change* changes, int nchanges,
               const ModuleMap& modules) {
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
  w.Key("thread");
  w.BeginObject();
  w.Key("tid");
  w.Uint(static_cast<uint64_t>(s.thread.tid));
  w.Key("name");
  w.StringN(s.thread.name, strnlen(s.thread.name, sizeof s.thread.name));
  w.EndObject();
  w.Key("namespaces");
  w.BeginObject();
  ForEachDim(DimSet(s.dims) & kNamespaceDims, [&](Dim d) {
    int i = static_cast<int>(d);
    if (!(s.thread.ns_valid & DimSet(d).bits())) return;
    w.Key(DimName(d));
    w.BeginObject();
    w.Key("thread");
    w.Uint(s.thread.ns_thread[i]);
    w.Key("baseline");
    if (s.thread.ns_baseline[i] != 0) w.Uint(s.thread.ns_baseline[i]);
    else w.Null();
    w.EndObject();
  });
  w.EndObject();
  w.Key("frames");
  WriteFrames(w, modules, s.stack);
  // Where each tainted dimension came from: one entry per change.
  w.Key("origins");
  w.BeginArray();
  uint32_t done = 0;
  ForEachDim(DimSet(s.dims), [&](Dim d) {
    uint16_t o = s.origin[static_cast<int>(d)];
    if (o == 0 || o > nchanges || (done & DimSet(d).bits())) return;
    const Change& c = changes[o - 1];
    DimSet dims;
    ForEachDim(DimSet(s.dims), [&](Dim e) {
      if (s.origin[static_cast<int>(e)] == o) dims |= e;
    });
    done |= dims.bits();
    w.BeginObject();
    w.Key("dimensions");
    WriteDimList(w, dims);
    w.Key("call");
    const char* call = EntryName(c.stack.entry);
    if (call != nullptr) w.String(call);
    else w.Null();
    w.Key("count");
    w.Uint(c.count);
    w.Key("tid");
    w.Uint(static_cast<uint64_t>(c.tid));
    w.Key("thread_name");
    w.StringN(c.name, strnlen(c.name, sizeof c.name));
    w.Key("frames");
    WriteFrames(w, modules, c.stack);
    w.EndObject();
  });
  w.EndArray();
  w.EndObject();
}

// Returns false if a write failed (disk full, ...).
bool WriteReport(int fd, const State& s, int nsites, int nchanges, bool final) {
  const State::Scratch& x = s.scratch;
  JsonWriter w(fd);
  w.BeginObject();
  w.Key("schema");
  w.Uint(kSchemaVersion);
  w.Key("version");
  w.String(PRISTINE_VERSION);
  w.Key("final");
  w.Bool(final);
  w.Key("pid");
  w.Uint(static_cast<uint64_t>(RawGetpid()));
  w.Key("ppid");
  w.Uint(static_cast<uint64_t>(RawSyscall(SYS_getppid)));
  w.Key("exe");
  if (s.exe[0] != '\0') w.String(s.exe);
  else w.Null();
  w.Key("argv");
  w.BeginArray();
  for (size_t off = 0; off < s.argv_len;) {
    size_t len = strlen(s.argv + off);
    w.StringN(s.argv + off, len);
    off += len + 1;
  }
  w.EndArray();
  w.Key("options");
  WriteOptions(w, s);
  w.Key("created");
  w.Uint(g_created.load(std::memory_order_relaxed));
  w.Key("forwarded");
  w.Uint(g_forwarded.load(std::memory_order_relaxed));
  w.Key("tainted");
  w.Uint(g_tainted.load(std::memory_order_relaxed));
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
  w.Key("changes_dropped");
  w.Uint(ChangesDropped());
  w.Key("sites");
  w.BeginArray();
  for (int i = 0; i < nsites; ++i) {
    if (x.sites[i].count == 0) continue;  // taken back (ReportForwardFellThrough)
    WriteSite(w, x.sites[i], x.changes, nchanges, x.modules);
  }
  w.EndArray();
  w.EndObject();
  w.EndLine();
  return w.Flush();
}

// The report failed to be written: said once, naming the path asked for.
void SayReportFailed(const char* path, const char* why) {
  if (g_report_failed_said.exchange(true)) return;
  LogLine line;
  line << "pristine: cannot write the report " << path << " (" << why << ")";
  LogRaw(2, line.Finish());
}

// A process that created no thread (a shell, util-linux unshare) writes no
// report unless report_empty=1 asks for one.
bool ReportWanted() {
  return CurrentOptions().report_empty || g_created.load(std::memory_order_relaxed) != 0 ||
         g_tainted.load(std::memory_order_relaxed) != 0 || SitesDropped() != 0;
}

// A name for the temporary file next to the report: unpredictable, so that
// nothing can be planted there in advance (it is created exclusively anyway).
void TempName(const char* name, char* out, size_t cap, int attempt) {
  uint64_t r = 0;
  if (RawSyscall(SYS_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */) != sizeof r) {
    r = (static_cast<uint64_t>(RawGettid()) << 32) ^ static_cast<uint64_t>(attempt) ^
        reinterpret_cast<uintptr_t>(&r);
  }
  LogLine l;  // used as a bounded string builder only
  l << "." << name << ".tmp." << RawGetpid() << ".";
  const char* s = l.Finish();
  size_t n = strlen(s) - 1;
  if (n + 17 > cap) n = cap > 17 ? cap - 17 : 0;
  memcpy(out, s, n);
  for (int i = 0; i < 16; ++i) out[n++] = "0123456789abcdef"[(r >> (4 * i)) & 15];
  out[n] = '\0';
}

// Writes the report next to PATH under a temporary name and renames it over
// PATH: a reader never sees half a report, and a kill at any moment leaves
// the previous one whole.
void WriteReportFile(State* s, int nsites, int nchanges, bool final) {
  char path[kMaxPathLen + 64];
  if (!ExpandPid(CurrentOptions().report_path, path, sizeof path)) {
    SayReportFailed(CurrentOptions().report_path, "too long after %p expansion");
    return;
  }
  if (!s->dir.Verify()) {
    // Another thread (or the exit) may still see it: only the last try says so.
    if (final) SayReportFailed(path, "its directory's descriptor was closed by the program");
    return;
  }
  char name[kMaxPathLen + 64];
  if (!ExpandPid(s->dir.name, name, sizeof name)) return;
  int dirfd = s->dir.fd;
  struct stat st;
  if (RawSyscall(SYS_newfstatat, dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      SayReportFailed(path, ErrorText(EISDIR));
      return;
    }
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
      SayReportFailed(path, "exists and is not a regular file");
      return;
    }
  }
  char tmp[kMaxPathLen + 96];
  long fd = -EEXIST;
  for (int attempt = 0; attempt < 4 && fd == -EEXIST; ++attempt) {
    TempName(name, tmp, sizeof tmp, attempt);
    fd = RawSyscall(SYS_openat, dirfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                    0600);
  }
  if (fd < 0) {
    SayReportFailed(path, ErrorText(static_cast<int>(-fd)));
    return;
  }
  bool written = WriteReport(static_cast<int>(fd), *s, nsites, nchanges, final);
  RawSyscall(SYS_close, fd);
  if (!written) {  // never leave a truncated report under the final name
    RawSyscall(SYS_unlinkat, dirfd, tmp, 0);
    SayReportFailed(path, "write failed");
    return;
  }
  long r = RawSyscall(SYS_renameat, dirfd, tmp, dirfd, name);
  if (r < 0) {
    RawSyscall(SYS_unlinkat, dirfd, tmp, 0);
    SayReportFailed(path, ErrorText(static_cast<int>(-r)));
    return;
  }
  if (LogWants(kLogDetail)) {
    LogLine line;
    line << "pristine: report " << (final ? "written" : "updated") << ": " << path;
    LogAt(kLogDetail, line.Finish());
  }
}

// Brings the log and the report up to date: logs the sites not logged yet and
// rewrites the report. `final`: at exit (streams are written then only).
// Never waits for another writer except at exit, boundedly. (The analysis
// cannot follow a lock held according to a TryLock result across a loop.)
void Flush(bool final) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  State* s = g_state.load(std::memory_order_acquire);
  if (s == nullptr) return;
  bool locked = g_writer.TryLock();
  // At exit, let a writer in progress finish (it writes an older state).
  for (int spins = 0; !locked && final && spins < 100000; ++spins) {
    RawSyscall(SYS_sched_yield);
    locked = g_writer.TryLock();
  }
  while (locked) {
    uint64_t generation = g_generation.load(std::memory_order_acquire);
    int nchanges = 0;
    int nsites = SnapshotSites(s->scratch.sites, s->scratch.changes, &nchanges);
    s->scratch.modules.Load(s->exe);
    if (s->log_sites) {
      for (int i = 0; i < nsites; ++i) {
        if (!s->scratch.sites[i].logged && s->scratch.sites[i].count != 0) {
          LogNewSite(s->scratch.sites[i], s->scratch.changes, nchanges, s->scratch.modules);
        }
      }
      MarkSitesLogged(nsites);
    }
    if (s->target == ReportTarget::kFile && ReportWanted()) {
      WriteReportFile(s, nsites, nchanges, final);
    } else if (s->target == ReportTarget::kStream && final && ReportWanted() &&
               StreamIsOurs(s->stream_fd)) {
      WriteReport(s->stream_fd, *s, nsites, nchanges, final);
    }
    g_written.store(generation, std::memory_order_release);
    g_writer.Unlock();
    // A site recorded while we wrote found the lock taken: write it now.
    locked = !final && g_generation.load(std::memory_order_acquire) != generation &&
             g_writer.TryLock();
  }
}

// Registered with atexit() by ReportInit. Runs on the thread that called
// exit(); other threads may still be creating threads (their creates after
// the snapshot are not in the report).
void WriteAtExit() {
  if (!ThisThreadMayWrite()) return;  // the last update stands
  Flush(/*final=*/true);
}

// The hook of taint.h: the calling thread changed `dims` of its own state.
// May run in a signal handler (pthread_sigmask): signal-mask changes alone
// are not traced, and RecordChange never waits.
uint32_t OnSelfChange(DimSet dims, uint32_t origin) {
  if ((dims - Dim::kSigmask).empty()) return origin;
  SiteStack stack{};
  CaptureStack(&stack);
  return RecordChange(stack, dims, origin);
}

// Forked child, on the forking thread: the child reports its own creates.
void ResetAfterFork() {
  g_created.store(0, std::memory_order_relaxed);
  g_forwarded.store(0, std::memory_order_relaxed);
  g_tainted.store(0, std::memory_order_relaxed);
  for (auto& c : g_per_dim) c.store(0, std::memory_order_relaxed);
  for (auto& c : g_per_decision) c.store(0, std::memory_order_relaxed);
  g_generation.store(0, std::memory_order_relaxed);
  g_written.store(0, std::memory_order_relaxed);
  g_writer.ResetAfterFork();
  g_report_failed_said.store(false, std::memory_order_relaxed);
  ResetSitesAfterFork();
}

// report=/dev/stderr or /dev/stdout: the stream itself, never reopened by
// name (which would truncate a file behind it or block on a fifo).
int StreamFor(const char* path) {
  if (strcmp(path, "/dev/stderr") == 0 || strcmp(path, "/dev/fd/2") == 0) return 2;
  if (strcmp(path, "/dev/stdout") == 0 || strcmp(path, "/dev/fd/1") == 0) return 1;
  return -1;
}

}  // namespace

int ReportTaintedCreate(DimSet taint, Decision decision, bool as_decided) {
  if (!g_counting.load(std::memory_order_relaxed)) return -1;
  Decision outcome = Outcome(decision, as_decided);
  if (taint.empty()) {
    // forward=all: a clean caller's create, forwarded (or restricted) on
    // request, counts in `forwarded` and `decisions`; it has no site.
    if (outcome == Decision::kDirect) return -1;
    if (outcome == Decision::kForward) g_forwarded.fetch_add(1, std::memory_order_relaxed);
    g_per_decision[static_cast<int>(outcome)].fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  g_tainted.fetch_add(1, std::memory_order_relaxed);
  if (outcome == Decision::kForward) g_forwarded.fetch_add(1, std::memory_order_relaxed);
  g_per_decision[static_cast<int>(outcome)].fetch_add(1, std::memory_order_relaxed);
  ForEachDim(taint, [](Dim d) {
    g_per_dim[static_cast<int>(d)].fetch_add(1, std::memory_order_relaxed);
  });
  SiteStack stack{};
  CaptureStack(&stack);
  SiteInfo info;
  info.taint = taint;
  info.decision = outcome;
  info.reason = ReasonFor(taint, decision, as_decided);
  info.origin_set = taint_internal::t_taint.origin;
  bool is_new = false;
  int index = RecordSite(stack, info, &is_new);
  if (is_new) {
    SiteThread thread{};
    thread.tid = RawGettid();
    ReadName(thread.name);
    ForEachDim(taint & kNamespaceDims, [&](Dim d) {
      int i = static_cast<int>(d);
      if (!ReadNamespaceId(0, d, &thread.ns_thread[i])) return;
      thread.ns_valid |= DimSet(d).bits();
      if (!BaselineNamespaceId(d, &thread.ns_baseline[i])) thread.ns_baseline[i] = 0;
    });
    CompleteSite(index, thread);
    g_generation.fetch_add(1, std::memory_order_release);
  }
  if (MayWriteFrom(taint) &&
      g_generation.load(std::memory_order_acquire) != g_written.load(std::memory_order_acquire)) {
    Flush(/*final=*/false);
  }
  return index;
}

void ReportForwardFellThrough(int handle, DimSet taint) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  g_forwarded.fetch_sub(1, std::memory_order_relaxed);
  g_per_decision[static_cast<int>(Decision::kForward)].fetch_sub(1, std::memory_order_relaxed);
  if (taint.empty()) return;  // forward=all's clean caller: counted, no site
  g_tainted.fetch_sub(1, std::memory_order_relaxed);
  ForEachDim(taint, [](Dim d) {
    g_per_dim[static_cast<int>(d)].fetch_sub(1, std::memory_order_relaxed);
  });
  UnrecordSite(handle);
}

void ReportSaveArgs(int argc, char** argv) {
  g_argc = argc;
  g_argv = argv;
  State* s = g_state.load(std::memory_order_acquire);
  if (s != nullptr) CopyArgv(s);  // the report was set up before this ran
}

void ReportInit() {
  LogInit();
  const Options& o = CurrentOptions();
  bool report = o.report_path[0] != '\0';
  bool log_sites =
      o.log != LogDest::kOff && (o.verbosity >= 2 || (o.log_explicit && o.verbosity >= 1));
  if (!report && !log_sites) return;
  long mem = RawSyscall6(SYS_mmap, 0, sizeof(State), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem < 0 && mem > -4096) {
    LogRaw(2, "pristine: out of memory setting up the report; none will be written\n");
    return;
  }
  State* s = new (reinterpret_cast<void*>(mem)) State;
  s->log_sites = log_sites;
  long n = RawSyscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", s->exe, sizeof s->exe - 1);
  s->exe[n > 0 ? n : 0] = '\0';
  const char* raw = OptionsText();
  if (raw != nullptr) {
    s->options_set = true;
    size_t len = strnlen(raw, sizeof s->options - 1);
    memcpy(s->options, raw, len);
    s->options[len] = '\0';
  }
  CopyArgv(s);
  if (report) {
    int stream = StreamFor(o.report_path);
    if (stream >= 0) {
      LogCaptureStream(stream);
      s->target = ReportTarget::kStream;
      s->stream_fd = stream;
    } else {
      const char* what = nullptr;
      int err = s->dir.Open(o.report_path, &what);
      if (err == 0) {
        s->target = ReportTarget::kFile;
      } else {
        LogLine line;
        line << "pristine: cannot write the report " << o.report_path << " (" << what << ": "
             << ErrorText(err) << ")";
        LogRaw(2, line.Finish());
        g_report_failed_said.store(true, std::memory_order_relaxed);
      }
    }
  }
  // In the baseline, before any program code: nothing is loaded or opened
  // later, on a thread that may have entered another root.
  StackCaptureInit();
  TablesInit();
  if (log_sites) SymbolizeInit();
  g_state.store(s, std::memory_order_release);
  taint_internal::g_self_change_hook.store(OnSelfChange, std::memory_order_relaxed);
  atexit(WriteAtExit);
  pthread_atfork(nullptr, nullptr, ResetAfterFork);
  g_counting.store(true, std::memory_order_release);
}

}  // namespace pristine
