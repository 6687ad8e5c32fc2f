// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: PRISTINE_OPTIONS parsing (shim/options.cc ParseOptions).
//
// Properties checked beyond "no crash, no sanitizer report":
//   - the return value equals the number of lines given to the sink;
//   - every line names PRISTINE_OPTIONS, is one line ending in '\n', fits the 1 KiB buffer and
//     holds printable ASCII only (bad tokens are quoted with their control bytes escaped);
//   - in secure execution: at most one line, and nothing but the secure values applied;
//   - paths stay NUL-terminated inside their buffers; enums stay in range;
//   - security dimensions are never isolated (never escalate, whatever the input);
//   - parsing is deterministic (a second parse gives the same result).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "options.h"

namespace {

struct Sink {
  int lines = 0;
};

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "options_fuzzer: property violated: %s\n", what);
    abort();
  }
}

void OnLine(const char* line, void* ctx) {
  static_cast<Sink*>(ctx)->lines++;
  size_t n = strlen(line);
  Check(n > 0 && n < 1024, "line length");
  Check(line[n - 1] == '\n', "line ends with a newline");
  Check(strstr(line, "PRISTINE_OPTIONS") != nullptr, "line names PRISTINE_OPTIONS");
  for (size_t i = 0; i + 1 < n; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    Check(c >= 0x20 && c < 0x7f, "line is printable ASCII");
  }
}

bool Same(const pristine::Options& a, const pristine::Options& b) {
  return a.mode == b.mode && a.verify == b.verify && a.baseline == b.baseline &&
         a.forward_all == b.forward_all && a.isolated == b.isolated && a.log == b.log &&
         a.log_explicit == b.log_explicit && a.verbosity == b.verbosity &&
         a.report_empty == b.report_empty && a.help == b.help &&
         strcmp(a.log_path, b.log_path) == 0 && strcmp(a.report_path, b.report_path) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The environment variable is a C string: stop at the first NUL, as getenv would.
  std::string text(reinterpret_cast<const char*>(data), size);
  text.resize(strlen(text.c_str()));

  pristine::Options o;
  Sink sink;
  int errors = pristine::ParseOptions(text.c_str(), &o, OnLine, &sink);
  Check(errors == sink.lines, "errors == lines");
  Check(errors >= 0, "errors >= 0");
  Check(memchr(o.log_path, '\0', sizeof o.log_path) != nullptr, "log_path terminated");
  Check(memchr(o.report_path, '\0', sizeof o.report_path) != nullptr, "report_path terminated");
  Check(static_cast<int>(o.mode) <= 2 && static_cast<int>(o.verify) <= 1 &&
            static_cast<int>(o.baseline) <= 1 && static_cast<int>(o.log) <= 2 &&
            o.verbosity >= 0 && o.verbosity <= 2,
        "enums in range");
  Check(!o.isolated.intersects(pristine::kSecurityDims), "security dims never isolated");
  Check((o.isolated - pristine::DimSet::All()).empty(), "isolated within All()");
  Check(o.log != pristine::LogDest::kFile || o.log_path[0] != '\0', "log file has a path");

  pristine::Options again;
  Check(pristine::ParseOptions(text.c_str(), &again, nullptr, nullptr) == errors, "deterministic");
  Check(Same(o, again), "deterministic result");

  pristine::Options secure;
  Sink secure_sink;
  int ignored = pristine::ParseOptions(text.c_str(), &secure, OnLine, &secure_sink,
                                       pristine::Execution::kSecure);
  Check(secure_sink.lines == (ignored > 0 ? 1 : 0), "secure: one line iff something ignored");
  Check(secure.report_path[0] == '\0', "secure: no report");
  Check(secure.log == pristine::LogDest::kStderr || secure.log == pristine::LogDest::kOff,
        "secure: no log file");
  Check(!secure.log_explicit || secure.log == pristine::LogDest::kOff,
        "secure: no explicit log=stderr (it would add call-site lines)");
  Check(secure.verify == pristine::Verify::kFast && secure.baseline == pristine::BaselineMode::kLoad &&
            !secure.forward_all && secure.verbosity <= 1 &&
            !secure.help && !secure.report_empty,
        "secure: nothing beyond the defaults");
  Check((secure.isolated - pristine::kDefaultIsolated).empty(), "secure: isolates no more");
  return 0;
}
