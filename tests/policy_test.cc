// SPDX-License-Identifier: Apache-2.0
// The policy (shim/policy.h Decide / DimsToReapply) and dimension names (dimension.h).

#include "policy.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>

#include "dimension.h"
#include "gtest/gtest.h"
#include "options.h"

namespace pristine {
namespace {

const DimSet kDefaultInherited = DimSet(Dim::kSigmask) | Dim::kSched | Dim::kName;

Options WithMode(Mode m) {
  Options o;
  o.mode = m;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Dimension names

TEST(Dimension, NamesRoundTripAndAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < kDimCount; ++i) {
    Dim d = static_cast<Dim>(i);
    const char* name = DimName(d);
    ASSERT_NE(name, nullptr);
    EXPECT_STRNE(name, "?");
    EXPECT_TRUE(seen.insert(name).second) << name;
    Dim back;
    ASSERT_TRUE(DimFromName(name, static_cast<unsigned>(std::strlen(name)), &back)) << name;
    EXPECT_EQ(back, d) << name;
  }
  EXPECT_EQ(seen.size(), 18u);
  EXPECT_STREQ(DimName(Dim::kCount), "?");
}

TEST(Dimension, ProductNames) {
  const char* expected[] = {"net", "uts", "ipc", "mnt", "cgroup", "pid", "time", "fs", "files",
                            "affinity", "sigmask", "sched", "name", "caps", "nnp", "seccomp",
                            "landlock", "creds"};
  for (int i = 0; i < kDimCount; ++i) EXPECT_STREQ(DimName(static_cast<Dim>(i)), expected[i]);
}

TEST(Dimension, UnknownNamesAndPrefixes) {
  Dim d = Dim::kNet;
  for (const char* bad : {"", "ne", "nett", "NET", "net ", "netx", "affinit", "x"}) {
    EXPECT_FALSE(DimFromName(bad, static_cast<unsigned>(std::strlen(bad)), &d)) << bad;
  }
  // Length-bounded: "network" cut to 3 is "net".
  EXPECT_TRUE(DimFromName("network", 3, &d));
  EXPECT_EQ(d, Dim::kNet);
}

TEST(Dimension, SetAlgebra) {
  DimSet a = DimSet(Dim::kNet) | Dim::kFs;
  EXPECT_TRUE(a.has(Dim::kNet));
  EXPECT_FALSE(a.has(Dim::kUts));
  EXPECT_EQ(a - Dim::kNet, DimSet(Dim::kFs));
  EXPECT_EQ(a & kNamespaceDims, DimSet(Dim::kNet));
  EXPECT_TRUE(a.intersects(kNamespaceDims));
  EXPECT_FALSE(a.intersects(kSecurityDims));
  EXPECT_TRUE(DimSet().empty());
  EXPECT_EQ(DimSet::All().bits(), (1u << kDimCount) - 1);
  int n = 0;
  ForEachDim(DimSet::All(), [&](Dim) { ++n; });
  EXPECT_EQ(n, kDimCount);
  EXPECT_EQ((kNamespaceDims & kSecurityDims), DimSet());
  EXPECT_EQ((kSecurityDims & kCrossThreadDims), DimSet());
}

// ---------------------------------------------------------------------------------------------
// Decide / DimsToReapply

TEST(Policy, CleanCallerCreatesDirectly) {
  for (Mode m : {Mode::kEnforce, Mode::kAudit, Mode::kOff}) {
    EXPECT_EQ(Decide(DimSet(), WithMode(m)), Decision::kDirect);
  }
}

// Every single dimension, alone, in every mode, with the default table.
TEST(Policy, EverySingleDimensionDefaultTable) {
  for (int i = 0; i < kDimCount; ++i) {
    Dim d = static_cast<Dim>(i);
    DimSet taint(d);
    bool isolated = kDefaultIsolated.has(d);
    SCOPED_TRACE(DimName(d));
    EXPECT_EQ(Decide(taint, WithMode(Mode::kEnforce)),
              isolated ? Decision::kForward : Decision::kDirect);
    EXPECT_EQ(Decide(taint, WithMode(Mode::kAudit)),
              isolated ? Decision::kAudited : Decision::kDirect);
    EXPECT_EQ(Decide(taint, WithMode(Mode::kOff)), Decision::kDirect);
    EXPECT_EQ(DimsToReapply(taint, Options{}), isolated ? DimSet() : taint);
  }
}

TEST(Policy, DefaultIsolatedSetIsTheProductTable) {
  DimSet expected = DimSet(Dim::kNet) | Dim::kUts | Dim::kIpc | Dim::kMnt | Dim::kCgroup |
                    Dim::kPid | Dim::kTime | Dim::kFs | Dim::kFiles | Dim::kAffinity;
  EXPECT_EQ(kDefaultIsolated, expected);
  EXPECT_FALSE(kDefaultIsolated.intersects(kDefaultInherited));
  EXPECT_FALSE(kDefaultIsolated.intersects(kSecurityDims));
}

TEST(Policy, InheritedDimensionsAreReappliedOnForward) {
  DimSet taint = DimSet(Dim::kNet) | Dim::kSigmask | Dim::kName | Dim::kSched;
  EXPECT_EQ(Decide(taint, Options{}), Decision::kForward);
  EXPECT_EQ(DimsToReapply(taint, Options{}), kDefaultInherited);
}

// Never escalate: a seccomp filter or a Landlock domain cannot be put on a forwarded thread, so a
// caller carrying one next to an isolated taint creates its own threads (restricted).
// Capabilities, no_new_privs and credentials are re-applied on the forwarded thread instead.
TEST(Policy, UnforwardableRestrictionsAreRestrictedNeverForwarded) {
  EXPECT_EQ(kUnforwardableDims, DimSet(Dim::kSeccomp) | Dim::kLandlock);
  EXPECT_EQ(kUnforwardableDims - kSecurityDims, DimSet());
  ForEachDim(kSecurityDims, [&](Dim s) {
    SCOPED_TRACE(DimName(s));
    bool unforwardable = kUnforwardableDims.has(s);
    EXPECT_EQ(Decide(DimSet(s), Options{}), Decision::kDirect);
    EXPECT_EQ(Decide(DimSet(s) | Dim::kNet, Options{}),
              unforwardable ? Decision::kRestricted : Decision::kForward);
    EXPECT_EQ(Decide(DimSet(s) | Dim::kNet, WithMode(Mode::kAudit)), Decision::kAudited);
    EXPECT_EQ(Decide(DimSet(s) | Dim::kNet, WithMode(Mode::kOff)), Decision::kDirect);
    // Whatever is forwarded keeps the caller's privileges and restrictions: they are re-applied.
    EXPECT_TRUE(DimsToReapply(DimSet(s) | Dim::kNet, Options{}).has(s));
  });
}

// Exhaustive over subsets of a representative slice of dimensions and a few option tables.
TEST(Policy, ExhaustiveAgainstModel) {
  const Dim slice[] = {Dim::kNet, Dim::kFs, Dim::kAffinity, Dim::kSigmask, Dim::kName, Dim::kCaps,
                       Dim::kSeccomp};
  Options tables[4];
  tables[1].isolated = kDefaultIsolated | Dim::kSigmask;
  tables[2].isolated = kDefaultIsolated - Dim::kNet - Dim::kAffinity;
  tables[3].isolated = DimSet();
  for (Options& o : tables) {
    for (Mode m : {Mode::kEnforce, Mode::kAudit, Mode::kOff}) {
      o.mode = m;
      for (unsigned bits = 0; bits < (1u << 7); ++bits) {
        DimSet taint;
        for (int i = 0; i < 7; ++i) {
          if (bits & (1u << i)) taint |= slice[i];
        }
        Decision want;
        bool differs = !(taint & o.isolated).empty();
        if (m == Mode::kOff || !differs) want = Decision::kDirect;
        else if (m == Mode::kAudit) want = Decision::kAudited;
        else if (taint.intersects(kUnforwardableDims)) want = Decision::kRestricted;
        else want = Decision::kForward;
        EXPECT_EQ(Decide(taint, o), want) << "taint bits " << taint.bits();
        EXPECT_EQ(DimsToReapply(taint, o), taint - o.isolated);
        EXPECT_FALSE(DimsToReapply(taint, o).intersects(o.isolated));
      }
    }
  }
}

TEST(Policy, DecisionNames) {
  EXPECT_STREQ(DecisionName(Decision::kDirect), "direct");
  EXPECT_STREQ(DecisionName(Decision::kForward), "forwarded");
  EXPECT_STREQ(DecisionName(Decision::kAudited), "audit");
  EXPECT_STREQ(DecisionName(Decision::kRestricted), "restricted");
}

}  // namespace
}  // namespace pristine
