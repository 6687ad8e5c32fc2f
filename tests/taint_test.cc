// SPDX-License-Identifier: Apache-2.0
// The taint mapping helpers (shim/taint.h): which dimensions unshare(flags) changes, and which
// namespace flags setns(fd, nstype) acts on (the kernel is asked for nstype 0).

#include "taint.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "dimension.h"
#include "gtest/gtest.h"

namespace pristine {
namespace {

constexpr int kAllNamespaceFlags = CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS |
                                   CLONE_NEWCGROUP | CLONE_NEWPID | CLONE_NEWTIME | CLONE_NEWUSER;

TEST(Taint, UnshareFlags) {
  EXPECT_EQ(DimsChangedByUnshare(0), DimSet());
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWNET), DimSet(Dim::kNet));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWUTS), DimSet(Dim::kUts));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWIPC), DimSet(Dim::kIpc));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWCGROUP), DimSet(Dim::kCgroup));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWPID), DimSet(Dim::kPid));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWTIME), DimSet(Dim::kTime));
  // A new mount namespace brings a private fs_struct.
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWNS), DimSet(Dim::kMnt) | Dim::kFs);
  EXPECT_EQ(DimsChangedByUnshare(CLONE_FS), DimSet(Dim::kFs));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_FILES), DimSet(Dim::kFiles));
  // A new user namespace: full capabilities inside it, new credentials.
  EXPECT_TRUE(DimsChangedByUnshare(CLONE_NEWUSER).has(Dim::kCaps));
  EXPECT_TRUE(DimsChangedByUnshare(CLONE_NEWUSER).has(Dim::kCreds));
  EXPECT_EQ(DimsChangedByUnshare(CLONE_NEWNET | CLONE_FILES | CLONE_NEWUTS),
            DimSet(Dim::kNet) | Dim::kFiles | Dim::kUts);
  // Flags that change no per-thread state pristine tracks.
  EXPECT_EQ(DimsChangedByUnshare(CLONE_SYSVSEM), DimSet());
}

TEST(Taint, UnshareIsAUnionOverFlags) {
  const int flags[] = {CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWCGROUP,
                       CLONE_NEWPID, CLONE_NEWTIME, CLONE_FS, CLONE_FILES, CLONE_NEWUSER};
  for (int a : flags) {
    for (int b : flags) {
      EXPECT_EQ(DimsChangedByUnshare(a | b), DimsChangedByUnshare(a) | DimsChangedByUnshare(b))
          << a << " " << b;
    }
  }
}

TEST(Taint, SetnsExplicitTypeIsTaken) {
  for (int f : {CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWCGROUP,
                CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWUSER, CLONE_NEWNET | CLONE_NEWIPC}) {
    EXPECT_EQ(SetnsNamespaceFlags(-1, f), f);
  }
}

TEST(Taint, SetnsAnyTypeAsksTheKernel) {
  struct Case {
    const char* link;
    int flag;
    DimSet dims;
  };
  const Case cases[] = {
      {"/proc/self/ns/net", CLONE_NEWNET, DimSet(Dim::kNet)},
      {"/proc/self/ns/uts", CLONE_NEWUTS, DimSet(Dim::kUts)},
      {"/proc/self/ns/ipc", CLONE_NEWIPC, DimSet(Dim::kIpc)},
      {"/proc/self/ns/mnt", CLONE_NEWNS, DimSet(Dim::kMnt) | Dim::kFs},
      {"/proc/self/ns/cgroup", CLONE_NEWCGROUP, DimSet(Dim::kCgroup)},
      {"/proc/self/ns/pid", CLONE_NEWPID, DimSet(Dim::kPid)},
      {"/proc/self/ns/user", CLONE_NEWUSER, DimsChangedByUnshare(CLONE_NEWUSER)},
  };
  for (const Case& c : cases) {
    int fd = open(c.link, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ADD_FAILURE() << "cannot open " << c.link;
      continue;
    }
    int flags = SetnsNamespaceFlags(fd, 0);
    EXPECT_EQ(flags, c.flag) << c.link;
    EXPECT_EQ(DimsChangedByUnshare(flags), c.dims) << c.link;
    close(fd);
  }
}

TEST(Taint, SetnsAnyTypeOnNonNamespaceAssumesTheWorst) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(SetnsNamespaceFlags(fd, 0) & kAllNamespaceFlags, kAllNamespaceFlags);
  close(fd);
  EXPECT_EQ(SetnsNamespaceFlags(-1, 0) & kAllNamespaceFlags, kAllNamespaceFlags);
  EXPECT_TRUE(DimsChangedByUnshare(SetnsNamespaceFlags(-1, 0)).has(Dim::kNet));
}

}  // namespace
}  // namespace pristine
