// SPDX-License-Identifier: Apache-2.0
// PRISTINE_OPTIONS: `key=value` pairs separated by ':' (as ASAN_OPTIONS).
//
// The keys are declared once, in options.inc; the Options fields, the parser, its error
// messages and the help=1 text all come from there. Parsed once, at library load, from the
// environment. Parsing never allocates and never fails the host: a bad token produces one line
// through the sink naming the variable, the token (control bytes escaped) and what is accepted,
// and that key keeps its value.
//
// Secure execution (getauxval(AT_SECURE): set-user-ID, set-group-ID and file-capability
// programs): the environment belongs to whoever started the program, so only the values that
// make the library do no more than by default are honoured (the `secure` column of options.inc:
// mode, verify=fast, baseline=load, forward=auto, log=off, verbosity=0|1, a dimension's
// inherit); everything else, report= and log=PATH first of all, is ignored, and one line says so.
#ifndef PRISTINE_SHIM_OPTIONS_H_
#define PRISTINE_SHIM_OPTIONS_H_

#include <cstddef>
#include <cstdint>

#include "dimension.h"

namespace pristine {

// The enumerators of each enum are in the order of the key's `values` in options.inc.
enum class Mode : uint8_t { kEnforce, kAudit, kOff };
enum class Verify : uint8_t { kFast, kStrict };
enum class BaselineMode : uint8_t { kLoad, kFirstThread };
enum class LogDest : uint8_t { kStderr, kOff, kFile };

constexpr int kMaxPathLen = 512;
using PathBuf = char[kMaxPathLen];  // a NUL-terminated path; "" when not given

struct Options {
#define PRISTINE_OPTION(Type, key, field, default_value, values, secure, help) \
  Type field = default_value;
#include "options.inc"
#undef PRISTINE_OPTION
  // The per-dimension keys: the dimensions whose drift a create is forwarded for.
  DimSet isolated = kDefaultIsolated;
  // log=PATH (log == LogDest::kFile): the path.
  PathBuf log_path = "";
  // The last log= token applied named stderr or a file (not off). The default logs warnings
  // only; an explicit log=stderr or log=PATH also logs each new tainted call site.
  bool log_explicit = false;
};

// One row of options.inc, for the parser, the help text and the tests.
struct OptionSpec {
  const char* key;
  const char* values;  // '|'-separated; "PATH" stands for a path
  const char* secure;  // the values honoured in a secure-execution program
  const char* help;
  int default_index;   // the default's position in `values`; -1: none (an unset path)
  // Applies `value` (of `len` bytes, not terminated); false if it is not accepted.
  bool (*set)(Options* out, const char* value, size_t len);
};

// The rows of options.inc, in order.
extern const OptionSpec kOptionSpecs[];
extern const int kOptionCount;

// Receives one complete, newline-terminated line.
using OptionsErrorSink = void (*)(const char* line, void* ctx);

enum class Execution : uint8_t {
  kNormal,  // every accepted value applies; one sink line per bad token
  kSecure,  // AT_SECURE: only the `secure` values apply; at most one sink line in all
};

// Parses `text` (may be null or empty) over `out`, which holds the defaults. Returns the number
// of tokens not applied (bad, or ignored in secure execution). Pure: reads nothing but its
// arguments.
int ParseOptions(const char* text, Options* out, OptionsErrorSink sink, void* ctx,
                 Execution execution = Execution::kNormal);

// The help=1 text: a header line, then one line per key (values, default, meaning), the
// per-dimension keys included, then which values a secure-execution program honours.
void WriteOptionsHelp(OptionsErrorSink sink, void* ctx);

// The options in force, parsed from the environment by LoadOptions().
const Options& CurrentOptions();

// Whether pristine-run started the program (it sets PRISTINE_RUN), so that hints can name its
// flags rather than PRISTINE_OPTIONS keys. Read by LoadOptions().
bool StartedByWrapper();

// The PRISTINE_OPTIONS text LoadOptions() parsed, as the environment held it then (null if
// unset): for the report, which copies it at load.
const char* OptionsText();

// Called once from the library constructor, or from the first interposed call that comes
// before it, on that thread. Errors and help=1 go to stderr.
void LoadOptions();

}  // namespace pristine

#endif  // PRISTINE_SHIM_OPTIONS_H_
