// The job state machine's table: every edge the coordinator relies on is allowed and
// everything else (going back, leaving a terminal state, skipping LAUNCHING) is not.
#include "coordinator/job_state.h"

#include <gtest/gtest.h>

namespace coord::coordinator {
namespace {

const JobState kAll[] = {JOB_STATE_UNKNOWN, PENDING, LAUNCHING, RUNNING,
                         SUCCEEDED,         FAILED,  KILLED,    RESTARTING};

TEST(JobStateTest, AllowsTheForwardPath) {
  EXPECT_TRUE(IsValidTransition(PENDING, LAUNCHING));
  EXPECT_TRUE(IsValidTransition(LAUNCHING, RUNNING));
  EXPECT_TRUE(IsValidTransition(RUNNING, SUCCEEDED));
  EXPECT_TRUE(IsValidTransition(RUNNING, FAILED));
  EXPECT_TRUE(IsValidTransition(RUNNING, KILLED));
  EXPECT_TRUE(IsValidTransition(LAUNCHING, FAILED));
  EXPECT_TRUE(IsValidTransition(LAUNCHING, KILLED));
  EXPECT_TRUE(IsValidTransition(PENDING, KILLED));
}

TEST(JobStateTest, RejectsEverythingElse) {
  EXPECT_FALSE(IsValidTransition(RUNNING, PENDING));
  EXPECT_FALSE(IsValidTransition(RUNNING, LAUNCHING));
  EXPECT_FALSE(IsValidTransition(PENDING, RUNNING));
  EXPECT_FALSE(IsValidTransition(LAUNCHING, SUCCEEDED));  // success needs RUNNING first
  EXPECT_FALSE(IsValidTransition(RUNNING, RUNNING));
  for (JobState from : {SUCCEEDED, FAILED, KILLED}) {
    for (JobState to : kAll) {
      EXPECT_FALSE(IsValidTransition(from, to)) << StateName(from) << " -> " << StateName(to);
    }
  }
  for (JobState from : kAll) {
    EXPECT_FALSE(IsValidTransition(from, JOB_STATE_UNKNOWN));
    EXPECT_FALSE(IsValidTransition(from, PENDING));
  }
}

TEST(JobStateTest, TerminalStatesAndNames) {
  int terminal = 0;
  for (JobState s : kAll) terminal += IsTerminal(s) ? 1 : 0;
  EXPECT_EQ(terminal, 3);
  EXPECT_TRUE(IsTerminal(SUCCEEDED));
  EXPECT_TRUE(IsTerminal(FAILED));
  EXPECT_TRUE(IsTerminal(KILLED));
  EXPECT_FALSE(IsTerminal(RUNNING));
  EXPECT_STREQ(StateName(RUNNING), "RUNNING");
  EXPECT_STREQ(StateName(static_cast<JobState>(99)), "JOB_STATE_UNKNOWN");
}

}  // namespace
}  // namespace coord::coordinator
