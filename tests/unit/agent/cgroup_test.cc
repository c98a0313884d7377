// Unit tests for cgroup path discovery (agent/cgroup.h), from sample text.
#include "agent/cgroup.h"

#include <gtest/gtest.h>

namespace coord::agent {
namespace {

// A hybrid host (cgroup v1 controllers + cgroup2 at .../unified).
const char kHybrid[] =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
// A unified host with optional fields before the separator.
const char kUnified[] =
    "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
    "28 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";

TEST(CgroupTest, FindsTheCgroup2Mount) {
  EXPECT_EQ(ParseCgroup2Mount(kHybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(ParseCgroup2Mount(kUnified), "/sys/fs/cgroup");
  EXPECT_EQ(ParseCgroup2Mount("31 30 0:28 / /x rw - cgroup cgroup rw,cpu\n"), "");
  EXPECT_EQ(ParseCgroup2Mount(""), "");
  EXPECT_EQ(ParseCgroup2Mount("1 2 0:1 / /my\\040cg rw - cgroup2 none rw\n"), "/my cg");
}

TEST(CgroupTest, FindsOwnCgroup) {
  EXPECT_EQ(ParseOwnCgroup("9:name=systemd:/\n4:memory:/x\n0::/\n"), "/");
  EXPECT_EQ(ParseOwnCgroup("0::/system.slice/coord-agent.service\n"),
            "/system.slice/coord-agent.service");
  EXPECT_EQ(ParseOwnCgroup("4:memory:/x\n"), "");
}

TEST(CgroupTest, DefaultParentAndLayout) {
  EXPECT_EQ(DefaultCgroupParent("/sys/fs/cgroup/unified", "/", "abc"),
            "/sys/fs/cgroup/unified/coord-abc");
  EXPECT_EQ(DefaultCgroupParent("/sys/fs/cgroup/", "/system.slice/a.service", "abc"),
            "/sys/fs/cgroup/system.slice/a.service/coord-abc");
  std::string gen = GenCgroupDir("/cg/coord-abc", "job", 3);
  EXPECT_EQ(gen, "/cg/coord-abc/job.g3");
  EXPECT_EQ(RankCgroupDir(gen, 12), "/cg/coord-abc/job.g3/rank-12");
}

TEST(CgroupTest, NoneDisablesCgroups) {
  auto parent = SetUpCgroupParent("none", "abc");
  ASSERT_TRUE(parent.ok());
  EXPECT_EQ(*parent, "");
  EXPECT_FALSE(SetUpCgroupParent("relative/path", "abc").ok());
}

}  // namespace
}  // namespace coord::agent
