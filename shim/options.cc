// SPDX-License-Identifier: Apache-2.0
#include "absl/base/attributes.h"
#include "options.h"

#include <fcntl.h>
#include <sys/auxv.h>

#include <cstdlib>
#include <cstring>

#include "log.h"
#include "pristine_version.h"
#include "raw_syscall.h"

namespace pristine {
namespace {

constexpr const char kVariable[] = "PRISTINE_OPTIONS";
constexpr const char kPathWord[] = "PATH";
constexpr size_t kPathWordLen = sizeof kPathWord - 1;
// Bytes of a bad token quoted back, before escaping.
constexpr size_t kMaxQuoted = 120;

bool Equals(const char* s, size_t len, const char* word, size_t wlen) {
  return wlen == len && memcmp(s, word, len) == 0;
}

// Calls f(word, len, index) for each '|'-separated word of `values`; stops when f returns true.
template <typename F>
void ForEachWord(const char* values, F f) {
  int index = 0;
  for (const char* w = values; *w != '\0';) {
    const char* bar = strchr(w, '|');
    size_t len = bar != nullptr ? static_cast<size_t>(bar - w) : strlen(w);
    if (f(w, len, index)) return;
    ++index;
    if (bar == nullptr) return;
    w = bar + 1;
  }
}

// The position of `value` among the named words of `values` (never the PATH placeholder), or -1.
int IndexOf(const char* values, const char* value, size_t len) {
  int found = -1;
  ForEachWord(values, [&](const char* w, size_t wlen, int i) {
    if (Equals(w, wlen, kPathWord, kPathWordLen) || !Equals(value, len, w, wlen)) return false;
    found = i;
    return true;
  });
  return found;
}

bool CopyPath(const char* value, size_t len, char* out) {
  if (len == 0 || len >= static_cast<size_t>(kMaxPathLen)) return false;
  memcpy(out, value, len);
  out[len] = '\0';
  return true;
}

// --- Setters, one per field type (options.inc's Type column) ---------------------------------

template <typename E>
bool SetValue(const char* values, const char* v, size_t n, E* field, Options*) {
  int i = IndexOf(values, v, n);
  if (i < 0) return false;
  *field = static_cast<E>(i);  // enumerators, and numbers, are in the order of `values`
  return true;
}

bool SetValue(const char*, const char* v, size_t n, PathBuf* field, Options*) {
  return CopyPath(v, n, *field);
}

bool SetValue(const char* values, const char* v, size_t n, LogDest* field, Options* o) {
  int i = IndexOf(values, v, n);
  if (i >= 0) {
    *field = static_cast<LogDest>(i);
  } else if (CopyPath(v, n, o->log_path)) {
    *field = LogDest::kFile;
  } else {
    return false;
  }
  o->log_explicit = *field != LogDest::kOff;
  return true;
}

template <typename T>
constexpr int DefaultIndex(T value) {
  return static_cast<int>(value);
}
constexpr int DefaultIndex(const char*) { return -1; }  // an unset path

// Appends `s` with every byte outside printable ASCII (control bytes, DEL, bytes >= 0x80) and
// the backslash written as \xNN / \\, so that a token never reaches a terminal raw.
void AppendEscaped(LogLine& line, const char* s, size_t len) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool cut = len > kMaxQuoted;
  if (cut) len = kMaxQuoted;
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      line.Append("\\\\", 2);
    } else if (c >= 0x20 && c < 0x7f) {
      line.Append(s + i, 1);
    } else {
      char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      line.Append(esc, 4);
    }
  }
  if (cut) line << "...";
}

// "a, b or c"; PATH reads "a file path of up to 511 bytes".
void AppendAccepted(LogLine& line, const char* values) {
  int count = 0;
  ForEachWord(values, [&](const char*, size_t, int) { return ++count, false; });
  ForEachWord(values, [&](const char* w, size_t wlen, int i) {
    if (i > 0) line << (i == count - 1 ? " or " : ", ");
    if (Equals(w, wlen, kPathWord, kPathWordLen)) {
      line << "a file path of up to " << (kMaxPathLen - 1) << " bytes";
    } else {
      line.Append(w, wlen);
    }
    return false;
  });
}

void AppendAllKeys(LogLine& line) {
  for (int i = 0; i < kOptionCount; ++i) line << (i ? ", " : "") << kOptionSpecs[i].key;
  for (int d = 0; d < kDimCount; ++d) line << ", " << DimName(static_cast<Dim>(d));
}

