// The host-memory check gpt-rank train runs before allocating: each limit (RLIMIT_AS
// per process, the cgroup's and MemAvailable per node, shared by the node's ranks)
// is tested on both sides of the plan's figure, which comes from PlanRankMemory.
#include "trainer/plan/host_memory.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "trainer/plan/gpu_spec.h"
#include "trainer/plan/plan.h"

namespace gpt_rank::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

train::TrainerConfig Slice() {
  auto r = train::LoadTrainerConfig(std::string(COORD_SOURCE_DIR) + "/configs/100B-slice.json",
                                    {"parallel.tensor_model_parallel_size=1",
                                     "zero_optimization.stage=0"},
                                    1, 1);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->config : train::TrainerConfig{};
}

double RankNeed(const train::TrainerConfig& c, int local) {
  ClusterShape cluster;
  cluster.gpus_per_node = local;
  return PlanRankMemory(c, cluster, *FindGpuSpec("h100-80gb")).device_total;
}

std::string GiB(double b) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", b / kGiB);
  return buf;
}

TEST(HostMemoryTest, AConfigThatFitsEveryLimitPasses) {
  const train::TrainerConfig c = Slice();
  const double need = RankNeed(c, 1);
  ASSERT_GT(need, 4 * kGiB);  // 0.6 B parameters x 16 bytes
  HostMemoryLimits l{need + kGiB, need + kGiB, need + kGiB};
  EXPECT_TRUE(CheckHostMemory(c, 1, l).ok());
  EXPECT_TRUE(CheckHostMemory(c, 1, HostMemoryLimits{}).ok());  // nothing known: no check
}

TEST(HostMemoryTest, AnAddressSpaceBelowThePlanNamesRlimitAndTheFigure) {
  const train::TrainerConfig c = Slice();
  const double need = RankNeed(c, 1);
  coord::Status s = CheckHostMemory(c, 1, HostMemoryLimits{need, 0, 0});
  ASSERT_EQ(s.code(), coord::StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("RLIMIT_AS"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("need " + GiB(need)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("micro_batch_size"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("100B-slice.json"), std::string::npos) << s.message();
}

TEST(HostMemoryTest, TheNodesRanksShareMemAvailableAndTheCgroup) {
  const train::TrainerConfig c = Slice();
  const double need = RankNeed(c, 2);
  const double room = 1.5 * need;  // one rank fits, two do not
  EXPECT_TRUE(CheckHostMemory(c, 1, HostMemoryLimits{0, 0, room}).ok());
  coord::Status s = CheckHostMemory(c, 2, HostMemoryLimits{0, 0, room});
  ASSERT_EQ(s.code(), coord::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("for the 2 rank(s) of this node"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("MemAvailable"), std::string::npos) << s.message();
  s = CheckHostMemory(c, 2, HostMemoryLimits{0, room, 0});
  ASSERT_EQ(s.code(), coord::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("memory.max"), std::string::npos) << s.message();
}

TEST(HostMemoryTest, ThisMachinesLimitsAreRead) {
  const HostMemoryLimits l = ReadHostMemoryLimits();
  EXPECT_GT(l.available, 64.0 * 1024 * 1024);  // /proc/meminfo is always there on Linux
  EXPECT_GE(l.cgroup, 0.0);
  EXPECT_GE(l.address_space, 0.0);
}

}  // namespace
}  // namespace gpt_rank::plan
