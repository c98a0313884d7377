// Unit tests for rank environment discovery (trainer/dist/rank_env.h): every launcher
// (env://, Open MPI, Slurm, none), their precedence and defaults, every rejected value
// (the message must name the variable), and the Slurm node list forms.
#include "trainer/dist/rank_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gpt_rank::dist {
namespace {

using ::testing::HasSubstr;

using Vars = std::map<std::string, std::string>;

EnvLookup LookupIn(const Vars& vars) {
  return [&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

RankEnv Env(int rank, int world_size, int local_rank, int local_world_size, int node_rank,
            const std::string& master_addr, int master_port, const std::string& source) {
  RankEnv e;
  e.rank = rank;
  e.world_size = world_size;
  e.local_rank = local_rank;
  e.local_world_size = local_world_size;
  e.node_rank = node_rank;
  e.master_addr = master_addr;
  e.master_port = master_port;
  e.source = source;
  return e;
}

void ExpectEnv(const RankEnv& got, const RankEnv& want) {
  EXPECT_EQ(got.rank, want.rank);
  EXPECT_EQ(got.world_size, want.world_size);
  EXPECT_EQ(got.local_rank, want.local_rank);
  EXPECT_EQ(got.local_world_size, want.local_world_size);
  EXPECT_EQ(got.node_rank, want.node_rank);
  EXPECT_EQ(got.master_addr, want.master_addr);
  EXPECT_EQ(got.master_port, want.master_port);
  EXPECT_EQ(got.source, want.source);
}

// ---------------------------------------------------------------------------
// Accepted environments

struct OkCase {
  const char* name;
  Vars vars;
  RankEnv want;
};

const Vars kTorch = {{"RANK", "5"},           {"WORLD_SIZE", "16"},
                     {"LOCAL_RANK", "1"},     {"LOCAL_WORLD_SIZE", "8"},
                     {"GROUP_RANK", "0"},     {"MASTER_ADDR", "node0"},
                     {"MASTER_PORT", "29501"}};
const Vars kOmpiOneNode = {{"OMPI_COMM_WORLD_RANK", "2"},
                           {"OMPI_COMM_WORLD_SIZE", "4"},
                           {"OMPI_COMM_WORLD_LOCAL_RANK", "2"},
                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                           {"OMPI_COMM_WORLD_NODE_RANK", "2"}};
const Vars kSlurm = {{"SLURM_PROCID", "5"},
                     {"SLURM_NTASKS", "8"},
                     {"SLURM_LOCALID", "1"},
                     {"SLURM_NODEID", "1"},
                     {"SLURM_TASKS_PER_NODE", "4(x2)"},
                     {"SLURM_JOB_NODELIST", "gpu[07-08]"}};

Vars With(Vars base, const Vars& changes) {
  for (const auto& [k, v] : changes) base[k] = v;
  return base;
}
Vars Without(Vars base, const std::vector<std::string>& names) {
  for (const std::string& n : names) base.erase(n);
  return base;
}

const OkCase kOkCases[] = {
    {"nothing set", {}, Env(0, 1, 0, 1, 0, "", 0, "single")},
    {"unrelated variables",
     {{"HOME", "/root"}, {"MASTER_ADDR", "x"}},
     Env(0, 1, 0, 1, 0, "", 0, "single")},
    {"empty RANK and WORLD_SIZE count as unset",
     {{"RANK", ""}, {"WORLD_SIZE", ""}},
     Env(0, 1, 0, 1, 0, "", 0, "single")},

    // torch env:// (what Coord's agent sets).
    {"env:// everything set", kTorch, Env(5, 16, 1, 8, 0, "node0", 29501, "env://")},
    {"env:// GROUP_RANK", With(kTorch, {{"RANK", "13"}, {"LOCAL_RANK", "5"}, {"GROUP_RANK", "1"}}),
     Env(13, 16, 5, 8, 1, "node0", 29501, "env://")},
    {"env:// defaults", Without(kTorch, {"LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"}),
     Env(5, 16, 0, 1, 0, "node0", 29501, "env://")},
    {"env:// one rank needs no master",
     {{"RANK", "0"}, {"WORLD_SIZE", "1"}},
     Env(0, 1, 0, 1, 0, "", kDefaultMasterPort, "env://")},
    {"env:// one rank keeps a given master",
     {{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", "h"}},
     Env(0, 1, 0, 1, 0, "h", kDefaultMasterPort, "env://")},
    {"env:// wins over Open MPI and Slurm", With(With(kTorch, kOmpiOneNode), kSlurm),
     Env(5, 16, 1, 8, 0, "node0", 29501, "env://")},

    // Open MPI.
    {"openmpi on one node", kOmpiOneNode,
     Env(2, 4, 2, 4, 0, "127.0.0.1", kDefaultMasterPort, "openmpi")},
    {"openmpi empty MASTER_ADDR counts as unset", With(kOmpiOneNode, {{"MASTER_ADDR", ""}}),
     Env(2, 4, 2, 4, 0, "127.0.0.1", kDefaultMasterPort, "openmpi")},
    {"openmpi across nodes with -x MASTER_ADDR",
     {{"OMPI_COMM_WORLD_RANK", "5"},
      {"OMPI_COMM_WORLD_SIZE", "8"},
      {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
      {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
      {"OMPI_COMM_WORLD_NODE_RANK", "1"},
      {"MASTER_ADDR", "gpu07"},
      {"MASTER_PORT", "12345"}},
     Env(5, 8, 1, 4, 1, "gpu07", 12345, "openmpi")},
    {"openmpi wins over Slurm (mpirun inside an allocation)", With(kSlurm, kOmpiOneNode),
     Env(2, 4, 2, 4, 0, "127.0.0.1", kDefaultMasterPort, "openmpi")},

    // Slurm.
    {"slurm", kSlurm, Env(5, 8, 1, 4, 1, "gpu07", kDefaultMasterPort, "slurm")},
    {"slurm uneven tasks per node: this node's entry",
     {{"SLURM_PROCID", "9"},
      {"SLURM_NTASKS", "11"},
      {"SLURM_LOCALID", "2"},
      {"SLURM_NODEID", "2"},
      {"SLURM_TASKS_PER_NODE", "4(x2),3"},
      {"SLURM_JOB_NODELIST", "gpu[07-09]"}},
     Env(9, 11, 2, 3, 2, "gpu07", kDefaultMasterPort, "slurm")},
    {"slurm SLURM_NTASKS_PER_NODE first",
     With(kSlurm, {{"SLURM_NTASKS_PER_NODE", "2"}, {"SLURM_NODEID", "2"}}),
     Env(5, 8, 1, 2, 2, "gpu07", kDefaultMasterPort, "slurm")},
    {"slurm MASTER_ADDR and MASTER_PORT from the environment",
     With(kSlurm, {{"MASTER_ADDR", "login1"}, {"MASTER_PORT", "2222"}}),
     Env(5, 8, 1, 4, 1, "login1", 2222, "slurm")},
    {"slurm SLURM_NODELIST when SLURM_JOB_NODELIST is unset",
     With(Without(kSlurm, {"SLURM_JOB_NODELIST"}), {{"SLURM_NODELIST", "cpu3,cpu4"}}),
     Env(5, 8, 1, 4, 1, "cpu3", kDefaultMasterPort, "slurm")},
    {"slurm one node without a node list",
     {{"SLURM_PROCID", "3"},
      {"SLURM_NTASKS", "4"},
      {"SLURM_LOCALID", "3"},
      {"SLURM_TASKS_PER_NODE", "4"}},
     Env(3, 4, 3, 4, 0, "127.0.0.1", kDefaultMasterPort, "slurm")},
};

TEST(DiscoverRankEnv, AcceptedEnvironments) {
  for (const OkCase& c : kOkCases) {
    SCOPED_TRACE(c.name);
    coord::StatusOr<RankEnv> env = DiscoverRankEnv(LookupIn(c.vars));
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    ExpectEnv(*env, c.want);
  }
}

// ---------------------------------------------------------------------------
// Rejected environments: InvalidArgument naming the variable, its value and the range.

struct ErrorCase {
  const char* name;
  Vars vars;
  std::vector<std::string> message_has;
};

const Vars kOmpiTwoNodes = {{"OMPI_COMM_WORLD_RANK", "5"},
                            {"OMPI_COMM_WORLD_SIZE", "8"},
                            {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                            {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}};

const ErrorCase kErrorCases[] = {
    // env://
    {"RANK not an integer",
     With(kTorch, {{"RANK", "x"}, {"WORLD_SIZE", "4"}}),
     {"RANK=\"x\": expected an integer in [0, WORLD_SIZE=4)"}},
    {"RANK == WORLD_SIZE",
     With(kTorch, {{"RANK", "16"}}),
     {"RANK=\"16\": expected an integer in [0, WORLD_SIZE=16)"}},
    {"RANK negative", With(kTorch, {{"RANK", "-1"}}), {"RANK=\"-1\""}},
    {"RANK with trailing junk", With(kTorch, {{"RANK", "3 "}}), {"RANK=\"3 \""}},
    {"WORLD_SIZE zero",
     With(kTorch, {{"WORLD_SIZE", "0"}}),
     {"WORLD_SIZE=\"0\": expected an integer >= 1"}},
    {"WORLD_SIZE overflows",
     With(kTorch, {{"WORLD_SIZE", "99999999999"}}),
     {"WORLD_SIZE=\"99999999999\""}},
    {"WORLD_SIZE missing", Without(kTorch, {"WORLD_SIZE"}), {"WORLD_SIZE is not set", "RANK"}},
    {"RANK missing", Without(kTorch, {"RANK"}), {"RANK is not set", "[0, WORLD_SIZE=16)"}},
    {"LOCAL_RANK == LOCAL_WORLD_SIZE",
     With(kTorch, {{"LOCAL_RANK", "8"}}),
     {"LOCAL_RANK=\"8\": expected an integer in [0, LOCAL_WORLD_SIZE=8)"}},
    {"LOCAL_RANK without LOCAL_WORLD_SIZE",
     Without(kTorch, {"LOCAL_WORLD_SIZE"}),
     {"LOCAL_RANK=\"1\": expected an integer in [0, LOCAL_WORLD_SIZE=1)"}},
    {"LOCAL_WORLD_SIZE above WORLD_SIZE",
     With(kTorch, {{"LOCAL_WORLD_SIZE", "32"}}),
     {"LOCAL_WORLD_SIZE=\"32\": expected an integer in [1, WORLD_SIZE=16]"}},
    {"GROUP_RANK out of range", With(kTorch, {{"GROUP_RANK", "16"}}), {"GROUP_RANK=\"16\""}},
    {"MASTER_ADDR missing",
     Without(kTorch, {"MASTER_ADDR"}),
     {"MASTER_ADDR is not set", "WORLD_SIZE=16"}},
    {"MASTER_ADDR empty", With(kTorch, {{"MASTER_ADDR", ""}}), {"MASTER_ADDR is not set"}},
    {"MASTER_PORT missing",
     Without(kTorch, {"MASTER_PORT"}),
     {"MASTER_PORT is not set", "[1, 65535]"}},
    {"MASTER_PORT zero",
     With(kTorch, {{"MASTER_PORT", "0"}}),
     {"MASTER_PORT=\"0\": expected a port in [1, 65535]"}},
    {"MASTER_PORT too large", With(kTorch, {{"MASTER_PORT", "65536"}}), {"MASTER_PORT=\"65536\""}},
    {"MASTER_PORT not a number", With(kTorch, {{"MASTER_PORT", "http"}}), {"MASTER_PORT=\"http\""}},
    {"env:// one rank, bad MASTER_PORT",
     {{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "-5"}},
     {"MASTER_PORT=\"-5\""}},

    // Open MPI
    {"openmpi across nodes without MASTER_ADDR",
     kOmpiTwoNodes,
     {"MASTER_ADDR is not set", "OMPI_COMM_WORLD_LOCAL_SIZE=4 < OMPI_COMM_WORLD_SIZE=8",
      "-x MASTER_ADDR=<host of rank 0>"}},
    {"openmpi rank == size",
     With(kOmpiOneNode, {{"OMPI_COMM_WORLD_RANK", "4"}}),
     {"OMPI_COMM_WORLD_RANK=\"4\": expected an integer in [0, OMPI_COMM_WORLD_SIZE=4)"}},
    {"openmpi size missing",
     Without(kOmpiOneNode, {"OMPI_COMM_WORLD_SIZE"}),
     {"OMPI_COMM_WORLD_SIZE is not set"}},
    {"openmpi local rank too big",
     With(kOmpiOneNode, {{"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}),
     {"OMPI_COMM_WORLD_LOCAL_RANK=\"2\": expected an integer in [0, "
      "OMPI_COMM_WORLD_LOCAL_SIZE=2)"}},
    {"openmpi local size missing",
     Without(kOmpiOneNode, {"OMPI_COMM_WORLD_LOCAL_SIZE"}),
     {"OMPI_COMM_WORLD_LOCAL_SIZE is not set"}},
    {"openmpi bad MASTER_PORT",
     With(kOmpiOneNode, {{"MASTER_PORT", "99999"}}),
     {"MASTER_PORT=\"99999\""}},

    // Slurm
    {"slurm procid == ntasks",
     With(kSlurm, {{"SLURM_PROCID", "8"}}),
     {"SLURM_PROCID=\"8\": expected an integer in [0, SLURM_NTASKS=8)"}},
    {"slurm ntasks missing", Without(kSlurm, {"SLURM_NTASKS"}), {"SLURM_NTASKS is not set"}},
    {"slurm localid too big",
     With(kSlurm, {{"SLURM_LOCALID", "4"}}),
     {"SLURM_LOCALID=\"4\": expected an integer in [0, SLURM_TASKS_PER_NODE=4)"}},
    {"slurm localid missing", Without(kSlurm, {"SLURM_LOCALID"}), {"SLURM_LOCALID is not set"}},
    {"slurm malformed tasks per node",
     With(kSlurm, {{"SLURM_TASKS_PER_NODE", "4(x"}}),
     {"SLURM_TASKS_PER_NODE=\"4(x\"", "4(x2),3"}},
    {"slurm tasks per node trailing comma",
     With(kSlurm, {{"SLURM_TASKS_PER_NODE", "4,"}}),
     {"SLURM_TASKS_PER_NODE=\"4,\""}},
    {"slurm tasks per node lists too few nodes",
     With(kSlurm, {{"SLURM_NODEID", "2"}}),
     {"SLURM_TASKS_PER_NODE=\"4(x2)\"", "lists 2 nodes", "SLURM_NODEID=2"}},
    {"slurm no tasks per node",
     Without(kSlurm, {"SLURM_TASKS_PER_NODE"}),
     {"SLURM_NTASKS_PER_NODE and SLURM_TASKS_PER_NODE are not set"}},
    {"slurm ntasks per node above ntasks",
     With(kSlurm, {{"SLURM_NTASKS_PER_NODE", "9"}}),
     {"SLURM_NTASKS_PER_NODE=\"9\": expected an integer in [1, SLURM_NTASKS=8]"}},
    {"slurm bad node id", With(kSlurm, {{"SLURM_NODEID", "x"}}), {"SLURM_NODEID=\"x\""}},
    {"slurm malformed node list",
     With(kSlurm, {{"SLURM_JOB_NODELIST", "gpu[07"}}),
     {"SLURM_JOB_NODELIST=\"gpu[07\"", "expected a Slurm node list"}},
    {"slurm several nodes, no node list",
     Without(kSlurm, {"SLURM_JOB_NODELIST"}),
     {"MASTER_ADDR, SLURM_JOB_NODELIST and SLURM_NODELIST are not set"}},
    {"slurm bad MASTER_PORT", With(kSlurm, {{"MASTER_PORT", "0"}}), {"MASTER_PORT=\"0\""}},
};

TEST(DiscoverRankEnv, RejectedEnvironmentsNameTheVariable) {
  for (const ErrorCase& c : kErrorCases) {
    SCOPED_TRACE(c.name);
    coord::StatusOr<RankEnv> env = DiscoverRankEnv(LookupIn(c.vars));
    ASSERT_FALSE(env.ok()) << "accepted; source " << env->source;
    EXPECT_EQ(env.status().code(), coord::StatusCode::kInvalidArgument);
    for (const std::string& part : c.message_has)
      EXPECT_THAT(env.status().message(), HasSubstr(part));
  }
}

// The run and its restart count (what checkpoint saves are fenced by) come from torchrun's
// variables under every launcher, and default to "" and 0.
TEST(DiscoverRankEnv, RunIdAndRestartCountUnderAnyLauncher) {
  const Vars torch = {{"RANK", "0"},
                      {"WORLD_SIZE", "1"},
                      {"TORCHELASTIC_RUN_ID", "job-1"},
                      {"TORCHELASTIC_RESTART_COUNT", "3"}};
  coord::StatusOr<RankEnv> env = DiscoverRankEnv(LookupIn(torch));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->run_id, "job-1");
  EXPECT_EQ(env->restart_count, 3);
  const Vars slurm = {{"SLURM_PROCID", "0"},
                      {"SLURM_NTASKS", "1"},
                      {"SLURM_NTASKS_PER_NODE", "1"},
                      {"SLURM_LOCALID", "0"},
                      {"TORCHELASTIC_RESTART_COUNT", "2"}};
  env = DiscoverRankEnv(LookupIn(slurm));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->restart_count, 2);
  env = DiscoverRankEnv(LookupIn(Vars{}));
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->run_id, "");
  EXPECT_EQ(env->restart_count, 0);
  const Vars bad = {{"TORCHELASTIC_RESTART_COUNT", "-1"}};
  env = DiscoverRankEnv(LookupIn(bad));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(env.status().message(), HasSubstr("TORCHELASTIC_RESTART_COUNT=\"-1\""));
}

// The overload without a lookup reads the process environment.
TEST(DiscoverRankEnv, ReadsTheProcessEnvironment) {
  const Vars vars = {
      {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "4000"}};
  std::map<std::string, std::optional<std::string>> saved;
  for (const auto& [name, value] : vars) {
    const char* old = ::getenv(name.c_str());
    saved[name] = old ? std::optional<std::string>(old) : std::nullopt;
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  coord::StatusOr<RankEnv> env = DiscoverRankEnv();
  for (const auto& [name, old] : saved) {
    if (old) {
      ::setenv(name.c_str(), old->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 2);
  EXPECT_EQ(env->master_addr, "10.0.0.1");
  EXPECT_EQ(env->master_port, 4000);
}

// ---------------------------------------------------------------------------
// Slurm node lists

TEST(FirstSlurmHost, NodeListForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"gpu[07-09,12],cpu1", "gpu07"},
      {"gpu[12,07-09]", "gpu12"},
      {"gpu[007]", "gpu007"},
      {"node3", "node3"},
      {"a,b", "a"},
      {"cpu1,gpu[07-09]", "cpu1"},
      {"rack[1-2]-node[01-04]", "rack1-node01"},
      {"n[0-3]x,m1", "n0x"},
      {"gpu-a100-[001-004]", "gpu-a100-001"},
      // Malformed: "" so the caller reports the variable.
      {"", ""},
      {"gpu[07", ""},
      {"gpu]", ""},
      {"gpu[]", ""},
      {"a[b[1]]", ""},
  };
  for (const auto& [list, want] : cases)
    EXPECT_EQ(FirstSlurmHost(list), want) << "nodelist " << list;
}

}  // namespace
}  // namespace gpt_rank::dist
