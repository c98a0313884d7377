// The tables of coord-agent's two lifecycles (agent/lifecycle.h): every edge the
// agent takes is allowed, and nothing goes back, leaves an end, or skips a step.
#include "agent/lifecycle.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

namespace coord::agent {
namespace {

const GenState kAllGen[] = {GenState::kFound,   GenState::kLaunching, GenState::kLaunchingEnded,
                            GenState::kRunning, GenState::kEnded,     GenState::kDropped};
const RankState kAllRank[] = {RANK_STATE_UNKNOWN, RANK_RUNNING, RANK_EXITED};

TEST(GenLifecycleTest, AllowsExactlyTheTable) {
  const std::set<std::pair<GenState, GenState>> allowed = {
      {GenState::kLaunching, GenState::kRunning},         // Launch returned
      {GenState::kLaunching, GenState::kLaunchingEnded},  // `done` before Launch returned
      {GenState::kLaunching, GenState::kDropped},         // no supervisor could be started
      {GenState::kLaunchingEnded, GenState::kEnded},      // ... then Launch returned
      {GenState::kFound, GenState::kRunning},             // re-adopted after a restart
      {GenState::kFound, GenState::kEnded},               // finished, or orphaned and killed
      {GenState::kRunning, GenState::kEnded},             // `done`, or orphaned and killed
  };
  for (GenState from : kAllGen) {
    for (GenState to : kAllGen) {
      EXPECT_EQ(IsValidTransition(from, to), allowed.count({from, to}) == 1)
          << GenStateName(from) << " -> " << GenStateName(to);
    }
  }
}

TEST(GenLifecycleTest, EndsAreFinalAndNothingReturnsToTheStart) {
  for (GenState to : kAllGen) {
    EXPECT_FALSE(IsValidTransition(GenState::kEnded, to)) << GenStateName(to);
    EXPECT_FALSE(IsValidTransition(GenState::kDropped, to)) << GenStateName(to);
  }
  for (GenState from : kAllGen) {
    EXPECT_FALSE(IsValidTransition(from, GenState::kFound)) << GenStateName(from);
    EXPECT_FALSE(IsValidTransition(from, GenState::kLaunching)) << GenStateName(from);
    EXPECT_FALSE(IsValidTransition(from, from)) << GenStateName(from);
  }
}

TEST(GenLifecycleTest, PredicatesAndNames) {
  std::set<std::string> names;
  for (GenState s : kAllGen) names.insert(GenStateName(s));
  EXPECT_EQ(names.size(), 6u);
  EXPECT_STREQ(GenStateName(GenState::kLaunchingEnded), "LAUNCHING_ENDED");
  EXPECT_STREQ(GenStateName(static_cast<GenState>(99)), "GEN_STATE_INVALID");

  EXPECT_TRUE(IsLaunching(GenState::kLaunching));
  EXPECT_TRUE(IsLaunching(GenState::kLaunchingEnded));
  EXPECT_TRUE(HasEnded(GenState::kLaunchingEnded));
  EXPECT_TRUE(HasEnded(GenState::kEnded));
  for (GenState s : {GenState::kFound, GenState::kRunning, GenState::kDropped}) {
    EXPECT_FALSE(IsLaunching(s)) << GenStateName(s);
    EXPECT_FALSE(HasEnded(s)) << GenStateName(s);
  }
  // `done` ends a generation; while a Launch call holds it, it waits for that call.
  for (GenState s : kAllGen) {
    if (HasEnded(s) || s == GenState::kDropped) continue;
    EXPECT_TRUE(IsValidTransition(s, EndedStateFrom(s))) << GenStateName(s);
  }
  EXPECT_EQ(EndedStateFrom(GenState::kLaunching), GenState::kLaunchingEnded);
  EXPECT_EQ(EndedStateFrom(GenState::kRunning), GenState::kEnded);
}

TEST(RankLifecycleTest, AllowsExactlyTheTable) {
  const std::set<std::pair<RankState, RankState>> allowed = {
      {RANK_STATE_UNKNOWN, RANK_RUNNING},  // `started` record
      {RANK_STATE_UNKNOWN, RANK_EXITED},   // exec failed, or never started before an orphan kill
      {RANK_RUNNING, RANK_EXITED},         // `exit` record
  };
  for (RankState from : kAllRank) {
    for (RankState to : kAllRank) {
      EXPECT_EQ(IsValidTransition(from, to), allowed.count({from, to}) == 1)
          << RankStateName(from) << " -> " << RankStateName(to);
    }
  }
  EXPECT_STREQ(RankStateName(RANK_EXITED), "RANK_EXITED");
  EXPECT_STREQ(RankStateName(static_cast<RankState>(99)), "RANK_STATE_INVALID");
}

}  // namespace
}  // namespace coord::agent
