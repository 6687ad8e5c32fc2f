// SPDX-License-Identifier: Apache-2.0
// pristine-scan: lists the threads of running processes whose per-thread
// kernel state differs from their process's main thread, without the library
// (see man/pristine-scan.1).
//
//   pristine-scan [--pid PID]... [--json]
//
// Exit status: 0 no drift found, 1 drift found, 2 error (bad usage, a --pid
// that cannot be inspected, no /proc).
//
// Thread state is read with the library's own readers (shim/state.h), by
// /proc/<pid>/task/<tid>/ and kcmp(2): namespaces, cwd and root, a private
// fs_struct or fd table, umask, CPU affinity, signal mask, capabilities,
// no_new_privs, seccomp, uid/gid/groups.
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "dimension.h"
#include "json_string.h"
#include "proc_fd.h"
#include "state.h"

#ifndef PRISTINE_VERSION
#define PRISTINE_VERSION "unknown"
#endif

namespace {

using pristine_tools::JsonString;
using pristine::Dim;

// Namespaces as nsfs names them, and the name pristine gives the dimension.
struct NsName {
  const char* link;
  const char* dim;
};
constexpr NsName kNamespaces[] = {
    {"net", "net"},   {"uts", "uts"},       {"ipc", "ipc"},
    {"mnt", "mnt"},   {"cgroup", "cgroup"}, {"pid_for_children", "pid"},
    {"time_for_children", "time"},          {"user", "user"},
};
constexpr int kNsCount = sizeof kNamespaces / sizeof kNamespaces[0];

// What the pristine library names its own threads.
constexpr char kLibraryThreadName[] = "pristine-tmpl";

struct ThreadState {
  int tid = 0;
  std::string name;
  std::optional<uint64_t> ns[kNsCount];
  std::optional<std::string> cwd, root;
  std::optional<std::string> affinity;
  bool status_ok = false;
  pristine::ThreadStatus status;
};

struct Difference {
  std::string dim, main_value, thread_value;
};

std::string ReadSmall(const std::string& path) {
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return "";
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  std::string s(buf, n);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

std::string CpuList(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int end = c;
    while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, &set)) ++end;
    if (!out.empty()) out += ",";
    out += std::to_string(c);
    if (end > c) out += "-" + std::to_string(end);
    c = end;
  }
  return out;
}

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Ids(const uint32_t ids[4]) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

ThreadState ReadThread(int pid, int tid) {
  ThreadState t;
  t.tid = tid;
  t.name = ReadSmall("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  for (int i = 0; i < kNsCount; ++i) {
    uint64_t id;
    if (pristine::ReadNamespaceInode(pid, tid, kNamespaces[i].link, &id)) t.ns[i] = id;
  }
  char link[4096];
  if (pristine::ReadThreadLink(pid, tid, "cwd", link, sizeof link) >= 0) t.cwd = link;
  if (pristine::ReadThreadLink(pid, tid, "root", link, sizeof link) >= 0) t.root = link;
  cpu_set_t set;
  if (pristine::ReadAffinity(tid, &set)) t.affinity = CpuList(set);
  t.status_ok = pristine::ReadThreadStatus(pid, tid, &t.status);
  return t;
}

template <typename T>
void Compare(std::vector<Difference>* out, const char* dim, const std::optional<T>& a,
             const std::optional<T>& b) {
  if (!a || !b || *a == *b) return;
  std::ostringstream ma, mb;
  ma << *a;
  mb << *b;
  out->push_back({dim, ma.str(), mb.str()});
}