class Parser {
 public:
  Parser(Options* out, OptionsErrorSink sink, void* ctx, Execution execution)
      : out_(out), sink_(sink), ctx_(ctx), secure_(execution == Execution::kSecure) {}

  void Token(const char* tok, size_t len) {
    const char* eq = static_cast<const char*>(memchr(tok, '=', len));
    if (eq == nullptr) {
      Bad(tok, len, [](LogLine& l) {
        l << "expected key=value; keys: ";
        AppendAllKeys(l);
      });
      return;
    }
    const char* key = tok;
    size_t klen = static_cast<size_t>(eq - tok);
    const char* val = eq + 1;
    size_t vlen = len - klen - 1;
    for (int i = 0; i < kOptionCount; ++i) {
      const OptionSpec& spec = kOptionSpecs[i];
      if (!Equals(key, klen, spec.key, strlen(spec.key))) continue;
      if (secure_ && IndexOf(spec.secure, val, vlen) < 0) {
        Ignored(i);
        return;
      }
      if (!spec.set(out_, val, vlen)) {
        Bad(tok, len, [&spec](LogLine& l) {
          l << spec.key << " accepts ";
          AppendAccepted(l, spec.values);
        });
      }
      return;
    }
    Dim d;
    if (!DimFromName(key, static_cast<unsigned>(klen), &d)) {
      Bad(tok, len, [](LogLine& l) {
        l << "unknown key; keys are ";
        AppendAllKeys(l);
      });
      return;
    }
    DimensionToken(tok, len, d, val, vlen);
  }

  // Secure execution: the one line that says what was not applied.
  void Summarise() {
    if (!secure_ || (ignored_keys_ == 0 && ignored_dims_.empty() && bad_ == 0)) return;
    LogLine line;
    line << "pristine: " << kVariable << ": secure-execution program (set-user-ID, "
            "set-group-ID or file capabilities): ignoring ";
    bool first = true;
    for (int i = 0; i < kOptionCount; ++i) {
      if ((ignored_keys_ & (1u << i)) == 0) continue;
      line << (first ? "" : ", ") << kOptionSpecs[i].key;
      first = false;
    }
    ForEachDim(ignored_dims_, [&](Dim d) {
      line << (first ? "" : ", ") << DimName(d) << "=isolate";
      first = false;
    });
    if (bad_ > 0) line << (first ? "" : ", ") << bad_ << " unrecognised setting(s)";
    line << "; only settings that make pristine do less apply here";
    if (sink_) sink_(line.Finish(), ctx_);
  }

  int not_applied() const { return not_applied_; }

 private:
  void DimensionToken(const char* tok, size_t len, Dim d, const char* val, size_t vlen) {
    bool isolate = Equals(val, vlen, "isolate", 7);
    bool inherit = Equals(val, vlen, "inherit", 7);
    if (kSecurityDims.has(d)) {
      // Never escalate: the new thread always keeps the caller's privileges and restrictions.
      // "inherit" states exactly that; nothing else is allowed.
      if (!inherit) {
        Bad(tok, len, [](LogLine& l) {
          l << "privileges and restrictions always follow the caller (never escalate); "
               "the only value is inherit";
        });
      }
      return;
    }
    if (inherit) {
      out_->isolated = out_->isolated - d;
    } else if (!isolate) {
      Bad(tok, len, [d](LogLine& l) { l << DimName(d) << " accepts isolate or inherit"; });
    } else if (secure_) {
      ++not_applied_;
      ignored_dims_ |= d;
    } else {
      out_->isolated |= d;
    }
  }

  void Ignored(int index) {
    ++not_applied_;
    ignored_keys_ |= 1u << index;
  }

  // `why(line)` appends what is accepted.
  template <typename Why>
  void Bad(const char* tok, size_t len, Why why) {
    ++not_applied_;
    if (secure_) {
      // Counted for the summary: the caller of a set-user-ID program gets no echo of its input.
      ++bad_;
      return;
    }
    LogLine line;
    line << "pristine: " << kVariable << ": ignoring '";
    AppendEscaped(line, tok, len);
    line << "': ";
    why(line);
    line << "; the default applies";
    if (sink_) sink_(line.Finish(), ctx_);
  }

  Options* out_;
  OptionsErrorSink sink_;
  void* ctx_;
  bool secure_;
  int not_applied_ = 0;
  int bad_ = 0;
  uint32_t ignored_keys_ = 0;  // bit i: kOptionSpecs[i]
  DimSet ignored_dims_;
};

