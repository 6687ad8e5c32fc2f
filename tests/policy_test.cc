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

// Decide with what a caller holding CAP_SYS_ADMIN and the library's descriptors can re-enter.
Decision DecideFor(DimSet taint, const Options& o, DimSet repairable = kRepairableDims) {
  return Decide(taint, o, repairable, /*forward_all=*/false).decision;
}

TEST(Policy, CleanCallerCreatesDirectly) {
  for (Mode m : {Mode::kEnforce, Mode::kAudit, Mode::kOff}) {
    EXPECT_EQ(DecideFor(DimSet(), WithMode(m)), Decision::kDirect);
  }
}

TEST(Policy, EveryIsolableDimensionHasOneWay) {
  EXPECT_EQ(kCarriedDims | kRepairableDims | kForwardedDims, kDefaultIsolated | Dim::kSigmask);
  EXPECT_FALSE(kCarriedDims.intersects(kRepairableDims));
  EXPECT_FALSE(kCarriedDims.intersects(kForwardedDims));
  EXPECT_FALSE(kRepairableDims.intersects(kForwardedDims));
}

// Every single dimension, alone, in every mode, with the default table.
TEST(Policy, EverySingleDimensionDefaultTable) {
  for (int i = 0; i < kDimCount; ++i) {
    Dim d = static_cast<Dim>(i);
    DimSet taint(d);
    bool isolated = kDefaultIsolated.has(d);
    SCOPED_TRACE(DimName(d));
    Decision enforce = !isolated ? Decision::kDirect
                       : kForwardedDims.has(d) ? Decision::kForward
                                                : Decision::kRepaired;
    EXPECT_EQ(DecideFor(taint, WithMode(Mode::kEnforce)), enforce);
    EXPECT_EQ(DecideFor(taint, WithMode(Mode::kAudit)),
              isolated ? Decision::kAudited : Decision::kDirect);
    EXPECT_EQ(DecideFor(taint, WithMode(Mode::kOff)), Decision::kDirect);
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

// The caller's own thread gets the carried values in its attributes and re-enters namespaces.
TEST(Policy, RepairedRouteSaysWhatIsCarriedAndReentered) {
  DimSet taint = DimSet(Dim::kNet) | Dim::kUts | Dim::kAffinity | Dim::kName;
  Route r = Decide(taint, Options{}, kRepairableDims, false);
  EXPECT_EQ(r.decision, Decision::kRepaired);
  EXPECT_EQ(r.carry, DimSet(Dim::kAffinity));
  EXPECT_EQ(r.repair, DimSet(Dim::kNet) | Dim::kUts);
}

// A namespace the caller cannot re-enter (no capability, a namespace owned by a user namespace
// the process left) is forwarded instead.
TEST(Policy, UnrepairableNamespaceIsForwarded) {
  EXPECT_EQ(DecideFor(DimSet(Dim::kNet), Options{}, DimSet()), Decision::kForward);
  EXPECT_EQ(DecideFor(DimSet(Dim::kNet) | Dim::kUts, Options{}, DimSet(Dim::kNet)),
            Decision::kForward);
  EXPECT_EQ(DecideFor(DimSet(Dim::kAffinity), Options{}, DimSet()), Decision::kRepaired);
}

TEST(Policy, InheritedDimensionsAreReappliedOnForward) {
  DimSet taint = DimSet(Dim::kFs) | Dim::kSigmask | Dim::kName | Dim::kSched;
  EXPECT_EQ(DecideFor(taint, Options{}), Decision::kForward);
  EXPECT_EQ(DimsToReapply(taint, Options{}), kDefaultInherited);
}

// forward=all: every create is forwarded, a clean caller's too.
TEST(Policy, ForwardAllForwardsEveryCreate) {
  EXPECT_EQ(Decide(DimSet(), Options{}, kRepairableDims, true).decision, Decision::kForward);
  EXPECT_EQ(Decide(DimSet(Dim::kNet), Options{}, kRepairableDims, true).decision,
            Decision::kForward);
  EXPECT_EQ(Decide(DimSet(Dim::kSeccomp), Options{}, kRepairableDims, true).decision,
            Decision::kRestricted);
  EXPECT_EQ(Decide(DimSet(), WithMode(Mode::kAudit), kRepairableDims, true).decision,
            Decision::kDirect);
}

// Never escalate: a seccomp filter or a Landlock domain cannot be put on a forwarded thread, so a
// caller carrying one next to a taint only forwarding isolates creates its own threads
// (restricted); next to one its own thread can repair, it creates a repaired thread, which keeps
// the restriction. Capabilities, no_new_privs and credentials are re-applied on a forwarded
// thread.
TEST(Policy, UnforwardableRestrictionsAreRestrictedNeverForwarded) {
  EXPECT_EQ(kUnforwardableDims, DimSet(Dim::kSeccomp) | Dim::kLandlock);
  EXPECT_EQ(kUnforwardableDims - kSecurityDims, DimSet());
  ForEachDim(kSecurityDims, [&](Dim s) {
    SCOPED_TRACE(DimName(s));
    bool unforwardable = kUnforwardableDims.has(s);
    EXPECT_EQ(DecideFor(DimSet(s), Options{}), Decision::kDirect);
    EXPECT_EQ(DecideFor(DimSet(s) | Dim::kFs, Options{}),
              unforwardable ? Decision::kRestricted : Decision::kForward);
    EXPECT_EQ(DecideFor(DimSet(s) | Dim::kNet, Options{}), Decision::kRepaired);
    EXPECT_EQ(DecideFor(DimSet(s) | Dim::kFs, WithMode(Mode::kAudit)), Decision::kAudited);
    EXPECT_EQ(DecideFor(DimSet(s) | Dim::kFs, WithMode(Mode::kOff)), Decision::kDirect);
    // Whatever is forwarded keeps the caller's privileges and restrictions: they are re-applied.
    EXPECT_TRUE(DimsToReapply(DimSet(s) | Dim::kFs, Options{}).has(s));
  });
}

// Exhaustive over subsets of a representative slice of dimensions, a few option tables and what
// the caller can re-enter.
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
      for (DimSet repairable : {kRepairableDims, DimSet()}) {
        for (unsigned bits = 0; bits < (1u << 7); ++bits) {
          DimSet taint;
          for (int i = 0; i < 7; ++i) {
            if (bits & (1u << i)) taint |= slice[i];
          }
          DimSet isolate = taint & o.isolated;
          Decision want;
          if (m == Mode::kOff || isolate.empty()) want = Decision::kDirect;
          else if (m == Mode::kAudit) want = Decision::kAudited;
          else if (!isolate.intersects(kForwardedDims) &&
                   ((isolate & kRepairableDims) - repairable).empty()) want = Decision::kRepaired;
          else if (taint.intersects(kUnforwardableDims)) want = Decision::kRestricted;
          else want = Decision::kForward;
          EXPECT_EQ(DecideFor(taint, o, repairable), want) << "taint bits " << taint.bits();
          EXPECT_EQ(DimsToReapply(taint, o), taint - o.isolated);
          EXPECT_FALSE(DimsToReapply(taint, o).intersects(o.isolated));
        }
      }
    }
  }
}

TEST(Policy, DecisionNames) {
  EXPECT_STREQ(DecisionName(Decision::kDirect), "direct");
  EXPECT_STREQ(DecisionName(Decision::kRepaired), "repaired");
  EXPECT_STREQ(DecisionName(Decision::kForward), "forwarded");
  EXPECT_STREQ(DecisionName(Decision::kAudited), "audit");
  EXPECT_STREQ(DecisionName(Decision::kRestricted), "restricted");
}

}  // namespace
}  // namespace pristine