std::vector<Difference> Differences(const ThreadState& main, const ThreadState& t) {
  std::vector<Difference> d;
  for (int i = 0; i < kNsCount; ++i) Compare(&d, kNamespaces[i].dim, main.ns[i], t.ns[i]);
  // A private fs_struct or fd table (unshare(CLONE_FS / CLONE_FILES)), even
  // when its contents still match.
  int fs = pristine::KcmpThreads(main.tid, t.tid, Dim::kFs);
  if (fs == 0) d.push_back({"fs", "shared", "private"});
  int files = pristine::KcmpThreads(main.tid, t.tid, Dim::kFiles);
  if (files == 0) d.push_back({"files", "shared", "private"});
  Compare(&d, "cwd", main.cwd, t.cwd);
  Compare(&d, "root", main.root, t.root);
  Compare(&d, "affinity", main.affinity, t.affinity);
  if (main.status_ok && t.status_ok) {
    const pristine::ThreadStatus& a = main.status;
    const pristine::ThreadStatus& b = t.status;
    if (a.umask != b.umask) {
      char ma[8], mb[8];
      snprintf(ma, sizeof ma, "%04o", a.umask);
      snprintf(mb, sizeof mb, "%04o", b.umask);
      d.push_back({"umask", ma, mb});
    }
    if (a.sigblk != b.sigblk) d.push_back({"sigmask", Hex(a.sigblk), Hex(b.sigblk)});
    const pristine::SecurityState& x = a.security;
    const pristine::SecurityState& y = b.security;
    struct Cap {
      const char* name;
      uint64_t a, b;
    } caps[] = {{"CapEff", x.cap_eff, y.cap_eff}, {"CapPrm", x.cap_prm, y.cap_prm},
                {"CapInh", x.cap_inh, y.cap_inh}, {"CapBnd", x.cap_bnd, y.cap_bnd},
                {"CapAmb", x.cap_amb, y.cap_amb}};
    std::string ca, cb;
    for (const Cap& c : caps) {
      if (c.a == c.b) continue;
      ca += (ca.empty() ? "" : " ") + std::string(c.name) + "=" + Hex(c.a);
      cb += (cb.empty() ? "" : " ") + std::string(c.name) + "=" + Hex(c.b);
    }
    if (!ca.empty()) d.push_back({"caps", ca, cb});
    if (x.no_new_privs != y.no_new_privs) {
      d.push_back({"nnp", std::to_string(x.no_new_privs), std::to_string(y.no_new_privs)});
    }
    if (x.seccomp_mode != y.seccomp_mode || x.seccomp_filters != y.seccomp_filters) {
      d.push_back({"seccomp",
                   "mode " + std::to_string(x.seccomp_mode) + ", " +
                       std::to_string(x.seccomp_filters) + " filters",
                   "mode " + std::to_string(y.seccomp_mode) + ", " +
                       std::to_string(y.seccomp_filters) + " filters"});
    }
    if (memcmp(x.uid, y.uid, sizeof x.uid) != 0 || memcmp(x.gid, y.gid, sizeof x.gid) != 0 ||
        x.groups_hash != y.groups_hash) {
      std::string ga = x.groups_hash != y.groups_hash ? " (groups differ)" : "";
      d.push_back({"creds", "uid " + Ids(x.uid) + " gid " + Ids(x.gid),
                   "uid " + Ids(y.uid) + " gid " + Ids(y.gid) + ga});
    }
  }
  return d;
}

// Names and paths from other processes, for a terminal: control bytes escaped.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

struct DriftingThread {
  int tid;
  std::string name;
  std::vector<Difference> diffs;
};

struct ProcessResult {
  int pid;
  std::string exe, comm;
  int threads = 0;
  std::vector<DriftingThread> drifting;
};

enum class Outcome { kScanned, kGone, kDenied };

bool ListTasks(int pid, std::vector<int>* tids, int* err) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    *err = errno;
    return false;
  }
  while (dirent* e = readdir(d)) {
    char* end;
    long tid = strtol(e->d_name, &end, 10);
    if (*end == '\0' && tid > 0) tids->push_back(static_cast<int>(tid));
  }
  closedir(d);
  return true;
}

