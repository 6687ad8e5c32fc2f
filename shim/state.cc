// SPDX-License-Identifier: Apache-2.0
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstring>

#include "proc_fd.h"
#include "raw_syscall.h"

// glibc's own answer to "has this process ever created a thread" (2.32+).
extern "C" char __libc_single_threaded;

namespace pristine {
namespace {

// Writes "thread-self/<leaf>", "self/task/<tid>/<leaf>" or
// "<pid>/task/<tid>/<leaf>", relative to the library's /proc descriptor
// (proc_fd.h).
void ThreadProcPath(int pid, int tid, const char* leaf, char* out, size_t cap) {
  size_t n = 0;
  auto put = [&](const char* s) {
    while (*s && n + 1 < cap) out[n++] = *s++;
  };
  auto put_number = [&](int v) {
    char digits[12];
    int d = 0;
    for (unsigned u = static_cast<unsigned>(v); u; u /= 10) digits[d++] = '0' + u % 10;
    while (d && n + 1 < cap) out[n++] = digits[--d];
  };
  if (pid == 0 && tid == 0) {
    put("thread-self/");
  } else {
    if (pid == 0) put("self");
    else put_number(pid);
    put("/task/");
    put_number(tid);
    put("/");
  }
  put(leaf);
  out[n] = '\0';
}

void ThreadProcPath(int tid, const char* leaf, char* out, size_t cap) {
  ThreadProcPath(0, tid, leaf, out, cap);
}

// Reads a small /proc file (a path relative to /proc) into buf
// (NUL-terminated); returns its length or -1.
long ReadSmallFile(const char* path, char* buf, size_t cap) {
  int proc = ProcFd();
  if (proc < 0) return -1;
  long fd = RawSyscall(SYS_openat, proc, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n + 1 < cap) {
    long r = RawSyscall(SYS_read, fd, buf + n, cap - 1 - n);
    if (r == -EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  RawSyscall(SYS_close, fd);
  buf[n] = '\0';
  return static_cast<long>(n);
}

// Finds "Key:\t" at a line start; returns a pointer past it or nullptr.
const char* FindField(const char* text, const char* key) {
  size_t klen = strlen(key);
  for (const char* p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : nullptr) {
    if (strncmp(p, key, klen) == 0 && p[klen] == ':') return p + klen + 1;
  }
  return nullptr;
}

uint64_t ParseHex(const char* p) {
  while (*p == ' ' || *p == '\t') ++p;
  uint64_t v = 0;
  for (;; ++p) {
    int d;
    if (*p >= '0' && *p <= '9') d = *p - '0';
    else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
    else break;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

// Parses up to n whitespace-separated decimals.
void ParseDecimals(const char* p, uint32_t* out, int n) {
  for (int i = 0; i < n; ++i) {
    while (*p == ' ' || *p == '\t') ++p;
    uint32_t v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<uint32_t>(*p++ - '0');
    out[i] = v;
  }
}

uint64_t HashLine(const char* p) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (; p && *p && *p != '\n'; ++p) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
  return h;
}

}  // namespace


bool ReadNamespaceId(int tid, Dim ns, uint64_t* id) {
  const char* leaf = NamespaceLeaf(ns);
  if (leaf == nullptr) return false;
  int proc = ProcFd();
  if (proc < 0) return false;
  char path[64];
  ThreadProcPath(tid, leaf, path, sizeof path);
  struct stat st;
  if (RawSyscall(SYS_newfstatat, proc, path, &st, 0) != 0) return false;
  *id = st.st_ino;
  return true;
}

int SharesWith(int other_tid, Dim fs_or_files) {
  return KcmpThreads(RawGettid(), other_tid, fs_or_files);
}

bool ReadAffinity(int tid, cpu_set_t* out) {
  memset(out, 0, sizeof *out);
  return RawSyscall(SYS_sched_getaffinity, tid, sizeof *out, out) > 0;
}

bool ReadSched(int tid, SchedState* out) {
  long policy = RawSyscall(SYS_sched_getscheduler, tid);
  struct sched_param param = {};
  if (policy < 0 || RawSyscall(SYS_sched_getparam, tid, &param) < 0) return false;
  // The raw getpriority returns 20 - nice, so that it is never negative.
  long prio = RawSyscall(SYS_getpriority, PRIO_PROCESS, tid);
  if (prio < 0) return false;
  out->policy = static_cast<int>(policy) & ~SCHED_RESET_ON_FORK;
  out->priority = param.sched_priority;
  out->nice = 20 - static_cast<int>(prio);
  return true;
}

uint64_t ReadSigmask() {
  uint64_t set = 0;
  RawSyscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &set, sizeof set);
  return set & ~kGlibcInternalSignals;
}

void ReadName(char out[16]) {
  memset(out, 0, 16);
  RawSyscall(SYS_prctl, PR_GET_NAME, out);
  out[15] = '\0';
}

namespace {

bool ParseSecurity(const char* buf, SecurityState* out) {
  const char* f;
  if (!(f = FindField(buf, "CapInh"))) return false;
  out->cap_inh = ParseHex(f);
  if ((f = FindField(buf, "CapPrm"))) out->cap_prm = ParseHex(f);
  if ((f = FindField(buf, "CapEff"))) out->cap_eff = ParseHex(f);
  if ((f = FindField(buf, "CapBnd"))) out->cap_bnd = ParseHex(f);
  if ((f = FindField(buf, "CapAmb"))) out->cap_amb = ParseHex(f);
  uint32_t one = 0;
  if ((f = FindField(buf, "NoNewPrivs"))) { ParseDecimals(f, &one, 1); out->no_new_privs = static_cast<int>(one); }
  if ((f = FindField(buf, "Seccomp"))) { ParseDecimals(f, &one, 1); out->seccomp_mode = static_cast<int>(one); }
  if ((f = FindField(buf, "Seccomp_filters"))) { ParseDecimals(f, &one, 1); out->seccomp_filters = static_cast<int>(one); }
  if ((f = FindField(buf, "Uid"))) ParseDecimals(f, out->uid, 4);
  if ((f = FindField(buf, "Gid"))) ParseDecimals(f, out->gid, 4);
  out->groups_hash = HashLine(FindField(buf, "Groups"));
  return true;
}

}  // namespace

bool ReadSecurity(Whose whose, SecurityState* out) {
  const char* path = whose == Whose::kCallingThread ? "thread-self/status" : "self/status";
  char buf[4096];
  if (ReadSmallFile(path, buf, sizeof buf) <= 0) return false;
  return ParseSecurity(buf, out);
}

bool ReadThreadStatus(int pid, int tid, ThreadStatus* out) {
  char path[64];
  ThreadProcPath(pid, tid, "status", path, sizeof path);
  char buf[4096];
  if (ReadSmallFile(path, buf, sizeof buf) <= 0 || !ParseSecurity(buf, &out->security)) {
    return false;
  }
  const char* f;
  if ((f = FindField(buf, "SigBlk"))) out->sigblk = ParseHex(f) & ~kGlibcInternalSignals;
  if ((f = FindField(buf, "Umask"))) {
    while (*f == ' ' || *f == '\t') ++f;
    int mask = 0;
    for (; *f >= '0' && *f <= '7'; ++f) mask = mask * 8 + (*f - '0');
    out->umask = mask;
  }
  return true;
}

bool ReadNamespaceInode(int pid, int tid, const char* link, uint64_t* id) {
  int proc = ProcFd();
  if (proc < 0) return false;
  char leaf[40] = "ns/";
  size_t n = 3;
  while (*link && n + 1 < sizeof leaf) leaf[n++] = *link++;
  leaf[n] = '\0';
  char path[80];
  ThreadProcPath(pid, tid, leaf, path, sizeof path);
  struct stat st;
  if (RawSyscall(SYS_newfstatat, proc, path, &st, 0) != 0) return false;
  *id = st.st_ino;
  return true;
}

long ReadThreadLink(int pid, int tid, const char* leaf, char* out, unsigned long cap) {
  int proc = ProcFd();
  if (proc < 0 || cap == 0) return -1;
  char path[64];
  ThreadProcPath(pid, tid, leaf, path, sizeof path);
  long n = RawSyscall(SYS_readlinkat, proc, path, out, cap - 1);
  if (n < 0) return -1;
  out[n] = '\0';
  return n;
}

int KcmpThreads(int tid_a, int tid_b, Dim fs_or_files) {
  int type = fs_or_files == Dim::kFs ? KCMP_FS : KCMP_FILES;
  long r = RawSyscall(SYS_kcmp, tid_a, tid_b, type, 0, 0);
  if (r < 0) return -1;
  return r == 0 ? 1 : 0;
}

namespace {

// The fields of /proc/self/stat after the command name (in parentheses, which
// may hold spaces): field 3 (the state) first. Null if unreadable.
const char* StatFields(char* buf, size_t cap) {
  if (ReadSmallFile("self/stat", buf, cap) <= 0) return nullptr;
  const char* close = strrchr(buf, ')');
  return close != nullptr && close[1] == ' ' ? close + 2 : nullptr;
}

}  // namespace

int ProcessThreadCount() {
  if (__libc_single_threaded) return 1;  // no thread was ever created
  char buf[1024];
  const char* p = StatFields(buf, sizeof buf);
  if (p == nullptr) return -1;
  for (int field = 3; field < 20 && *p; ++p) {
    if (*p == ' ') ++field;
  }
  int count = 0;
  while (*p >= '0' && *p <= '9') count = count * 10 + (*p++ - '0');
  return count;
}

bool MainThreadExited() {
  char buf[1024];
  const char* p = StatFields(buf, sizeof buf);
  return p != nullptr && (*p == 'Z' || *p == 'X');
}

void WaitUntilThreadReleased(int tid) {
  if (tid <= 0) return;
  int pid = RawGetpid();
  while (RawSyscall(SYS_tgkill, pid, tid, 0) != -ESRCH) RawSyscall(SYS_sched_yield);
}

DimSet SecurityDifferences(const SecurityState& a, const SecurityState& b) {
  DimSet d;
  if (a.cap_inh != b.cap_inh || a.cap_prm != b.cap_prm || a.cap_eff != b.cap_eff ||
      a.cap_bnd != b.cap_bnd || a.cap_amb != b.cap_amb) {
    d |= Dim::kCaps;
  }
  if (a.no_new_privs != b.no_new_privs) d |= Dim::kNnp;
  if (a.seccomp_mode != b.seccomp_mode || a.seccomp_filters != b.seccomp_filters) {
    d |= Dim::kSeccomp;
  }
  if (memcmp(a.uid, b.uid, sizeof a.uid) != 0 || memcmp(a.gid, b.gid, sizeof a.gid) != 0 ||
      a.groups_hash != b.groups_hash) {
    d |= Dim::kCreds;
  }
  return d;
}

}  // namespace pristine
