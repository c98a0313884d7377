// Rank layout rules: nproc from the spec, else common slots, else 1; world size; node and
// global rank order; MASTER_ADDR/PORT; slots limits; parse errors as INVALID_ARGUMENT.
#include "coordinator/job_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace coord::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

StartJobRequest Request(const std::string& hosts, const std::string& launch_extra = "") {
  StartJobRequest r;
  r.set_hosts_text(hosts);
  r.set_hosts_path("hosts.txt");
  r.set_config_path("job.json");
  r.set_config_json(R"({"name": "demo", "launch": {"command": ["/bin/true"])" + launch_extra +
                    "}}");
  r.set_workdir("/submit/cwd");
  return r;
}

TEST(JobPlanTest, NprocFromSpecLaysOutRanksInHostOrder) {
  auto p = BuildPlan(Request("b1\na1:7100\nc1\n", R"(, "nproc_per_node": 4)"), false);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->plan.nproc_per_node, 4);
  EXPECT_EQ(p->plan.world_size, 12);
  EXPECT_EQ(p->plan.master_addr, "b1");  // first host as written, not sorted
  EXPECT_THAT(RanksOfNode(p->plan, 0), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(RanksOfNode(p->plan, 2), ElementsAre(8, 9, 10, 11));
  auto req = MakeLaunchRequest(p->plan, "demo-abcdef", 0, 1, 29400);
  EXPECT_EQ(req.node_rank(), 1);
  EXPECT_EQ(req.num_nodes(), 3);
  EXPECT_EQ(req.world_size(), 12);
  EXPECT_THAT(req.ranks(), ElementsAre(4, 5, 6, 7));
  EXPECT_EQ(req.master_addr(), "b1");
  EXPECT_EQ(req.master_port(), 29400);
  EXPECT_THAT(req.argv(), ElementsAre("/bin/true"));
  EXPECT_EQ(req.workdir(), "/submit/cwd");
}

TEST(JobPlanTest, HostsBeyondNnodesAreSparesAndElasticKeepsTheMinimum) {
  auto p = BuildPlan(Request("a\nb\nc\nd\n", R"(, "nnodes": 2, "nproc_per_node": 2)"), false);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->plan.hosts.size(), 2u);
  EXPECT_EQ(p->plan.pool.size(), 4u);
  EXPECT_EQ(p->plan.world_size, 4);
  EXPECT_EQ(p->plan.min_nodes, 2);
  auto too_many = BuildPlan(Request("a\nb\n", R"(, "nnodes": "3:4")"), false);
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.status().message(),
              HasSubstr("launch.nnodes asks for at least 3 nodes but hosts.txt lists 2"));
  auto up_to = BuildPlan(Request("a\nb\n", R"(, "nnodes": "1:4")"), false);
  ASSERT_TRUE(up_to.ok());
  EXPECT_EQ(up_to->plan.hosts.size(), 2u);
  EXPECT_THAT(up_to->warnings, ElementsAre(HasSubstr("so the job runs on 2")));
}

TEST(JobPlanTest, ChooseNodesReplacesDropsOrWaits) {
  auto p = BuildPlan(Request("a\nb\nc\nd\n", R"(, "nnodes": "2:3")"), false);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const JobPlan& plan = p->plan;  // a b c running, d spare
  const std::vector<HostEntry> spares(plan.pool.begin() + 3, plan.pool.end());
  auto targets = [](const std::vector<HostEntry>& hs) {
    std::vector<std::string> out;
    for (const HostEntry& h : hs) out.push_back(h.host);
    return out;
  };
  // A bad node takes the spare's place, at its own node rank.
  Relayout r = ChooseNodes(plan, {plan.hosts[1].Target()}, spares);
  EXPECT_THAT(targets(r.hosts), ElementsAre("a", "d", "c"));
  EXPECT_EQ(r.replaced.size(), 1u);
  // Two bad nodes, one spare: the second is dropped (3 -> 2 >= MIN).
  r = ChooseNodes(plan, {plan.hosts[0].Target(), plan.hosts[1].Target()}, spares);
  EXPECT_THAT(targets(r.hosts), ElementsAre("d", "c"));
  EXPECT_EQ(r.dropped.size(), 1u);
  // No spare and below MIN: wait for them, layout unchanged.
  r = ChooseNodes(plan, {plan.hosts[0].Target(), plan.hosts[1].Target()}, {});
  EXPECT_THAT(targets(r.hosts), ElementsAre("a", "b", "c"));
  EXPECT_EQ(r.waiting_for.size(), 2u);
  EXPECT_TRUE(r.replaced.empty());
}

TEST(JobPlanTest, NprocFromCommonSlotsElseOne) {
  auto same = BuildPlan(Request("a slots=8\nb slots=8\n"), false);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->plan.nproc_per_node, 8);
  EXPECT_EQ(same->plan.world_size, 16);
  EXPECT_TRUE(same->warnings.empty());

  auto mixed = BuildPlan(Request("a slots=8\nb slots=4\n"), false);
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_EQ(mixed->plan.nproc_per_node, 1);
  ASSERT_EQ(mixed->warnings.size(), 1u);
  EXPECT_THAT(mixed->warnings[0], HasSubstr("different"));

  auto none = BuildPlan(Request("a\nb\nc\n"), false);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->plan.nproc_per_node, 1);
  EXPECT_EQ(none->plan.world_size, 3);
}

TEST(JobPlanTest, NprocAboveSlotsNamesTheHostsLine) {
  auto p =
      BuildPlan(Request("a slots=8\n# gpu box\nb slots=4\n", R"(, "nproc_per_node": 8)"), false);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("hosts.txt:3"));
  EXPECT_THAT(p.status().message(), HasSubstr("slots=4"));
}

TEST(JobPlanTest, MasterPortAndWorkdirFromSpec) {
  auto p = BuildPlan(Request("a\n", R"(, "master_port": 29999, "workdir": "/w")"), false);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->plan.master_port, 29999);
  EXPECT_EQ(p->plan.workdir, "/w");
  auto zero = BuildPlan(Request("a\n"), false);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->plan.master_port, 0);  // reserved on node 0 at launch
  EXPECT_EQ(zero->plan.name, "demo");
}

TEST(JobPlanTest, ParseErrorsAreInvalidArgumentWithTheParsersMessage) {
  auto bad_hosts = BuildPlan(Request("a:notaport\n"), false);
  ASSERT_FALSE(bad_hosts.ok());
  EXPECT_EQ(bad_hosts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_hosts.status().message(), HasSubstr("hosts.txt:1"));

  StartJobRequest r = Request("a\n");
  r.set_config_json(R"({"launch": {"nproc_per_node": "8", "command": ["x"]}})");
  auto bad_spec = BuildPlan(r, false);
  ASSERT_FALSE(bad_spec.ok());
  EXPECT_EQ(bad_spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_spec.status().message(), HasSubstr("launch.nproc_per_node"));

  auto empty = BuildPlan(Request(""), false);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST(JobPlanTest, UnresolvableHostIsInvalidArgument) {
  auto p = BuildPlan(Request("no-such-host.invalid\n"), true);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("hosts.txt:1"));
}

TEST(JobPlanTest, SanitizesJobNames) {
  EXPECT_EQ(SanitizeJobName(""), "job");
  EXPECT_EQ(SanitizeJobName("gpt2 small/run1"), "gpt2-small-run1");
  EXPECT_EQ(SanitizeJobName("--x"), "x");
  EXPECT_EQ(SanitizeJobName(std::string(100, 'a')).size(), 64u);
}

}  // namespace
}  // namespace coord::coordinator