Outcome ScanProcess(int pid, ProcessResult* out, std::string* error) {
  out->pid = pid;
  std::string base = "/proc/" + std::to_string(pid);
  char exe[4096];
  ssize_t n = readlink((base + "/exe").c_str(), exe, sizeof exe - 1);
  if (n < 0) {
    int err = errno;
    if (err == ENOENT) {
      // A kernel thread has no executable; a process that is gone, nothing.
      if (access(base.c_str(), F_OK) != 0) return Outcome::kGone;
      std::string status = ReadSmall(base + "/status");
      if (status.find("Kthread:\t1") != std::string::npos || status.empty()) {
        *error = "a kernel thread, or gone";
        return Outcome::kGone;
      }
    } else if (err == EACCES || err == EPERM) {
      *error = "permission denied";
      return Outcome::kDenied;
    }
  } else {
    out->exe.assign(exe, static_cast<size_t>(n));
  }
  out->comm = ReadSmall(base + "/comm");
  std::vector<int> tids;
  int err = 0;
  if (!ListTasks(pid, &tids, &err)) {
    if (err == ENOENT) return Outcome::kGone;
    *error = strerror(err);
    return Outcome::kDenied;
  }
  out->threads = static_cast<int>(tids.size());
  ThreadState main = ReadThread(pid, pid);
  bool main_readable = main.status_ok || main.ns[0].has_value();
  if (!main_readable) {
    if (access(base.c_str(), F_OK) != 0) return Outcome::kGone;
    *error = "its main thread's state cannot be read (permission denied, or it exited)";
    return Outcome::kDenied;
  }
  for (int tid : tids) {
    if (tid == pid) continue;
    ThreadState t = ReadThread(pid, tid);
    // The library's own template and spare threads (kTemplateName in
    // shim/template_thread.cc) block every signal by design: not drift.
    if (t.name == kLibraryThreadName) continue;
    std::vector<Difference> d = Differences(main, t);
    if (!d.empty()) out->drifting.push_back({tid, t.name, d});
  }
  return Outcome::kScanned;
}

void PrintText(const std::vector<ProcessResult>& results) {
  for (const ProcessResult& p : results) {
    for (const DriftingThread& t : p.drifting) {
      std::string line = std::to_string(p.pid) + " " + Printable(p.comm) + " thread " +
                         std::to_string(t.tid) + " \"" + Printable(t.name) + "\":";
      for (size_t i = 0; i < t.diffs.size(); ++i) {
        const Difference& d = t.diffs[i];
        line += (i ? ";" : "") + std::string(" ") + d.dim + " (main " + Printable(d.main_value) +
                ", thread " + Printable(d.thread_value) + ")";
      }
      std::cout << line << "\n";
    }
  }
}

void PrintJson(const std::vector<ProcessResult>& results, int scanned, int denied) {
  std::cout << "{\"scanned\":" << scanned << ",\"uninspectable\":" << denied << ",\"processes\":[";
  bool first_p = true;
  for (const ProcessResult& p : results) {
    if (p.drifting.empty()) continue;
    std::cout << (first_p ? "" : ",") << "{\"pid\":" << p.pid << ",\"exe\":" << JsonString(p.exe)
              << ",\"comm\":" << JsonString(p.comm) << ",\"threads\":" << p.threads
              << ",\"drifting\":[";
    first_p = false;
    bool first_t = true;
    for (const DriftingThread& t : p.drifting) {
      std::cout << (first_t ? "" : ",") << "{\"tid\":" << t.tid << ",\"name\":" << JsonString(t.name)
                << ",\"differs\":{";
      first_t = false;
      for (size_t i = 0; i < t.diffs.size(); ++i) {
        const Difference& d = t.diffs[i];
        std::cout << (i ? "," : "") << JsonString(d.dim) << ":{\"main\":" << JsonString(d.main_value)
                  << ",\"thread\":" << JsonString(d.thread_value) << "}";
      }
      std::cout << "}}";
    }
    std::cout << "]}";
  }
  std::cout << "]}\n";
}