void StderrSink(const char* line, void*) { LogRaw(2, line); }

// Fd 2 is open: a secure-execution program whose caller closed it must not have its next open()
// written to.
bool StderrIsOpen() { return RawSyscall(SYS_fcntl, 2, F_GETFD) >= 0; }

ABSL_CONST_INIT Options g_options;
ABSL_CONST_INIT bool g_wrapper = false;
ABSL_CONST_INIT const char* g_text = nullptr;

}  // namespace

#define PRISTINE_OPTION(Type, key, field, default_value, values, secure, help)            \
  {#key, values, secure, help, DefaultIndex(default_value),                                \
   [](Options* o, const char* v, size_t n) { return SetValue(values, v, n, &o->field, o); }},
const OptionSpec kOptionSpecs[] = {
#include "options.inc"
};
#undef PRISTINE_OPTION
const int kOptionCount = sizeof kOptionSpecs / sizeof kOptionSpecs[0];
static_assert(sizeof kOptionSpecs / sizeof kOptionSpecs[0] <= 32,
              "Parser::ignored_keys_ has one bit per key");

int ParseOptions(const char* text, Options* out, OptionsErrorSink sink, void* ctx,
                 Execution execution) {
  Parser p(out, sink, ctx, execution);
  if (text == nullptr) return 0;
  const char* start = text;
  for (const char* c = text;; ++c) {
    if (*c == ':' || *c == '\0') {
      if (c > start) p.Token(start, static_cast<size_t>(c - start));
      if (*c == '\0') break;
      start = c + 1;
    }
  }
  p.Summarise();
  return p.not_applied();
}

void WriteOptionsHelp(OptionsErrorSink sink, void* ctx) {
  {
    LogLine line;
    line << "pristine " << PRISTINE_VERSION << ": " << kVariable
         << " is key=value pairs separated by ':'; the keys:";
    sink(line.Finish(), ctx);
  }
  for (int i = 0; i < kOptionCount; ++i) {
    const OptionSpec& spec = kOptionSpecs[i];
    LogLine line;
    line << "  " << spec.key << "=" << spec.values << " (default: ";
    if (spec.default_index < 0) {
      line << "none";
    } else {
      ForEachWord(spec.values, [&](const char* w, size_t wlen, int index) {
        if (index == spec.default_index) line.Append(w, wlen);
        return index == spec.default_index;
      });
    }
    line << ") " << spec.help;
    sink(line.Finish(), ctx);
  }
  for (int d = 0; d < kDimCount; ++d) {
    Dim dim = static_cast<Dim>(d);
    LogLine line;
    if (kSecurityDims.has(dim)) {
      line << "  " << DimName(dim) << "=inherit (default: inherit) never escalate: a new "
           << "thread keeps its creator's " << DimName(dim) << ", whatever the options say";
    } else {
      line << "  " << DimName(dim) << "=isolate|inherit (default: "
           << (kDefaultIsolated.has(dim) ? "isolate" : "inherit") << ") isolate: a new thread "
           << "gets the baseline's " << DimName(dim) << "; inherit: its creator's";
    }
    sink(line.Finish(), ctx);
  }
  LogLine line;
  line << "In a set-user-ID, set-group-ID or file-capability program only these apply: ";
  bool first = true;
  for (int i = 0; i < kOptionCount; ++i) {
    const OptionSpec& spec = kOptionSpecs[i];
    if (spec.secure[0] == '\0') continue;
    line << (first ? "" : ", ") << spec.key << "=" << spec.secure;
    first = false;
  }
  line << ", and a dimension's inherit";
  sink(line.Finish(), ctx);
}

const Options& CurrentOptions() { return g_options; }

bool StartedByWrapper() { return g_wrapper; }

const char* OptionsText() { return g_text; }

void LoadOptions() {
  bool secure = getauxval(AT_SECURE) != 0;
  // getenv is safe here: environ is set up before any constructor runs.
  const char* text = getenv(kVariable);
  g_text = text;
  if (!secure) {
    g_wrapper = getenv("PRISTINE_RUN") != nullptr;
    ParseOptions(text, &g_options, StderrSink, nullptr);
    if (g_options.help) WriteOptionsHelp(StderrSink, nullptr);
    return;
  }
  ParseOptions(text, &g_options, StderrIsOpen() ? StderrSink : nullptr, nullptr,
               Execution::kSecure);
}

}  // namespace pristine
