// Reuse of passing pre-launch checks (coordinator/check_memo.h): what counts as the same
// nodes, spec and agents, the reuse window, and JobManager starting a job again without
// running the checks (and running them once the window has passed).
#include "coordinator/check_memo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_agent.h"
#include "job_manager_fixture.h"
#include "tests/support/fake_clock.h"

namespace coord::coordinator {
namespace {

using ::testing::HasSubstr;

ClusterCheckRequest Check(std::vector<std::string> hosts, const std::string& spec) {
  ClusterCheckRequest r;
  for (const std::string& h : hosts) {
    HostEntry e;
    e.host = h;
    r.hosts.push_back(e);
  }
  r.config_json = spec;
  r.env = {{"A", "1"}};
  r.workdir = "/w";
  return r;
}

env_check::ClusterReport Report(bool fail) {
  env_check::ClusterReport report;
  report.nodes.resize(2);
  for (auto& n : report.nodes) n.reachable = true;
  if (fail) {
    env_check::CheckResult r;
    r.id = "shared_mount";
    r.passed = false;
    r.severity = env_check::Severity::kFail;
    report.nodes[1].results.push_back(r);
  }
  return report;
}

TEST(CheckMemoTest, TheFingerprintCoversNodesSpecEnvironmentAndWorkdir) {
  const std::string base = CheckMemo::Fingerprint(Check({"a", "b"}, "{}"));
  EXPECT_EQ(base, CheckMemo::Fingerprint(Check({"a", "b"}, "{}")));
  EXPECT_NE(base, CheckMemo::Fingerprint(Check({"b", "a"}, "{}")));  // node 0 is the master
  EXPECT_NE(base, CheckMemo::Fingerprint(Check({"a", "b"}, "{ }")));
  ClusterCheckRequest env = Check({"a", "b"}, "{}");
  env.env["A"] = "2";
  EXPECT_NE(base, CheckMemo::Fingerprint(env));
  ClusterCheckRequest workdir = Check({"a", "b"}, "{}");
  workdir.workdir = "/x";
  EXPECT_NE(base, CheckMemo::Fingerprint(workdir));
  // Length-prefixed fields: moving a character between two fields changes it too.
  EXPECT_NE(CheckMemo::Fingerprint(Check({"ab", "c"}, "{}")),
            CheckMemo::Fingerprint(Check({"a", "bc"}, "{}")));
}

TEST(CheckMemoTest, AResultIsReusedOnlyYoungAndForTheSameAgentProcesses) {
  CheckMemo memo;
  memo.Remember("fp", {"agent-a", "agent-b"}, 1000, Report(false));
  ASSERT_TRUE(memo.Find("fp", {"agent-a", "agent-b"}, 6000, 5000).has_value());
  EXPECT_EQ(memo.Find("fp", {"agent-a", "agent-b"}, 6000, 5000)->age_ms, 5000);
  EXPECT_FALSE(memo.Find("fp", {"agent-a", "agent-b"}, 6001, 5000));  // too old
  EXPECT_FALSE(memo.Find("fp", {"agent-a", "agent-b2"}, 2000, 5000));  // b restarted
  EXPECT_FALSE(memo.Find("fp", {"agent-a", ""}, 2000, 5000));  // b did not answer
  EXPECT_FALSE(memo.Find("other", {"agent-a", "agent-b"}, 2000, 5000));
  EXPECT_FALSE(memo.Find("fp", {"agent-a", "agent-b"}, 2000, 0));  // reuse off
  // A FAIL is never remembered: the next start checks again.
  memo.Remember("failed", {"agent-a", "agent-b"}, 1000, Report(true));
  EXPECT_FALSE(memo.Has("failed", 1000, 5000));
}

TEST_F(JobManagerTest, AJobStartedAgainOnTheSameNodesReusesTheirPassingChecks) {
  auto clock = std::make_shared<coord::FakeClock>();
  clock_ = clock;
  check_reuse_ms_ = 60000;
  Start();
  StartJobRequest request = Request(3, 1);
  request.set_allow_overlap(true);
  StartJobReply first = MustStart(request);
  ASSERT_FALSE(first.job_id().empty());
  for (int n = 0; n < 3; ++n) EXPECT_EQ(Node(n)->checks(), 1) << n;

  clock->Advance(42000);
  StartJobReply second = MustStart(request);
  ASSERT_FALSE(second.job_id().empty());
  for (int n = 0; n < 3; ++n) EXPECT_EQ(Node(n)->checks(), 1) << "checked again: node " << n;
  EXPECT_EQ(second.checks().nodes_size(), 3);  // the table it passed with
  ASSERT_EQ(second.warnings_size(), 1);
  EXPECT_THAT(second.warnings(0), HasSubstr("passed 42.0 s ago"));

  // Another spec, or the window over: checked again.
  StartJobRequest other = Request(3, 2);
  other.set_allow_overlap(true);
  ASSERT_FALSE(MustStart(other).job_id().empty());
  for (int n = 0; n < 3; ++n) EXPECT_EQ(Node(n)->checks(), 2) << n;
  clock->Advance(61000);
  ASSERT_FALSE(MustStart(request).job_id().empty());
  for (int n = 0; n < 3; ++n) EXPECT_EQ(Node(n)->checks(), 3) << n;
}

}  // namespace
}  // namespace coord::coordinator
