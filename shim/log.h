// SPDX-License-Identifier: Apache-2.0
// Diagnostics from inside someone else's process: bounded, allocation-free
// lines written with one write(2) each, so that lines from several threads and
// processes never interleave mid-line. No stdio (its locks and buffers belong
// to the host program).
//
// Where lines go, and the rules that keep them out of the host's data:
//  * Every line that starts "pristine: " is written as "pristine[PID]: ".
//  * Descriptor 2 is written only while it is the file it was when the
//    library loaded (device and inode, checked before each write): a daemon
//    that closed stderr and reused descriptor 2 for its own data never gets a
//    line of ours in it. A process started with descriptor 2 closed gets none.
//  * log=PATH (%p becomes the pid) is resolved against its directory, opened
//    at load (OutputDir), so a thread that entered another mount namespace or
//    root still logs where the user asked. The file is opened per line without
//    following symlinks or blocking, created 0600, and used only if it is a
//    regular file owned by the process's user with no other hard link. If it
//    cannot be opened, that is said once on stderr, and lines go to stderr.
//  * verbosity=N decides how much goes to the log (options.h).
#ifndef PRISTINE_SHIM_LOG_H_
#define PRISTINE_SHIM_LOG_H_

#include <cstddef>
#include <cstdint>

namespace pristine {

// A line under construction, on the stack. Output past the capacity is cut.
// Control bytes (a bad option token, a thread name) are written as \xNN, so
// that nothing the program or its environment supplies reaches a terminal raw.
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

// How much a line matters, against verbosity=N.
enum LogLevel : int {
  kLogProblem = 0,  // something asked for cannot be done
  kLogWarning = 1,  // warnings and hints (the default verbosity)
  kLogDetail = 2,   // every new call site, every report update
};

// Writes `text` whole to `fd`, retrying on EINTR and short writes. Descriptors
// 1 and 2 only while they are what they were at load. For problems, which go
// to stderr whatever log= says.
void LogRaw(int fd, const char* text);

// Writes a finished line to the destination chosen by `log=` (stderr by
// default; nothing with log=off) if verbosity=N admits `level`. Any thread
// but the template.
void LogAt(int level, const char* line);
inline void Log(const char* line) { LogAt(kLogWarning, line); }

// Whether a line of `level` would be written anywhere.
bool LogWants(int level);

// At load, once options are parsed, on the loading thread: records what
// descriptor 2 is, and opens the log directory for log=PATH.
void LogInit();

// Records what descriptor `fd` (1 or 2) is now, so that it may be written
// (report=/dev/stdout). Loading thread only.
void LogCaptureStream(int fd);

// Whether descriptor `fd` (1 or 2) is still the file it was at load.
bool StreamIsOurs(int fd);

// An error number in words ("No such file or directory").
const char* ErrorText(int err);

// `in` with each %p replaced by the pid and %% by %. False if it does not fit.
bool ExpandPid(const char* in, char* out, size_t cap);

// A directory the library writes a file into, opened at load (in the
// baseline). Resolving names against it instead of a path means a thread
// that changed its root or mount namespace still writes where the user asked.
struct OutputDir {
  int fd = -1;
  uint64_t dev = 0, ino = 0;  // identity at load
  char name[512] = {};        // the file's name in it (may hold %p)

  // Splits `path` and opens its directory (relative: against the current
  // directory). Returns 0, or an error number; `*what` says what failed.
  int Open(const char* path, const char** what);

  // Whether `fd` is still that directory (the program may have closed it and
  // reused the number).
  bool Verify() const;
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_LOG_H_
