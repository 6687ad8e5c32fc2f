// SPDX-License-Identifier: Apache-2.0
// PRISTINE_OPTIONS parsing (shim/options.h ParseOptions): every key and value, and bad tokens:
// exactly one line each, naming the variable, the token and what is accepted; the defaults stay.

#include "options.h"

#include <cstring>
#include <string>
#include <vector>

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

bool SameOptions(const Options& a, const Options& b) {
  return a.mode == b.mode && a.verify == b.verify && a.baseline == b.baseline &&
         a.isolated == b.isolated && a.log == b.log &&
         std::strcmp(a.log_path, b.log_path) == 0 && std::strcmp(a.report_path, b.report_path) == 0;
}

const char* const kAllDims[] = {"net", "uts", "ipc", "mnt", "cgroup", "pid", "time", "fs", "files",
                                "affinity", "sigmask", "sched", "name", "caps", "nnp", "seccomp",
                                "landlock", "creds"};

TEST(Options, DefaultsMatchTheProductTable) {
  Options o;
  EXPECT_EQ(o.mode, Mode::kEnforce);
  EXPECT_EQ(o.verify, Verify::kFast);
  EXPECT_EQ(o.baseline, BaselineMode::kLoad);
  EXPECT_EQ(o.log, LogDest::kStderr);
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

}  // namespace
}  // namespace pristine
