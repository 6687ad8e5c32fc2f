// SPDX-License-Identifier: Apache-2.0
// Diagnostics from inside someone else's process: bounded, allocation-free
// lines written with one write(2) each, so that lines from several threads and
// processes never interleave mid-line. No stdio (its locks and buffers belong
// to the host program).
#ifndef PRISTINE_SHIM_LOG_H_
#define PRISTINE_SHIM_LOG_H_

#include <cstddef>
#include <cstdint>

namespace pristine {

// A line under construction, on the stack. Output past the capacity is cut.
class LogLine {
 public:
  LogLine& operator<<(const char* s);
  LogLine& operator<<(long v);
  LogLine& operator<<(int v) { return *this << static_cast<long>(v); }
  LogLine& operator<<(unsigned v) { return *this << static_cast<long>(v); }
  LogLine& Append(const char* s, size_t len);
  // Terminates with '\n' and returns the text.
  const char* Finish();

 private:
  char buf_[1024] = {};
  size_t n_ = 0;
};

// Writes `text` whole to `fd`, retrying on EINTR and short writes.
void LogRaw(int fd, const char* text);

// Writes a finished line to the destination chosen by `log=` (stderr by
// default; nothing with log=off). Safe on any thread.
void Log(const char* line);

}  // namespace pristine

#endif  // PRISTINE_SHIM_LOG_H_
