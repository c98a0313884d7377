// Unit tests for /proc parsing (agent/proc_scan.h).
#include "agent/proc_scan.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace coord::agent {
namespace {

TEST(ProcScanTest, ParsesStatWithAwkwardComm) {
  // comm may hold spaces and ')' : fields are counted from the last ')'.
  std::string text =
      "4242 (a) b (c) S 1 4240 4239 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654321 1000 "
      "200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  ProcStat st;
  ASSERT_TRUE(ParseProcStat(text, &st));
  EXPECT_EQ(st.pid, 4242);
  EXPECT_EQ(st.state, 'S');
  EXPECT_EQ(st.ppid, 1);
  EXPECT_EQ(st.pgrp, 4240);
  EXPECT_EQ(st.session, 4239);
  EXPECT_EQ(st.start_ticks, 987654321u);
  EXPECT_FALSE(ParseProcStat("12 (x) S 1 2", &st));
  EXPECT_FALSE(ParseProcStat("garbage", &st));
}

TEST(ProcScanTest, ReadsOwnProcess) {
  ProcStat st;
  ASSERT_TRUE(ReadProcStat(getpid(), &st));
  EXPECT_EQ(st.pid, getpid());
  EXPECT_EQ(st.pgrp, getpgrp());
  EXPECT_NE(ProcStartTicks(getpid()), 0u);
  EXPECT_TRUE(ProcAlive(getpid(), st.start_ticks));
  EXPECT_FALSE(ProcAlive(getpid(), st.start_ticks + 1));  // a recycled pid
}

TEST(ProcScanTest, EnvironBlockLookup) {
  std::string block("A=1\0COORD_JOB_TAG=t:j:g0\0RANK=3\0AB=2\0", 37);
  EXPECT_EQ(EnvironBlockValue(block, "A"), "1");
  EXPECT_EQ(EnvironBlockValue(block, "AB"), "2");
  EXPECT_EQ(EnvironBlockValue(block, "COORD_JOB_TAG"), "t:j:g0");
  EXPECT_EQ(EnvironBlockValue(block, "RANK"), "3");
  EXPECT_EQ(EnvironBlockValue(block, "B"), "");
}

}  // namespace
}  // namespace coord::agent
