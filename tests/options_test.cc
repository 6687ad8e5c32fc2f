// SPDX-License-Identifier: Apache-2.0
// PRISTINE_OPTIONS (shim/options.h): the table of options.inc, the parser (every key and value;
// bad tokens: exactly one line each, naming the variable, the token with control bytes escaped
// and what is accepted; the defaults stay), secure execution, the help=1 text, and
// fuzz/options.dict against the table.

#include "options.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pristine_version.h"

#include "gtest/gtest.h"

namespace pristine {
namespace {

struct Parsed {
  Options options;
  int errors = 0;
  std::vector<std::string> lines;
};

void Collect(const char* line, void* ctx) {
  static_cast<std::vector<std::string>*>(ctx)->push_back(line);
}

Parsed Parse(const char* text) {
  Parsed p;
  p.errors = ParseOptions(text, &p.options, Collect, &p.lines);
  return p;
}

Parsed ParseSecure(const char* text) {
  Parsed p;
  p.errors = ParseOptions(text, &p.options, Collect, &p.lines, Execution::kSecure);
  return p;
}

bool SameOptions(const Options& a, const Options& b) {
  return a.mode == b.mode && a.verify == b.verify && a.baseline == b.baseline &&
         a.forward_all == b.forward_all && a.isolated == b.isolated && a.log == b.log &&
         a.log_explicit == b.log_explicit && a.verbosity == b.verbosity &&
         a.report_empty == b.report_empty && a.help == b.help &&
         std::strcmp(a.log_path, b.log_path) == 0 && std::strcmp(a.report_path, b.report_path) == 0;
}

std::vector<std::string> Words(const char* values) {
  std::vector<std::string> out;
  std::stringstream in(values);
  for (std::string w; std::getline(in, w, '|');) out.push_back(w);
  return out;
}

std::vector<std::string> HelpLines() {
  std::vector<std::string> lines;
  WriteOptionsHelp(Collect, &lines);
  return lines;
}

const char* const kAllDims[] = {"net", "uts", "ipc", "mnt", "cgroup", "pid", "time", "fs", "files",
                                "affinity", "sigmask", "sched", "name", "caps", "nnp", "seccomp",
                                "landlock", "creds"};

TEST(Options, DefaultsMatchTheReadmeTable) {
  Options o;
  EXPECT_EQ(o.mode, Mode::kEnforce);
  EXPECT_EQ(o.verify, Verify::kFast);
  EXPECT_EQ(o.baseline, BaselineMode::kLoad);
  EXPECT_FALSE(o.forward_all);
  EXPECT_EQ(o.log, LogDest::kStderr);
  EXPECT_FALSE(o.log_explicit);
  EXPECT_EQ(o.verbosity, 1);
  EXPECT_FALSE(o.report_empty);
  EXPECT_FALSE(o.help);
  EXPECT_STREQ(o.report_path, "");
  for (Dim d : {Dim::kNet, Dim::kUts, Dim::kIpc, Dim::kMnt, Dim::kCgroup, Dim::kPid, Dim::kTime,
                Dim::kFs, Dim::kFiles, Dim::kAffinity}) {
    EXPECT_TRUE(o.isolated.has(d)) << DimName(d);
  }
  for (Dim d : {Dim::kSigmask, Dim::kSched, Dim::kName, Dim::kCaps, Dim::kNnp, Dim::kSeccomp,
                Dim::kLandlock, Dim::kCreds}) {
    EXPECT_FALSE(o.isolated.has(d)) << DimName(d);
  }
}

TEST(Options, NullAndEmptyAreDefaults) {
  for (const char* text : {static_cast<const char*>(nullptr), "", ":", ":::"}) {
    Parsed p = Parse(text);
    EXPECT_EQ(p.errors, 0) << (text ? text : "(null)");
    EXPECT_TRUE(p.lines.empty());
    EXPECT_TRUE(SameOptions(p.options, Options{}));
  }
}

TEST(Options, EveryModeVerifyBaselineValue) {
  EXPECT_EQ(Parse("mode=audit").options.mode, Mode::kAudit);
  EXPECT_EQ(Parse("mode=off").options.mode, Mode::kOff);
  EXPECT_EQ(Parse("mode=audit:mode=enforce").options.mode, Mode::kEnforce);
  EXPECT_EQ(Parse("verify=strict").options.verify, Verify::kStrict);
  EXPECT_EQ(Parse("verify=strict:verify=fast").options.verify, Verify::kFast);
  EXPECT_EQ(Parse("baseline=first-thread").options.baseline, BaselineMode::kFirstThread);
  EXPECT_EQ(Parse("baseline=first-thread:baseline=load").options.baseline, BaselineMode::kLoad);
  Parsed all = Parse("mode=audit:verify=strict:baseline=first-thread");
  EXPECT_EQ(all.errors, 0);
  EXPECT_TRUE(all.lines.empty());
}

TEST(Options, ReportAndLogPaths) {
  Parsed p = Parse("report=/tmp/r-%p.json:log=/tmp/pristine.log");
  EXPECT_EQ(p.errors, 0);
  EXPECT_STREQ(p.options.report_path, "/tmp/r-%p.json");
  EXPECT_EQ(p.options.log, LogDest::kFile);
  EXPECT_STREQ(p.options.log_path, "/tmp/pristine.log");
  EXPECT_EQ(Parse("log=off").options.log, LogDest::kOff);
  EXPECT_EQ(Parse("log=off:log=stderr").options.log, LogDest::kStderr);
  // The longest accepted path, and one byte more.
  std::string longest(kMaxPathLen - 1, 'a');
  Parsed ok = Parse(("report=" + longest).c_str());
  EXPECT_EQ(ok.errors, 0);
  EXPECT_EQ(std::string(ok.options.report_path), longest);
  Parsed too_long = Parse(("report=" + longest + "b").c_str());
  EXPECT_EQ(too_long.errors, 1);
  EXPECT_STREQ(too_long.options.report_path, "");
  Parsed log_long = Parse(("log=" + longest + "b").c_str());
  EXPECT_EQ(log_long.errors, 1);
  EXPECT_EQ(log_long.options.log, LogDest::kStderr);
}

TEST(Options, LogExplicitVerbosityAndReportEmpty) {
  EXPECT_FALSE(Parse("").options.log_explicit);
  EXPECT_TRUE(Parse("log=stderr").options.log_explicit);
  EXPECT_TRUE(Parse("log=/tmp/x.%p").options.log_explicit);
  EXPECT_FALSE(Parse("log=stderr:log=off").options.log_explicit);
  EXPECT_EQ(Parse("").options.verbosity, 1);
  for (int v = 0; v <= 2; ++v) {
    Parsed p = Parse(("verbosity=" + std::to_string(v)).c_str());
    EXPECT_EQ(p.errors, 0);
    EXPECT_EQ(p.options.verbosity, v);
  }
  for (const char* bad : {"verbosity=3", "verbosity=", "verbosity=-1", "verbosity=11"}) {
    Parsed p = Parse(bad);
    EXPECT_EQ(p.errors, 1) << bad;
    EXPECT_EQ(p.options.verbosity, 1) << bad;
    ASSERT_EQ(p.lines.size(), 1u);
    EXPECT_NE(p.lines[0].find("verbosity accepts 0, 1 or 2"), std::string::npos) << p.lines[0];
  }
  EXPECT_FALSE(Parse("").options.report_empty);
  EXPECT_TRUE(Parse("report_empty=1").options.report_empty);
  EXPECT_FALSE(Parse("report_empty=1:report_empty=0").options.report_empty);
  Parsed bad = Parse("report_empty=yes");
  EXPECT_EQ(bad.errors, 1);
  EXPECT_FALSE(bad.options.report_empty);
}

TEST(Options, BadTokensAreEchoedWithoutControlBytes) {
  Parsed p = Parse("mode=\x1b[31mred");
  ASSERT_EQ(p.lines.size(), 1u);
  EXPECT_EQ(p.lines[0].find('\x1b'), std::string::npos) << p.lines[0];
  EXPECT_NE(p.lines[0].find("\\x1b[31mred"), std::string::npos) << p.lines[0];
}

TEST(Options, EveryPlainDimensionIsolateAndInherit) {
  for (const char* name : kAllDims) {
    Dim d;
    ASSERT_TRUE(DimFromName(name, static_cast<unsigned>(std::strlen(name)), &d)) << name;
    if (kSecurityDims.has(d)) continue;
    Parsed iso = Parse((std::string(name) + "=isolate").c_str());
    EXPECT_EQ(iso.errors, 0) << name;
    EXPECT_TRUE(iso.options.isolated.has(d)) << name;
    EXPECT_EQ(iso.options.isolated - d, Options{}.isolated - d) << name;
    Parsed inh = Parse((std::string(name) + "=inherit").c_str());
    EXPECT_EQ(inh.errors, 0) << name;
    EXPECT_FALSE(inh.options.isolated.has(d)) << name;
    EXPECT_EQ(inh.options.isolated - d, Options{}.isolated - d) << name;
  }
}

TEST(Options, SecurityDimensionsRefuseIsolate) {
  for (const char* name : {"caps", "nnp", "seccomp", "landlock", "creds"}) {
    Parsed iso = Parse((std::string(name) + "=isolate").c_str());
    EXPECT_EQ(iso.errors, 1) << name;
    ASSERT_EQ(iso.lines.size(), 1u) << name;
    EXPECT_NE(iso.lines[0].find("PRISTINE_OPTIONS"), std::string::npos) << iso.lines[0];
    EXPECT_NE(iso.lines[0].find(std::string(name) + "=isolate"), std::string::npos) << iso.lines[0];
    EXPECT_NE(iso.lines[0].find("inherit"), std::string::npos) << iso.lines[0];
    EXPECT_TRUE(SameOptions(iso.options, Options{})) << name;
    // "inherit" states what always holds: accepted, changes nothing.
    Parsed inh = Parse((std::string(name) + "=inherit").c_str());
    EXPECT_EQ(inh.errors, 0) << name;
    EXPECT_TRUE(SameOptions(inh.options, Options{})) << name;
  }
}

struct BadCase {
  const char* token;
  std::vector<std::string> accepted;  // each must appear in the message
};

TEST(Options, EachBadTokenGivesExactlyOneClearLine) {
  const BadCase cases[] = {
      {"mode=fast", {"enforce", "audit", "off"}},
      {"mode=", {"enforce", "audit", "off"}},
      {"verify=slow", {"fast", "strict"}},
      {"baseline=never", {"load", "first-thread"}},
      {"report=", {"path"}},
      {"log=", {"stderr", "off", "path"}},
      {"net=yes", {"isolate", "inherit"}},
      {"affinity=", {"isolate", "inherit"}},
      {"colour=blue", {"mode", "verify", "net"}},
      {"=isolate", {"mode", "net"}},
      {"justaword", {"key=value"}},
      {"NET=isolate", {"net"}},
      {"mode=Audit", {"audit"}},
      {"forward=some", {"auto", "all"}},
      {"verbosity=3", {"0", "1", "2"}},
      {"verbosity=-1", {"0", "1", "2"}},
      {"verbosity=01", {"0", "1", "2"}},
      {"report_empty=yes", {"0", "1"}},
      {"help=2", {"0", "1"}},
  };
  for (const BadCase& c : cases) {
    Parsed p = Parse(c.token);
    EXPECT_EQ(p.errors, 1) << c.token;
    ASSERT_EQ(p.lines.size(), 1u) << c.token;
    const std::string& line = p.lines[0];
    EXPECT_NE(line.find("PRISTINE_OPTIONS"), std::string::npos) << line;
    EXPECT_NE(line.find(std::string("'") + c.token + "'"), std::string::npos) << line;
    for (const std::string& a : c.accepted) EXPECT_NE(line.find(a), std::string::npos) << line;
    EXPECT_EQ(line.back(), '\n') << line;
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
    EXPECT_TRUE(SameOptions(p.options, Options{})) << c.token;
  }
}

TEST(Options, BadTokensDoNotDisturbGoodOnes) {
  Parsed p = Parse("mode=audit:bogus:net=inherit:verify=sometimes:sigmask=isolate:caps=isolate");
  EXPECT_EQ(p.errors, 3);
  EXPECT_EQ(p.lines.size(), 3u);
  EXPECT_EQ(p.options.mode, Mode::kAudit);
  EXPECT_EQ(p.options.verify, Verify::kFast);
  EXPECT_FALSE(p.options.isolated.has(Dim::kNet));
  EXPECT_TRUE(p.options.isolated.has(Dim::kSigmask));
  EXPECT_FALSE(p.options.isolated.has(Dim::kCaps));
  EXPECT_NE(p.lines[0].find("'bogus'"), std::string::npos);
  EXPECT_NE(p.lines[1].find("'verify=sometimes'"), std::string::npos);
  EXPECT_NE(p.lines[2].find("'caps=isolate'"), std::string::npos);
}

TEST(Options, ParsingIsOverTheGivenOptions) {
  Options o;
  o.mode = Mode::kAudit;
  o.isolated = DimSet(Dim::kNet);
  std::vector<std::string> lines;
  EXPECT_EQ(ParseOptions("uts=isolate", &o, Collect, &lines), 0);
  EXPECT_EQ(o.mode, Mode::kAudit);
  EXPECT_EQ(o.isolated, DimSet(Dim::kNet) | Dim::kUts);
}

TEST(Options, NullSinkStillCounts) {
  Options o;
  EXPECT_EQ(ParseOptions("x:y=z:mode=audit", &o, nullptr, nullptr), 2);
  EXPECT_EQ(o.mode, Mode::kAudit);
}

TEST(Options, HugeTokenIsCutNotOverflowed) {
  std::string huge(100000, 'k');
  Parsed p = Parse(huge.c_str());
  EXPECT_EQ(p.errors, 1);
  ASSERT_EQ(p.lines.size(), 1u);
  EXPECT_LT(p.lines[0].size(), 1024u);
  EXPECT_NE(p.lines[0].find("PRISTINE_OPTIONS"), std::string::npos);
}

// --- The table itself ------------------------------------------------------------------------

TEST(OptionsTable, EveryRowIsWellFormed) {
  std::set<std::string> keys;
  ASSERT_GT(kOptionCount, 0);
  for (int i = 0; i < kOptionCount; ++i) {
    const OptionSpec& s = kOptionSpecs[i];
    SCOPED_TRACE(s.key);
    EXPECT_TRUE(keys.insert(s.key).second) << "duplicate key";
    Dim d;
    EXPECT_FALSE(DimFromName(s.key, static_cast<unsigned>(std::strlen(s.key)), &d))
        << "a key that is also a dimension";
    std::vector<std::string> values = Words(s.values);
    ASSERT_FALSE(values.empty());
    EXPECT_GT(std::strlen(s.help), 10u);
    EXPECT_EQ(std::strchr(s.help, '\n'), nullptr);
    if (s.default_index >= 0) {
      EXPECT_LT(s.default_index, static_cast<int>(values.size()));
    }
    // Every honoured-in-secure value is an accepted named value, never a path.
    if (s.secure[0] != '\0') {
      for (const std::string& v : Words(s.secure)) {
        EXPECT_NE(v, "PATH");
        EXPECT_NE(std::find(values.begin(), values.end(), v), values.end()) << v;
      }
    }
    // Each named value is accepted and sets something; a numeric key's values are 0, 1, ...
    for (size_t j = 0; j < values.size(); ++j) {
      if (values[j] == "PATH") continue;
      Options o;
      EXPECT_TRUE(s.set(&o, values[j].data(), values[j].size())) << values[j];
      if (values[j][0] >= '0' && values[j][0] <= '9') {
        EXPECT_EQ(values[j], std::to_string(j));
      }
    }
    Options empty;
    EXPECT_FALSE(s.set(&empty, "", 0)) << "an empty value is refused";
  }
  for (const char* k : {"mode", "verify", "baseline", "forward", "report", "report_empty", "log",
                        "verbosity", "help"}) {
    EXPECT_EQ(keys.count(k), 1u) << k;
  }
}

TEST(OptionsTable, EnumValuesFollowTheirEnumerators) {
  EXPECT_EQ(Parse("mode=enforce").options.mode, Mode::kEnforce);
  EXPECT_EQ(Parse("mode=off").options.mode, Mode::kOff);
  EXPECT_FALSE(Parse("forward=auto").options.forward_all);
  EXPECT_TRUE(Parse("forward=all").options.forward_all);
  EXPECT_EQ(Parse("log=stderr").options.log, LogDest::kStderr);
  EXPECT_EQ(Parse("log=off").options.log, LogDest::kOff);
}

// --- New keys --------------------------------------------------------------------------------

TEST(Options, VerbosityReportEmptyHelpForward) {
  for (int v : {0, 1, 2}) {
    Parsed p = Parse(("verbosity=" + std::to_string(v)).c_str());
    EXPECT_EQ(p.errors, 0);
    EXPECT_EQ(p.options.verbosity, v);
  }
  EXPECT_TRUE(Parse("report_empty=1").options.report_empty);
  EXPECT_FALSE(Parse("report_empty=1:report_empty=0").options.report_empty);
  EXPECT_TRUE(Parse("help=1").options.help);
  EXPECT_TRUE(Parse("forward=all").options.forward_all);
  Parsed bad = Parse("verbosity=2:verbosity=9");
  EXPECT_EQ(bad.errors, 1);
  EXPECT_EQ(bad.options.verbosity, 2);  // a bad token leaves the key as it was
}

TEST(Options, LogExplicitTellsTheDefaultFromAGivenStderr) {
  EXPECT_FALSE(Parse("mode=audit").options.log_explicit);
  EXPECT_TRUE(Parse("log=stderr").options.log_explicit);
  EXPECT_TRUE(Parse("log=/tmp/x").options.log_explicit);
  EXPECT_FALSE(Parse("log=").options.log_explicit);
}

// --- Bad tokens are quoted safely ---------------------------------------------------------------

TEST(Options, ControlBytesAreEscapedNotEchoed) {
  Parsed p = Parse("mode=\x1b]0;owned\x07\x1b[2J\r\x7f\xc3\xa9\\:zz\n=1");
  EXPECT_EQ(p.errors, 2);
  ASSERT_EQ(p.lines.size(), 2u);
  for (const std::string& line : p.lines) {
    for (size_t i = 0; i + 1 < line.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(line[i]);
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "raw byte " << int{c} << " in " << line;
    }
  }
  EXPECT_NE(p.lines[0].find("'mode=\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x7f\\xc3\\xa9\\\\'"),
            std::string::npos)
      << p.lines[0];
  EXPECT_NE(p.lines[1].find("'zz\\x0a=1'"), std::string::npos) << p.lines[1];
}

TEST(Options, UnknownKeyNamesEveryKey) {
  for (const char* token : {"colour=blue", "justaword"}) {
    Parsed p = Parse(token);
    ASSERT_EQ(p.lines.size(), 1u);
    for (int i = 0; i < kOptionCount; ++i) {
      EXPECT_NE(p.lines[0].find(kOptionSpecs[i].key), std::string::npos) << p.lines[0];
    }
    for (int d = 0; d < kDimCount; ++d) {
      EXPECT_NE(p.lines[0].find(DimName(static_cast<Dim>(d))), std::string::npos) << p.lines[0];
    }
  }
}

// --- Secure execution --------------------------------------------------------------------------

TEST(OptionsSecure, WhatMakesTheLibraryDoLessApplies) {
  Parsed p = ParseSecure("mode=audit:verify=fast:log=off:verbosity=0:net=inherit:"
                         "sigmask=inherit:caps=inherit:forward=auto:baseline=load");
  EXPECT_EQ(p.errors, 0);
  EXPECT_TRUE(p.lines.empty());
  EXPECT_EQ(p.options.mode, Mode::kAudit);
  EXPECT_EQ(p.options.log, LogDest::kOff);
  EXPECT_EQ(p.options.verbosity, 0);
  EXPECT_FALSE(p.options.isolated.has(Dim::kNet));
  EXPECT_EQ(ParseSecure("mode=off").options.mode, Mode::kOff);
}

TEST(OptionsSecure, EverythingElseIsIgnoredWithOneLine) {
  Parsed p = ParseSecure("report=/root/x.json:log=/etc/bash.bashrc:log=stderr:verify=strict:"
                         "baseline=first-thread:forward=all:verbosity=2:report_empty=1:help=1:"
                         "sigmask=isolate:bogus\x1b[31m:caps=isolate");
  EXPECT_EQ(p.errors, 12);
  ASSERT_EQ(p.lines.size(), 1u);
  const std::string& line = p.lines[0];
  EXPECT_NE(line.find("PRISTINE_OPTIONS"), std::string::npos) << line;
  EXPECT_NE(line.find("secure-execution"), std::string::npos) << line;
  for (const char* k : {"report", "log", "verify", "baseline", "forward", "verbosity",
                        "report_empty", "help", "sigmask=isolate", "2 unrecognised"}) {
    EXPECT_NE(line.find(k), std::string::npos) << k << ": " << line;
  }
  // No value of the caller's is echoed into a privileged program's stderr.
  EXPECT_EQ(line.find("/root"), std::string::npos) << line;
  EXPECT_EQ(line.find("bogus"), std::string::npos) << line;
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  EXPECT_TRUE(SameOptions(p.options, Options{}));
}

TEST(OptionsSecure, NullSinkStillCounts) {
  Options o;
  EXPECT_EQ(ParseOptions("report=/x:mode=off", &o, nullptr, nullptr, Execution::kSecure), 1);
  EXPECT_EQ(o.mode, Mode::kOff);
  EXPECT_STREQ(o.report_path, "");
}

// --- help=1 ------------------------------------------------------------------------------------

TEST(OptionsHelp, EveryKeyWithValuesDefaultAndMeaning) {
  std::vector<std::string> lines = HelpLines();
  ASSERT_GE(lines.size(), static_cast<size_t>(kOptionCount + kDimCount + 2));
  EXPECT_NE(lines[0].find(PRISTINE_VERSION), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("PRISTINE_OPTIONS"), std::string::npos) << lines[0];
  for (int i = 0; i < kOptionCount; ++i) {
    const OptionSpec& s = kOptionSpecs[i];
    std::vector<std::string> values = Words(s.values);
    std::string def = s.default_index < 0 ? "none" : values[static_cast<size_t>(s.default_index)];
    std::string want = std::string("  ") + s.key + "=" + s.values + " (default: " + def + ") " +
                       s.help + "\n";
    EXPECT_EQ(lines[static_cast<size_t>(1 + i)], want);
  }
  for (int d = 0; d < kDimCount; ++d) {
    Dim dim = static_cast<Dim>(d);
    const std::string& line = lines[static_cast<size_t>(1 + kOptionCount + d)];
    std::string head = std::string("  ") + DimName(dim) +
                       (kSecurityDims.has(dim) ? "=inherit (default: inherit) "
                        : kDefaultIsolated.has(dim) ? "=isolate|inherit (default: isolate) "
                                                    : "=isolate|inherit (default: inherit) ");
    EXPECT_EQ(line.rfind(head, 0), 0u) << line;
  }
  for (const std::string& line : lines) {
    EXPECT_EQ(line.back(), '\n');
    EXPECT_LT(line.size(), 1000u) << "cut by LogLine: " << line;
  }
  EXPECT_NE(lines.back().find("set-user-ID"), std::string::npos) << lines.back();
  EXPECT_NE(lines.back().find("log=off"), std::string::npos) << lines.back();
}

// --- fuzz/options.dict --------------------------------------------------------------------------

TEST(OptionsTable, FuzzDictionaryHasEveryKeyAndValue) {
  std::vector<std::string> want;
  auto add = [&](const std::string& e) {
    if (std::find(want.begin(), want.end(), e) == want.end()) want.push_back(e);
  };
  for (int i = 0; i < kOptionCount; ++i) {
    add(std::string(kOptionSpecs[i].key) + "=");
    for (const std::string& v : Words(kOptionSpecs[i].values)) {
      if (v != "PATH") add(v);
    }
  }
  for (int d = 0; d < kDimCount; ++d) add(std::string(DimName(static_cast<Dim>(d))) + "=");
  for (const char* e : {"isolate", "inherit", ":", "%p"}) add(e);

  std::ifstream in(PRISTINE_SOURCE_DIR "/fuzz/options.dict");
  ASSERT_TRUE(in.good()) << PRISTINE_SOURCE_DIR "/fuzz/options.dict";
  std::vector<std::string> have;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    ASSERT_GE(line.size(), 2u);
    have.push_back(line.substr(1, line.size() - 2));
  }
  std::string expected_file;
  for (const std::string& e : want) expected_file += "\"" + e + "\"\n";
  EXPECT_EQ(std::set<std::string>(have.begin(), have.end()),
            std::set<std::string>(want.begin(), want.end()))
      << "fuzz/options.dict differs from options.inc; its entries should be:\n"
      << expected_file;
}

}  // namespace
}  // namespace pristine