const char kUsage[] =
    "usage: pristine-scan [--pid PID]... [--json]\n"
    "\n"
    "Lists the threads of running processes whose per-thread kernel state differs from\n"
    "their process's main thread: namespaces (net, uts, ipc, mnt, cgroup, pid and time\n"
    "for children, user), a private fs_struct or fd table (kcmp), cwd, root, umask, CPU\n"
    "affinity, signal mask, capabilities, no_new_privs, seccomp and uid/gid/groups.\n"
    "One line per drifting thread: pid, command, tid, thread name and each difference\n"
    "(main thread's value, thread's value). Works without the pristine library; the\n"
    "library's own threads (\"pristine-tmpl\", every signal blocked) are not listed.\n"
    "\n"
    "  --pid PID   scan this process only (repeatable); default: every process\n"
    "  --json      one JSON object on stdout instead of lines\n"
    "  --help      this text\n"
    "  --version   the version\n"
    "\n"
    "Exit status: 0 no drift found, 1 drift found, 2 error (bad usage, a --pid that\n"
    "cannot be inspected, /proc unavailable). Processes that may not be inspected\n"
    "(another user's, without privileges) are counted on stderr when scanning all.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> pids;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (a.rfind("--pid=", 0) == 0) {
      value = a.substr(6);
      has_value = true;
    } else if (a == "--pid") {
      if (i + 1 >= argc) {
        std::cerr << "pristine-scan: --pid needs a process id\n" << kUsage;
        return 2;
      }
      value = argv[++i];
      has_value = true;
    }
    if (has_value) {
      char* end;
      errno = 0;
      long pid = strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || pid <= 0 || pid > 0x7fffffff || errno != 0) {
        std::cerr << "pristine-scan: --pid " << Printable(value) << ": not a process id\n";
        return 2;
      }
      pids.push_back(static_cast<int>(pid));
    } else if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--version") {
      std::cout << "pristine-scan " << PRISTINE_VERSION << "\n";
      return 0;
    } else {
      std::cerr << "pristine-scan: unknown argument " << Printable(a) << "\n" << kUsage;
      return 2;
    }
  }
  // The library's readers resolve /proc paths against this descriptor.
  pristine::OpenProcFdInBaseline();
  if (pristine::ProcFd() < 0) {
    std::cerr << "pristine-scan: cannot open /proc\n";
    return 2;
  }
  bool all = pids.empty();
  if (all) {
    DIR* d = opendir("/proc");
    if (d == nullptr) {
      std::cerr << "pristine-scan: cannot read /proc: " << strerror(errno) << "\n";
      return 2;
    }
    while (dirent* e = readdir(d)) {
      char* end;
      long pid = strtol(e->d_name, &end, 10);
      if (*end == '\0' && pid > 0) pids.push_back(static_cast<int>(pid));
    }
    closedir(d);
  }
  std::vector<ProcessResult> results;
  int scanned = 0, denied = 0, status = 0;
  bool drift = false;
  for (int pid : pids) {
    ProcessResult r;
    std::string error;
    Outcome o = ScanProcess(pid, &r, &error);
    if (o == Outcome::kScanned) {
      ++scanned;
      drift |= !r.drifting.empty();
      results.push_back(std::move(r));
    } else if (!all) {
      std::cerr << "pristine-scan: process " << pid << ": "
                << (o == Outcome::kGone && error.empty() ? "no such process" : error) << "\n";
      status = 2;
    } else if (o == Outcome::kDenied) {
      ++denied;
    }
  }
  if (json) PrintJson(results, scanned, denied);
  else PrintText(results);
  if (all && denied > 0) {
    std::cerr << "pristine-scan: " << denied << " process(es) could not be inspected "
              << "(permission denied)\n";
  }
  if (status != 0) return status;
  return drift ? 1 : 0;
}
