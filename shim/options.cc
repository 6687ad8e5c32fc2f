// SPDX-License-Identifier: Apache-2.0
#include "options.h"

#include <cstdlib>
#include <cstring>

#include "log.h"

namespace pristine {
namespace {

constexpr const char kVariable[] = "PRISTINE_OPTIONS";

bool Equals(const char* s, size_t len, const char* word) {
  return strlen(word) == len && memcmp(s, word, len) == 0;
}

struct Parser {
  Options* out;
  OptionsErrorSink sink;
  void* ctx;
  int errors = 0;

  void Bad(const char* tok, size_t len, const char* why) {
    ++errors;
    LogLine line;
    line << "pristine: " << kVariable << ": ignoring '";
    line.Append(tok, len > 200 ? 200 : len);
    line << "': " << why << "; the default applies";
    if (sink) sink(line.Finish(), ctx);
  }

  void Token(const char* tok, size_t len) {
    const char* eq = static_cast<const char*>(memchr(tok, '=', len));
    if (eq == nullptr) {
      Bad(tok, len, "expected key=value (keys: mode, verify, report, report_empty, log, verbosity, "
                    "baseline, "
                    "or a dimension such as net or affinity)");
      return;
    }
    const char* key = tok;
    size_t klen = static_cast<size_t>(eq - tok);
    const char* val = eq + 1;
    size_t vlen = len - klen - 1;

    if (Equals(key, klen, "mode")) {
      if (Equals(val, vlen, "enforce")) out->mode = Mode::kEnforce;
      else if (Equals(val, vlen, "audit")) out->mode = Mode::kAudit;
      else if (Equals(val, vlen, "off")) out->mode = Mode::kOff;
      else Bad(tok, len, "mode accepts enforce, audit or off");
    } else if (Equals(key, klen, "verify")) {
      if (Equals(val, vlen, "fast")) out->verify = Verify::kFast;
      else if (Equals(val, vlen, "strict")) out->verify = Verify::kStrict;
      else Bad(tok, len, "verify accepts fast or strict");
    } else if (Equals(key, klen, "baseline")) {
      if (Equals(val, vlen, "load")) out->baseline = BaselineMode::kLoad;
      else if (Equals(val, vlen, "first-thread")) out->baseline = BaselineMode::kFirstThread;
      else Bad(tok, len, "baseline accepts load or first-thread");
    } else if (Equals(key, klen, "forward")) {
      if (Equals(val, vlen, "auto")) out->forward_all = false;
      else if (Equals(val, vlen, "all")) out->forward_all = true;
      else Bad(tok, len, "forward accepts auto or all");
    } else if (Equals(key, klen, "report")) {
      if (vlen == 0 || vlen >= kMaxPathLen) {
        Bad(tok, len, "report accepts a file path (up to 511 bytes; %p becomes the pid)");
      } else {
        memcpy(out->report_path, val, vlen);
        out->report_path[vlen] = '\0';
      }
    } else if (Equals(key, klen, "log")) {
      if (Equals(val, vlen, "stderr")) out->log = LogDest::kStderr;
      else if (Equals(val, vlen, "off")) out->log = LogDest::kOff;
      else if (vlen == 0 || vlen >= kMaxPathLen) {
        Bad(tok, len, "log accepts stderr, off or a file path (up to 511 bytes; %p becomes "
                      "the pid)");
        return;
      } else {
        out->log = LogDest::kFile;
        memcpy(out->log_path, val, vlen);
        out->log_path[vlen] = '\0';
      }
      out->log_explicit = out->log != LogDest::kOff;
    } else if (Equals(key, klen, "report_empty")) {
      if (Equals(val, vlen, "1")) out->report_empty = true;
      else if (Equals(val, vlen, "0")) out->report_empty = false;
      else Bad(tok, len, "report_empty accepts 0 or 1");
    } else if (Equals(key, klen, "verbosity")) {
      if (vlen == 1 && val[0] >= '0' && val[0] <= '2') out->verbosity = val[0] - '0';
      else Bad(tok, len, "verbosity accepts 0, 1 or 2");
    } else {
      Dim d;
      if (!DimFromName(key, static_cast<unsigned>(klen), &d)) {
        Bad(tok, len, "unknown key; keys are mode, verify, report, report_empty, log, verbosity, "
                      "baseline, net, "
                      "uts, ipc, mnt, cgroup, pid, time, fs, files, affinity, sigmask, "
                      "sched, name, caps, nnp, seccomp, landlock, creds");
        return;
      }
      bool isolate = Equals(val, vlen, "isolate");
      bool inherit = Equals(val, vlen, "inherit");
      if (kSecurityDims.has(d)) {
        // Never escalate: the new thread always keeps the caller's privileges
        // and restrictions. "inherit" states exactly that; nothing else is allowed.
        if (!inherit) {
          Bad(tok, len, "privileges and restrictions always follow the caller "
                        "(never escalate); the only value is inherit");
        }
        return;
      }
      if (isolate) out->isolated |= d;
      else if (inherit) out->isolated = out->isolated - d;
      else Bad(tok, len, "a dimension accepts isolate or inherit");
    }
  }
};

void StderrSink(const char* line, void*) { LogRaw(2, line); }

Options g_options;

}  // namespace

int ParseOptions(const char* text, Options* out, OptionsErrorSink sink, void* ctx) {
  Parser p{out, sink, ctx};
  if (text == nullptr) return 0;
  const char* start = text;
  for (const char* c = text;; ++c) {
    if (*c == ':' || *c == '\0') {
      if (c > start) p.Token(start, static_cast<size_t>(c - start));
      if (*c == '\0') break;
      start = c + 1;
    }
  }
  return p.errors;
}

const Options& CurrentOptions() { return g_options; }

void LoadOptions() {
  // getenv is safe here: environ is set up before any constructor runs.
  ParseOptions(getenv(kVariable), &g_options, StderrSink, nullptr);
}

}  // namespace pristine
