// SPDX-License-Identifier: Apache-2.0
// PRISTINE_OPTIONS: `key=value` pairs separated by ':' (as ASAN_OPTIONS).
//
// Parsed once, at library load, from the environment. Parsing never allocates
// and never fails the host: a bad token produces one line through the error
// sink naming the variable, the token and what is accepted, and that token's
// default stays in force.
#ifndef PRISTINE_SHIM_OPTIONS_H_
#define PRISTINE_SHIM_OPTIONS_H_

#include "dimension.h"

namespace pristine {

enum class Mode : uint8_t { kEnforce, kAudit, kOff };
enum class Verify : uint8_t { kFast, kStrict };
enum class BaselineMode : uint8_t { kLoad, kFirstThread };
enum class LogDest : uint8_t { kStderr, kOff, kFile };

// The default policy table of PRODUCT.md: isolate everything but the
// signal mask, scheduling and the thread name (security dimensions are never
// "isolated": they follow the never-escalate rule).
constexpr DimSet kDefaultIsolated =
    kNamespaceDims | Dim::kFs | Dim::kFiles | Dim::kAffinity;

constexpr int kMaxPathLen = 512;

struct Options {
  Mode mode = Mode::kEnforce;
  Verify verify = Verify::kFast;
  BaselineMode baseline = BaselineMode::kLoad;
  DimSet isolated = kDefaultIsolated;
  LogDest log = LogDest::kStderr;
  bool log_explicit = false;  // a log= token was given (not log=off)
  char log_path[kMaxPathLen] = {};
  char report_path[kMaxPathLen] = {};  // empty: no report
  // A report even from a process that created no thread.
  bool report_empty = false;
  // How much goes to the log: 0 problems only; 1 also warnings and hints, and
  // each new call site when log= is given; 2 each new call site wherever the
  // log goes, and each report update.
  int verbosity = 1;
  bool forward_all = false;  // forward=all: every isolating create is forwarded
};

// Receives one complete, newline-terminated message per bad token.
using OptionsErrorSink = void (*)(const char* line, void* ctx);

// Parses `text` (may be null or empty) over `out`, which holds the defaults.
// Returns the number of bad tokens. Pure: reads nothing but its arguments.
int ParseOptions(const char* text, Options* out, OptionsErrorSink sink, void* ctx);

// The options in force, parsed from the environment by LoadOptions().
const Options& CurrentOptions();

// Called once from the library constructor, or from the first interposed call
// that comes before it. Errors go to stderr.
void LoadOptions();

}  // namespace pristine

#endif  // PRISTINE_SHIM_OPTIONS_H_
