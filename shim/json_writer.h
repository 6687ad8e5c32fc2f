// SPDX-License-Identifier: Apache-2.0
// A streaming JSON writer for the exit-time report: bounded (a fixed buffer
// flushed to a file descriptor with raw write(2) whenever it fills), no
// allocation, no stdio. Header-only.
//
// Who may use it: the report writer (report.cc), on whichever thread runs the
// exit handlers; never the template thread (it writes to a file). One writer
// per file; not thread-safe.
//
// Invariants: the caller nests Begin/End calls correctly; Key() precedes every
// value inside an object; commas are inserted by the writer. Strings are
// escaped per RFC 8259 (control characters as \u00XX; bytes >= 0x80 are passed
// through, so invalid UTF-8 in a symbol or path stays invalid, which Python's
// json module tolerates with errors="surrogateescape" and pristine-report
// reads with).
#ifndef PRISTINE_SHIM_JSON_WRITER_H_
#define PRISTINE_SHIM_JSON_WRITER_H_

#include <errno.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "raw_syscall.h"

namespace pristine {

class JsonWriter {
 public:
  explicit JsonWriter(int fd) : fd_(fd) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  void BeginObject() { Separate(); Put('{'); first_ = true; }
  void EndObject() { Put('}'); first_ = false; }
  void BeginArray() { Separate(); Put('['); first_ = true; }
  void EndArray() { Put(']'); first_ = false; }

  // An object key; the next value call is its value (no comma before it).
  void Key(const char* k) {
    String(k);
    Put(':');
    first_ = true;
  }

  void String(const char* s) { StringN(s, s == nullptr ? 0 : strlen(s)); }

  void StringN(const char* s, size_t n) {
    Separate();
    Put('"');
    for (size_t i = 0; i < n; ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        Put('\\');
        Put(static_cast<char>(c));
      } else if (c < 0x20) {
        static const char kHex[] = "0123456789abcdef";
        Raw("\\u00", 4);
        Put(kHex[c >> 4]);
        Put(kHex[c & 15]);
      } else {
        Put(static_cast<char>(c));
      }
    }
    Put('"');
  }

  void Null() { Separate(); Raw("null", 4); }
  void Bool(bool v) {
    Separate();
    if (v) Raw("true", 4);
    else Raw("false", 5);
  }

  // A newline after the top-level value (files and streams end with one).
  void EndLine() { Put('\n'); }

  void Uint(uint64_t v) {
    Separate();
    char digits[24];
    int d = 0;
    do {
      digits[d++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    while (d > 0) Put(digits[--d]);
  }

  // Writes what is buffered. Returns false if any write failed so far.
  bool Flush() {
    size_t off = 0;
    while (off < n_ && ok_) {
      long r = RawSyscall(SYS_write, fd_, buf_ + off, n_ - off);
      if (r == -EINTR) continue;
      if (r <= 0) ok_ = false;
      else off += static_cast<size_t>(r);
    }
    n_ = 0;
    return ok_;
  }

 private:
  // A comma before every value or key but the first of its container.
  void Separate() {
    if (!first_) Put(',');
    first_ = false;
  }
  void Raw(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) Put(s[i]);
  }
  void Put(char c) {
    if (n_ == sizeof buf_) Flush();
    buf_[n_++] = c;
  }

  int fd_;
  bool ok_ = true;
  bool first_ = true;
  size_t n_ = 0;
  char buf_[4096];
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_JSON_WRITER_H_
