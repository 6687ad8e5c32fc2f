// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>

#include "absl/base/attributes.h"
#include "dlsym.h"
#include "options.h"
#include "raw_syscall.h"

namespace pristine {
namespace {

// What descriptors 1 and 2 were at load. Written on the loading thread before
// the program runs, read by any thread.
struct StreamIdentity {
  std::atomic<int> state{0};  // 0 not recorded (still loading), 1 open, 2 closed
  uint64_t dev = 0, ino = 0;
};
StreamIdentity g_streams[3];

OutputDir g_log_dir;
ABSL_CONST_INIT std::atomic<bool> g_log_failed{false};  // said once; lines go to stderr since

bool StartsWith(const char* s, const char* prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

void WriteAll(int fd, const char* text, size_t len) {
  while (len > 0) {
    long r = RawSyscall(SYS_write, fd, text, len);
    if (r == -EINTR) continue;
    if (r <= 0) return;
    text += r;
    len -= static_cast<size_t>(r);
  }
}

// Writes one line, "pristine: " becoming "pristine[PID]: ", in one write.
void WriteLine(int fd, const char* text) {
  static const char kPrefix[] = "pristine: ";
  size_t len = strlen(text);
  if (!StartsWith(text, kPrefix)) {
    WriteAll(fd, text, len);
    return;
  }
  char buf[1200];
  LogLine head;
  head << "pristine[" << RawGetpid() << "]: ";
  const char* h = head.Finish();
  size_t hn = strlen(h) - 1;  // without Finish's newline
  const char* rest = text + sizeof kPrefix - 1;
  size_t rn = len - (sizeof kPrefix - 1);
  if (hn + rn > sizeof buf) {
    WriteAll(fd, h, hn);
    WriteAll(fd, rest, rn);
    return;
  }
  memcpy(buf, h, hn);
  memcpy(buf + hn, rest, rn);
  WriteAll(fd, buf, hn + rn);
}

void RecordStream(int fd) {
  struct stat st;
  StreamIdentity& id = g_streams[fd];
  if (RawSyscall(SYS_fstat, fd, &st) == 0) {
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.state.store(1, std::memory_order_release);
  } else {
    id.state.store(2, std::memory_order_release);
  }
}

// Opens the log file for one line. Returns the descriptor, or -errno with
// `*why` set.
long OpenLogFile(char* name, size_t cap, const char** why) {
  *why = nullptr;
  if (!ExpandPid(g_log_dir.name, name, cap)) return -ENAMETOOLONG;
  if (!g_log_dir.Verify()) {
    *why = "the log directory's descriptor was closed by the program";
    return -EBADF;
  }
  long fd = RawSyscall(SYS_openat, g_log_dir.fd, name,
                       O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                           O_CLOEXEC,
                       0600);
  if (fd < 0) return fd;
  struct stat st;
  if (RawSyscall(SYS_fstat, fd, &st) != 0) *why = "cannot be examined";
  else if (!S_ISREG(st.st_mode)) *why = "is not a regular file";
  else if (st.st_uid != static_cast<uid_t>(RawSyscall(SYS_geteuid))) *why = "is owned by another user";
  else if (st.st_nlink != 1) *why = "has other hard links";
  if (*why != nullptr) {
    RawSyscall(SYS_close, fd);
    return -EPERM;
  }
  return fd;
}

// The log file could not be used: said once, on stderr.
void SayLogFailed(const char* path, long err, const char* why) {
  if (g_log_failed.exchange(true)) return;
  LogLine line;
  line << "pristine: cannot write the log file " << path << " ("
       << (why != nullptr ? why : ErrorText(static_cast<int>(-err)))
       << "); log lines go to stderr";
  LogRaw(2, line.Finish());
}

}  // namespace

LogLine& LogLine::operator<<(const char* s) { return Append(s, strlen(s)); }

LogLine& LogLine::operator<<(long v) {
  char digits[24];
  int d = 0;
  unsigned long u = v < 0 ? 0ul - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    digits[d++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) digits[d++] = '-';
  char out[24];
  for (int i = 0; i < d; ++i) out[i] = digits[d - 1 - i];
  return Append(out, static_cast<size_t>(d));
}

LogLine& LogLine::Append(const char* s, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      if (n_ + 5 >= sizeof buf_) break;
      buf_[n_++] = '\\';
      buf_[n_++] = 'x';
      buf_[n_++] = "0123456789abcdef"[c >> 4];
      buf_[n_++] = "0123456789abcdef"[c & 15];
    } else {
      if (n_ + 2 >= sizeof buf_) break;
      buf_[n_++] = static_cast<char>(c);
    }
  }
  buf_[n_] = '\0';
  return *this;
}

const char* LogLine::Finish() {
  buf_[n_++] = '\n';
  buf_[n_] = '\0';
  return buf_;
}

