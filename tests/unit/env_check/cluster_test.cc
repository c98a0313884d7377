// The cluster-wide rules (env_check/cluster.h) on hand-made node reports: which node
// is named when versions differ, which node fails the shared-path token exchange,
// clock offsets, the report's exit code and table; and the checkpoint-size estimate
// the checkpoint_disk check asks room for, against the trainer's own parameter count.
#include "env_check/cluster.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "env_check/job_context.h"
#include "trainer/model/gpt_params.h"

namespace coord::env_check {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

NodeReport Node(const std::string& name, std::vector<std::pair<std::string, std::string>> facts) {
  NodeReport n;
  n.name = name;
  CheckResult r;
  r.id = "facts";
  r.facts = std::move(facts);
  n.results.push_back(r);
  return n;
}

const CheckResult& Row(const std::vector<CheckResult>& rows, const std::string& id) {
  for (const CheckResult& r : rows) {
    if (r.id == id) return r;
  }
  ADD_FAILURE() << "no row " << id;
  static CheckResult none;
  return none;
}

std::string Fact(const CheckResult& r, const std::string& key) {
  for (const auto& [k, v] : r.facts) {
    if (k == key) return v;
  }
  return "";
}

TEST(CompareNodes, NamesTheNodeWithAnotherDriverAndAgreesOtherwise) {
  std::vector<NodeReport> nodes;
  for (int i = 0; i < 4; ++i) {
    nodes.push_back(Node("gpu0" + std::to_string(i),
                         {{"driver_version", i == 2 ? "535.104.05" : "550.54.15"},
                          {"nccl_version", "2.21.5"}}));
  }
  std::vector<CheckResult> rows = CompareNodes(nodes);
  const CheckResult& driver = Row(rows, "same_gpu_driver");
  EXPECT_FALSE(driver.passed);
  EXPECT_EQ(driver.severity, Severity::kWarn);
  EXPECT_EQ(driver.found, "535.104.05 on gpu02; 550.54.15 on the other 3 nodes");
  EXPECT_EQ(Fact(driver, "odd_nodes"), "gpu02");
  EXPECT_EQ(Fact(driver, "cluster_value"), "550.54.15");
  const CheckResult& nccl = Row(rows, "same_nccl");
  EXPECT_TRUE(nccl.passed);
  EXPECT_EQ(nccl.found, "2.21.5 on all 4 nodes");
  // Nobody reports Open MPI: nothing to compare, recorded as such.
  EXPECT_EQ(Row(rows, "same_openmpi").found, "not reported by any node");
  EXPECT_EQ(Row(rows, "same_openmpi").severity, Severity::kInfo);
}

TEST(CompareNodes, ANodeMissingAFactTheOthersHaveIsTheOddOne) {
  std::vector<NodeReport> nodes = {Node("a", {{"openmpi_version", "4.1.4"}}),
                                   Node("b", {{"openmpi_version", "4.1.4"}}), Node("c", {})};
  std::vector<CheckResult> rows = CompareNodes(nodes);
  const CheckResult& mpi = Row(rows, "same_openmpi");
  EXPECT_FALSE(mpi.passed);
  EXPECT_EQ(mpi.severity, Severity::kFail);
  EXPECT_EQ(mpi.found, "(none) on c; 4.1.4 on the other 2 nodes");
}

TEST(CompareNodes, UnreachableNodesAreNotCompared) {
  std::vector<NodeReport> nodes = {Node("a", {{"program_digest", "aa"}}),
                                   Node("b", {{"program_digest", "aa"}})};
  NodeReport down;
  down.name = "c";
  down.reachable = false;
  nodes.push_back(down);
  EXPECT_TRUE(Row(CompareNodes(nodes), "same_job_program").passed);
}

TEST(CompareNodes, NoReachableNodeAtAllComparesNothing) {
  // A re-check of one lost node: nobody answers, so there is nothing to compare.
  NodeReport down;
  down.name = "c";
  down.reachable = false;
  const std::vector<CheckResult> rows = CompareNodes({down});
  EXPECT_EQ(Row(rows, "same_job_program").found, "not reported by any node");
  EXPECT_TRUE(Row(rows, "same_job_program").passed);
}

TEST(CompareNodes, ClockOffsetBeyondTheLimitAndItsUncertaintyIsAWarning) {
  std::vector<NodeReport> nodes = {Node("a", {}), Node("b", {}), Node("c", {})};
  nodes[0].clock_offset_ms = 3;
  nodes[1].clock_offset_ms = -2500;
  nodes[2].clock_offset_ms = 1100;  // within 1000 ms once its 200 ms uncertainty is allowed
  nodes[2].clock_uncertainty_ms = 200;
  std::vector<CheckResult> rows = CompareNodes(nodes, 1000);
  const CheckResult& clock = Row(rows, "clock_offset");
  EXPECT_FALSE(clock.passed);
  EXPECT_EQ(clock.severity, Severity::kWarn);
  EXPECT_EQ(Fact(clock, "odd_nodes"), "b (-2500 ms)");
}

TokenExchange Exchange(size_t n) {
  TokenExchange t;
  t.shared_path = "/cfs";
  t.write_error.assign(n, "");
  t.read_error.assign(n, "");
  t.seen.assign(n, std::vector<bool>(n, false));
  return t;
}

std::vector<NodeReport> Nodes(size_t n) {
  std::vector<NodeReport> nodes;
  for (size_t i = 0; i < n; ++i) nodes.push_back(Node("n" + std::to_string(i), {}));
  return nodes;
}

TEST(SharedPath, TheNodeOutsideTheLargestMutualGroupFails) {
  // n0, n1, n3 share /cfs; n2 has a local directory there (sees only itself).
  TokenExchange t = Exchange(4);
  for (size_t i : {0u, 1u, 3u})
    for (size_t j : {0u, 1u, 3u}) t.seen[i][j] = true;
  t.seen[2][2] = true;
  std::vector<NodeReport> nodes = Nodes(4);
  AddSharedPathResults(t, &nodes);
  for (size_t i = 0; i < 4; ++i) {
    const CheckResult& r = nodes[i].results.back();
    EXPECT_EQ(r.id, "shared_path_same_fs");
    EXPECT_EQ(r.passed, i != 2) << i << ": " << r.found;
  }
  EXPECT_THAT(nodes[2].results.back().found, HasSubstr("sees no other node's token"));
  EXPECT_THAT(nodes[2].results.back().found, HasSubstr("none of n0, n1, n3 sees its token"));
  EXPECT_THAT(nodes[0].results.back().found, HasSubstr("all 3 nodes"));
}

TEST(SharedPath, OneWayVisibilityIsNotSharing) {
  // n1 reads everyone's tokens (say a stale read-only copy) but nobody reads n1's.
  TokenExchange t = Exchange(3);
  for (size_t i = 0; i < 3; ++i) t.seen[i][i] = true;
  t.seen[0][2] = t.seen[2][0] = true;
  t.seen[1][0] = t.seen[1][2] = true;
  std::vector<NodeReport> nodes = Nodes(3);
  AddSharedPathResults(t, &nodes);
  EXPECT_TRUE(nodes[0].results.back().passed);
  EXPECT_FALSE(nodes[1].results.back().passed);
  EXPECT_THAT(nodes[1].results.back().found, HasSubstr("sees only n0, n2"));
  EXPECT_TRUE(nodes[2].results.back().passed);
}

TEST(SharedPath, WriteAndReadErrorsAreReportedAsSuch) {
  TokenExchange t = Exchange(3);
  t.seen[0][0] = true;
  t.write_error[1] = "writing /cfs/.coord-check/x/node-1 did not answer within 5.0 s";
  t.read_error[2] = "Permission denied";
  std::vector<NodeReport> nodes = Nodes(3);
  nodes.push_back(Node("down", {}));
  nodes.back().reachable = false;
  t.write_error.push_back("");
  t.read_error.push_back("");
  for (auto& row : t.seen) row.push_back(false);
  t.seen.push_back(std::vector<bool>(4, false));
  AddSharedPathResults(t, &nodes);
  EXPECT_THAT(nodes[1].results.back().found, HasSubstr("could not write its token"));
  EXPECT_THAT(nodes[2].results.back().found, HasSubstr("could not read the tokens"));
  EXPECT_EQ(nodes[3].results.back().id, "facts") << "an unreachable node gets no row";
}

TEST(ClusterReport, ExitCodeAndTable) {
  ClusterReport report;
  report.nodes = Nodes(2);
  CheckResult warn;
  warn.id = "nofile_limit";
  warn.passed = false;
  warn.severity = Severity::kWarn;
  warn.found = "soft 1024";
  warn.hint = "raise nofile";
  for (NodeReport& n : report.nodes) n.results.push_back(warn);
  EXPECT_EQ(ClusterExitCode(report), 1);
  std::string table = FormatClusterReport(report);
  EXPECT_THAT(table, HasSubstr("nofile_limit  WARN  WARN"));
  // Identical misses fold into one entry naming every node.
  EXPECT_THAT(table, HasSubstr("WARN  nofile_limit on n0, n1: soft 1024"));

  NodeReport down;
  down.name = "n9:7071";
  down.reachable = false;
  down.error = "connection refused";
  report.nodes.push_back(down);
  EXPECT_EQ(ClusterExitCode(report), 2);
  EXPECT_THAT(FormatClusterReport(report), HasSubstr("FAIL  n9:7071: unreachable: connection refused"));
  nlohmann::json j = ClusterReportToJson(report);
  EXPECT_EQ(j["exit_code"], 2);
  EXPECT_FALSE(j["nodes"][2]["reachable"].get<bool>());
}

TEST(ClusterReport, ManyNodesFoldIntoOneSummaryColumn) {
  ClusterReport report;
  report.nodes = Nodes(32);
  CheckResult ok;
  ok.id = "shm_size";
  for (NodeReport& n : report.nodes) n.results.push_back(ok);
  report.nodes[7].results.back().passed = false;
  report.nodes[7].results.back().severity = Severity::kFail;
  std::string table = FormatClusterReport(report);
  EXPECT_THAT(table, HasSubstr("NODES (32)"));
  EXPECT_THAT(table, HasSubstr("shm_size  FAIL n7; ok on 31 nodes"));
  EXPECT_THAT(table, Not(HasSubstr("n31  ")));
}

// The free space checkpoint_disk asks for is two checkpoints of the model: its
// parameter count must be the trainer's.
TEST(CheckpointEstimate, MatchesTheTrainersParameterCount) {
  struct Case {
    int layers, hidden, heads, positions;
  } cases[] = {{4, 256, 8, 256}, {12, 768, 12, 1024}, {50, 4096, 32, 1024}};
  for (const Case& c : cases) {
    trainer::GptConfig config;
    config.num_layers = c.layers;
    config.hidden_size = c.hidden;
    config.num_attention_heads = c.heads;
    config.seq_length = config.max_position_embeddings = c.positions;
    const double params = static_cast<double>(trainer::GptParamLayout(config).num_params());
    nlohmann::json model = {{"num_layers", c.layers},
                            {"hidden_size", c.hidden},
                            {"num_attention_heads", c.heads},
                            {"max_position_embeddings", c.positions}};
    EXPECT_NEAR(static_cast<double>(EstimateCheckpointBytes(model)), 12 * params, 16)
        << c.layers << "x" << c.hidden;
  }
  EXPECT_EQ(EstimateCheckpointBytes(nlohmann::json::object()), 0u);
}

}  // namespace
}  // namespace coord::env_check
