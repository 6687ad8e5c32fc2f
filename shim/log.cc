// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <errno.h>
#include <fcntl.h>

#include <atomic>
#include <cstring>

#include "options.h"
#include "raw_syscall.h"

namespace pristine {

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
  for (size_t i = 0; i < len && n_ + 2 < sizeof buf_; ++i) buf_[n_++] = s[i];
  buf_[n_] = '\0';
  return *this;
}

const char* LogLine::Finish() {
  buf_[n_++] = '\n';
  buf_[n_] = '\0';
  return buf_;
}

void LogRaw(int fd, const char* text) {
  size_t len = strlen(text);
  while (len > 0) {
    long r = RawSyscall(SYS_write, fd, text, len);
    if (r == -EINTR) continue;
    if (r <= 0) return;
    text += r;
    len -= static_cast<size_t>(r);
  }
}

void Log(const char* line) {
  const Options& o = CurrentOptions();
  switch (o.log) {
    case LogDest::kOff:
      return;
    case LogDest::kStderr:
      LogRaw(2, line);
      return;
    case LogDest::kFile: {
      // Opened per line: log lines are rare (once per call site) and this
      // keeps no descriptor open in the host, where it could be closed or
      // inherited behind the program's back.
      long fd = RawSyscall(SYS_openat, AT_FDCWD, o.log_path,
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        LogRaw(2, line);
        return;
      }
      LogRaw(static_cast<int>(fd), line);
      RawSyscall(SYS_close, fd);
      return;
    }
  }
}

}  // namespace pristine