bool StreamIsOurs(int fd) {
  if (fd != 1 && fd != 2) return true;
  const StreamIdentity& id = g_streams[fd];
  int state = id.state.load(std::memory_order_acquire);
  if (state == 0) return true;  // still loading: nothing of the program ran yet
  if (state == 2) return false;
  struct stat st;
  return RawSyscall(SYS_fstat, fd, &st) == 0 && st.st_dev == id.dev && st.st_ino == id.ino;
}

void LogRaw(int fd, const char* text) {
  if (!StreamIsOurs(fd)) return;
  WriteLine(fd, text);
}

bool LogWants(int level) {
  const Options& o = CurrentOptions();
  return o.log != LogDest::kOff && level <= o.verbosity;
}

void LogAt(int level, const char* line) {
  if (!LogWants(level)) return;
  if (CurrentOptions().log == LogDest::kFile && !g_log_failed.load(std::memory_order_relaxed)) {
    char name[kMaxPathLen + 64];
    const char* why = nullptr;
    long fd = OpenLogFile(name, sizeof name, &why);
    if (fd >= 0) {
      WriteLine(static_cast<int>(fd), line);
      RawSyscall(SYS_close, fd);
      return;
    }
    char path[kMaxPathLen + 64];
    if (!ExpandPid(CurrentOptions().log_path, path, sizeof path)) path[0] = '\0';
    SayLogFailed(path, fd, why);
  }
  LogRaw(2, line);
}

void LogInit() {
  RecordStream(2);
  const Options& o = CurrentOptions();
  if (o.log != LogDest::kFile) return;
  const char* what = nullptr;
  int err = g_log_dir.Open(o.log_path, &what);
  if (err != 0) {
    g_log_failed.store(true, std::memory_order_relaxed);
    LogLine line;
    line << "pristine: cannot write the log file " << o.log_path << " (" << what << ": "
         << ErrorText(err) << "); log lines go to stderr";
    LogRaw(2, line.Finish());
  }
}

void LogCaptureStream(int fd) {
  if (fd == 1 || fd == 2) RecordStream(fd);
}

const char* ErrorText(int err) {
  // glibc's untranslated description: no locale, no allocation. Looked up on
  // first use (an import would be one more lookup at every process start).
  // libc's own dlsym: the exported one is the library's wrapper (dlsym.h).
  using DescFn = const char* (*)(int);
  ABSL_CONST_INIT static std::atomic<DescFn> desc{nullptr};
  DescFn fn = desc.load(std::memory_order_relaxed);
  DlsymFn libc_dlsym = fn == nullptr ? LibcDlsym() : nullptr;
  if (libc_dlsym != nullptr) {
    fn = reinterpret_cast<DescFn>(libc_dlsym(RTLD_DEFAULT, "strerrordesc_np"));
    desc.store(fn, std::memory_order_relaxed);
  }
  const char* text = fn != nullptr ? fn(err) : nullptr;
  return text != nullptr ? text : "unknown error";
}

bool ExpandPid(const char* in, char* out, size_t cap) {
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

int OutputDir::Open(const char* path, const char** what) {
  char expanded[kMaxPathLen + 64];
  *what = "the path";
  if (!ExpandPid(path, expanded, sizeof expanded)) return ENAMETOOLONG;
  const char* slash = strrchr(expanded, '/');
  const char* leaf = slash != nullptr ? slash + 1 : expanded;
  // The name keeps its %p, expanded when written (forked children).
  const char* raw_slash = strrchr(path, '/');
  const char* raw_leaf = raw_slash != nullptr ? raw_slash + 1 : path;
  if (*leaf == '\0' || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0) {
    *what = "the path names a directory";
    return EISDIR;
  }
  size_t leaf_len = strlen(raw_leaf);
  if (leaf_len >= sizeof name) return ENAMETOOLONG;
  char dir[kMaxPathLen + 64];
  if (slash == nullptr) {
    dir[0] = '.';
    dir[1] = '\0';
  } else if (slash == expanded) {
    dir[0] = '/';
    dir[1] = '\0';
  } else {
    size_t n = static_cast<size_t>(slash - expanded);
    memcpy(dir, expanded, n);
    dir[n] = '\0';
  }
  *what = "its directory";
  // O_PATH: a handle to name files by, needing no read permission on it.
  long fd = RawSyscall(SYS_openat, AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return static_cast<int>(-fd);
  struct stat st;
  if (RawSyscall(SYS_fstat, fd, &st) != 0) {
    RawSyscall(SYS_close, fd);
    return EBADF;
  }
  memcpy(name, raw_leaf, leaf_len + 1);
  dev = st.st_dev;
  ino = st.st_ino;
  this->fd = static_cast<int>(fd);
  return 0;
}

bool OutputDir::Verify() const {
  if (fd < 0) return false;
  struct stat st;
  return RawSyscall(SYS_fstat, fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == dev &&
         st.st_ino == ino;
}

}  // namespace pristine
