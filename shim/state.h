// SPDX-License-Identifier: Apache-2.0
// Reading one dimension of a thread's kernel state.
//
// Every reader here uses raw system calls only and writes into caller-owned
// storage: no allocation, no stdio, no locks, no errno. They may be called on
// any thread, including the template thread and a half-initialised process.
// A reader returns false when the kernel would not tell (no /proc, a seccomp
// filter, an old kernel); callers treat "unknown" conservatively.
#ifndef PRISTINE_SHIM_STATE_H_
#define PRISTINE_SHIM_STATE_H_

#include <sched.h>

#include <cstdint>

#include "dimension.h"

namespace pristine {

// A namespace's identity: the inode of its nsfs file (dev is the same for all).
// `tid` 0 means the calling thread. Only the seven namespace dimensions.
// Read through the library's /proc descriptor (proc_fd.h).
bool ReadNamespaceId(int tid, Dim ns, uint64_t* id);

// --- Any thread of any process -------------------------------------------------
// The readers below name a thread as (pid, tid) and read <pid>/task/<tid>/
// through the same /proc descriptor; pid 0 means the calling process, and tid
// 0 with it the calling thread. pristine-scan uses them on other processes.

// The inode of namespace link ns/<link> ("net", "user", "pid_for_children", ...).
bool ReadNamespaceInode(int pid, int tid, const char* link, uint64_t* id);

// readlink of <pid>/task/<tid>/<leaf> ("cwd", "root"), NUL-terminated.
// Returns the length, or -1.
long ReadThreadLink(int pid, int tid, const char* leaf, char* out, unsigned long cap);

// Whether threads `tid_a` and `tid_b` (of any process, by kernel tid) share
// their fs_struct (Dim::kFs) or fd table (Dim::kFiles), via kcmp(2): 1 shared,
// 0 private, -1 unknown (no kcmp, no permission).
int KcmpThreads(int tid_a, int tid_b, Dim fs_or_files);

// Whether the calling thread shares its fs_struct (Dim::kFs) or fd table
// (Dim::kFiles) with thread `other_tid`, via kcmp(2). Returns 1 shared,
// 0 private, -1 unknown (no kcmp, no permission).
int SharesWith(int other_tid, Dim fs_or_files);

struct SchedState {
  int policy = 0;
  int priority = 0;
  int nice = 0;
  constexpr bool operator==(const SchedState& o) const {
    return policy == o.policy && priority == o.priority && nice == o.nice;
  }
};

// `tid` 0 means the calling thread; another thread's values can be read too.
bool ReadAffinity(int tid, cpu_set_t* out);
bool ReadSched(int tid, SchedState* out);

// The calling thread's blocked signals, as the kernel's 64-bit set, with
// glibc's two internal signals (SIGCANCEL, SIGSETXID) masked out: glibc never
// lets a program block them, so they are not part of the program's state.
uint64_t ReadSigmask();
constexpr uint64_t kGlibcInternalSignals = (1ull << (32 - 1)) | (1ull << (33 - 1));

// The calling thread's name (comm), NUL-terminated, 16 bytes.
void ReadName(char out[16]);

// Privileges and restrictions of a thread, from its /proc status, read through
// the library's /proc descriptor (proc_fd.h): a forged /proc inside a chroot
// is never consulted.
struct SecurityState {
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  int no_new_privs = 0;
  int seccomp_mode = 0;
  int seccomp_filters = 0;          // stacked filters (Linux 5.9+; else 0)
  uint32_t uid[4] = {0, 0, 0, 0};  // real, effective, saved, fs
  uint32_t gid[4] = {0, 0, 0, 0};
  uint64_t groups_hash = 0;        // of the Groups: line
};
// The calling thread's (thread-self) or, with kMainThread, the main thread's
// (the process's own status). Never by tid: the library's /proc may belong
// to another pid namespace than the one gettid() answers in (a program run
// under unshare --pid --fork without its own /proc).
enum class Whose : uint8_t { kCallingThread, kMainThread };
bool ReadSecurity(Whose whose, SecurityState* out);

// The number of threads of the process as the kernel counts them (a main
// thread that left with pthread_exit included, until the process ends), or
// -1 if /proc cannot be read through the library's descriptor. 1 without a
// system call while glibc says no thread was ever created. Any thread.
int ProcessThreadCount();

// Whether the main thread has exited (left with pthread_exit: a zombie until
// the process ends). Any thread.
bool MainThreadExited();

// What <pid>/task/<tid>/status says about a thread beyond its privileges.
struct ThreadStatus {
  SecurityState security;
  uint64_t sigblk = 0;  // blocked signals, glibc's internal ones masked out
  int umask = -1;       // -1 if the kernel does not say (before Linux 4.7)
};
bool ReadThreadStatus(int pid, int tid, ThreadStatus* out);

// Waits until the kernel has released thread `tid` of this process, which has
// exited and been joined (pthread_join returns when the kernel clears the
// thread's tid, a moment before it stops counting the thread: a
// single-threaded change such as unshare(CLONE_NEWUSER) still sees it until
// then). Any thread; `tid` 0 returns at once.
void WaitUntilThreadReleased(int tid);

// Which security dimensions differ between `a` (a caller) and `b` (baseline).
DimSet SecurityDifferences(const SecurityState& a, const SecurityState& b);

}  // namespace pristine

#endif  // PRISTINE_SHIM_STATE_H_
