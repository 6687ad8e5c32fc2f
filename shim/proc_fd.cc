// SPDX-License-Identifier: Apache-2.0
#include "proc_fd.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "raw_syscall.h"

namespace pristine {
namespace {

// The descriptor and the identity of what it refers to (the root of one
// /proc instance). Written once per opening, before g_fd is published.
ABSL_CONST_INIT std::atomic<int> g_fd{-1};
ABSL_CONST_INIT std::atomic<uint64_t> g_dev{0};
ABSL_CONST_INIT std::atomic<uint64_t> g_ino{0};

constexpr int kHighFd = 512;

bool IsOurs(int fd) {
  struct stat st;
  if (fd < 0 || RawSyscall(SYS_fstat, fd, &st) != 0) return false;
  return st.st_dev == g_dev.load(std::memory_order_relaxed) &&
         st.st_ino == g_ino.load(std::memory_order_relaxed) && S_ISDIR(st.st_mode);
}

}  // namespace

int MoveToHighFd(int fd) {
  // EINVAL when kHighFd is past the descriptor limit: then `fd` stays.
  long high = RawSyscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, kHighFd);
  if (high < 0) return fd;
  RawSyscall(SYS_close, fd);
  return static_cast<int>(high);
}

void OpenProcFdInBaseline() {
  if (IsOurs(g_fd.load(std::memory_order_acquire))) return;
  long fd = RawSyscall(SYS_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (RawSyscall(SYS_fstat, fd, &st) != 0) {
    RawSyscall(SYS_close, fd);
    return;
  }
  int kept = MoveToHighFd(static_cast<int>(fd));
  g_dev.store(st.st_dev, std::memory_order_relaxed);
  g_ino.store(st.st_ino, std::memory_order_relaxed);
  // A descriptor of ours that a program closed is not ours to close again:
  // the old number is simply forgotten.
  g_fd.store(kept, std::memory_order_release);
}

int ProcFd() {
  int fd = g_fd.load(std::memory_order_acquire);
  return IsOurs(fd) ? fd : -1;
}

}  // namespace pristine
