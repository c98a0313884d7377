// Unit tests for the rank environment table (agent/rank_env.h).
#include "agent/rank_env.h"

#include <gtest/gtest.h>

#include <map>

namespace coord::agent {
namespace {

std::map<std::string, std::string> ToMap(const std::vector<std::string>& env) {
  std::map<std::string, std::string> m;
  for (const auto& kv : env) m[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  return m;
}

RankEnvInput Input() {
  RankEnvInput in;
  in.job_id = "j1";
  in.generation = 3;
  in.node_rank = 2;
  in.num_nodes = 4;
  in.world_size = 32;
  in.rank = 17;
  in.local_rank = 1;
  in.local_world_size = 8;
  in.master_addr = "10.0.0.1";
  in.master_port = 29500;
  in.max_restarts = 5;
  in.job_tag = "abc:j1:g3";
  in.node_name = "gpu-node-3";
  in.flight_record = "/state/jobs/j1/g3/rank-17.flight";
  return in;
}

TEST(RankEnvTest, TableSetsTorchrunAndCoordVariables) {
  auto env = ToMap(BuildRankEnv({}, {}, Input()));
  std::map<std::string, std::string> want = {{"RANK", "17"},
                                             {"LOCAL_RANK", "1"},
                                             {"WORLD_SIZE", "32"},
                                             {"LOCAL_WORLD_SIZE", "8"},
                                             {"NODE_RANK", "2"},
                                             {"GROUP_RANK", "2"},
                                             {"GROUP_WORLD_SIZE", "4"},
                                             {"ROLE_RANK", "17"},
                                             {"ROLE_WORLD_SIZE", "32"},
                                             {"ROLE_NAME", "default"},
                                             {"MASTER_ADDR", "10.0.0.1"},
                                             {"MASTER_PORT", "29500"},
                                             {"TORCHELASTIC_RESTART_COUNT", "3"},
                                             {"TORCHELASTIC_MAX_RESTARTS", "5"},
                                             {"TORCHELASTIC_RUN_ID", "j1"},
                                             {"COORD_JOB_ID", "j1"},
                                             {"COORD_RESTART_COUNT", "3"},
                                             {"COORD_NODE_RANK", "2"},
                                             {"COORD_JOB_TAG", "abc:j1:g3"},
                                             {"COORD_PROGRESS_FD", "3"},
                                             {"COORD_NODE_NAME", "gpu-node-3"},
                                             {"COORD_FLIGHT_RECORD",
                                              "/state/jobs/j1/g3/rank-17.flight"}};
  EXPECT_EQ(env, want);
  EXPECT_EQ(RankEnvTable().size(), want.size());
}

TEST(RankEnvTest, LayersOverrideInOrderAndKeepPositions) {
  std::vector<std::string> base = {"PATH=/bin", "RANK=base", "HOME=/root", "JUNK", "=x"};
  std::map<std::string, std::string> job = {{"HOME", "/job"}, {"RANK", "job"}, {"NEW", "1"}};
  auto env = BuildRankEnv(base, job, Input());
  EXPECT_EQ(env[0], "PATH=/bin");
  EXPECT_EQ(env[1], "RANK=17");    // the table beats the job and the agent
  EXPECT_EQ(env[2], "HOME=/job");  // the job beats the agent
  auto m = ToMap(env);
  EXPECT_EQ(m["NEW"], "1");
  EXPECT_EQ(m.count("JUNK"), 0u);
  EXPECT_EQ(m.count(""), 0u);
}

TEST(RankEnvTest, ValidatesEntries) {
  EXPECT_TRUE(ValidateEnvEntry("A", "b c").ok());
  EXPECT_FALSE(ValidateEnvEntry("", "x").ok());
  EXPECT_FALSE(ValidateEnvEntry("A=B", "x").ok());
  EXPECT_FALSE(ValidateEnvEntry(std::string("A\0B", 3), "x").ok());
  EXPECT_FALSE(ValidateEnvEntry("A", std::string("x\0y", 3)).ok());
}

}  // namespace
}  // namespace coord::agent
