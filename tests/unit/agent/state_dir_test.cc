// Unit tests for the state-dir layout and records (agent/state_dir.h).
#include "agent/state_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "tests/support/temp_dir.h"

namespace coord::agent {
namespace {

TEST(StateDirTest, JobIdValidation) {
  for (const char* ok : {"a", "job-1", "gpt_125m.run2", "A.b-c_d"}) {
    EXPECT_TRUE(ValidateJobId(ok).ok()) << ok;
  }
  for (const std::string bad : {"", ".", "..", "../x", "a/b", ".hidden", "a b", "a:b", "x\n"}) {
    Status st = ValidateJobId(bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateJobId(std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateJobId(std::string(128, 'a')).ok());
  EXPECT_NE(ValidateJobId("../x").message().find("../x"), std::string::npos);
}

TEST(StateDirTest, TagsAreStableAndParse) {
  std::string t = AgentTag("/var/lib/coord-agent");
  EXPECT_EQ(t.size(), 12u);
  EXPECT_EQ(t, AgentTag("/var/lib/coord-agent"));
  EXPECT_NE(t, AgentTag("/var/lib/coord-agent2"));
  EXPECT_EQ(AgentTag(""), "cbf29ce48422");  // FNV-1a 64 offset basis: never changes
  std::string tag = JobTag(t, "job.1", 12);
  EXPECT_EQ(tag, t + ":job.1:g12");
  std::string a, j;
  int g = -1;
  ASSERT_TRUE(ParseJobTag(tag, &a, &j, &g));
  EXPECT_EQ(a, t);
  EXPECT_EQ(j, "job.1");
  EXPECT_EQ(g, 12);
  EXPECT_FALSE(ParseJobTag("nocolon", &a, &j, &g));
  EXPECT_FALSE(ParseJobTag("a:b:x3", &a, &j, &g));
  EXPECT_FALSE(ParseJobTag("a::g3", &a, &j, &g));
}

TEST(StateDirTest, Names) {
  EXPECT_EQ(GenDir("/s", "j", 4), "/s/jobs/j/g4");
  EXPECT_EQ(ParseGenDirName("g0"), 0);
  EXPECT_EQ(ParseGenDirName("g17"), 17);
  EXPECT_EQ(ParseGenDirName("g"), -1);
  EXPECT_EQ(ParseGenDirName("g-1"), -1);
  EXPECT_EQ(ParseGenDirName("x1"), -1);
  EXPECT_EQ(ParseRankRecordName(RankExitName(12), ".exit"), 12);
  EXPECT_EQ(ParseRankRecordName(RankStartedName(3), ".started"), 3);
  EXPECT_EQ(ParseRankRecordName("rank-3.exit.tmp.12", ".exit"), -1);
  EXPECT_EQ(ParseRankRecordName("rank-.exit", ".exit"), -1);
  EXPECT_EQ(ParseRankRecordName("rank-3.out", ".exit"), -1);
}

TEST(StateDirTest, RecordsRoundTrip) {
  coord::testing::TempDir tmp;
  const std::string dir = tmp.path();

  GenSpec spec;
  spec.job_id = "j";
  spec.generation = 2;
  spec.node_rank = 1;
  spec.tag = "t:j:g2";
  spec.workdir = "/w";
  spec.cgroup_dir = "/sys/fs/cgroup/x/j.g2";
  spec.ranks.push_back({4, 0, {"prog", "a b"}, {"A=1", "B=x=y"}});
  ASSERT_TRUE(WriteRecord(dir + "/spec", ToJson(spec)).ok());
  GenSpec back;
  ASSERT_TRUE(ReadRecord(dir + "/spec", &back).ok());
  EXPECT_EQ(back.tag, spec.tag);
  EXPECT_EQ(back.cgroup_dir, spec.cgroup_dir);
  ASSERT_EQ(back.ranks.size(), 1u);
  EXPECT_EQ(back.ranks[0].rank, 4);
  EXPECT_EQ(back.ranks[0].argv, spec.ranks[0].argv);
  EXPECT_EQ(back.ranks[0].env, spec.ranks[0].env);

  RankStarted st{3, 1, {1234, 99999999999ull}, 1700000000123};
  ASSERT_TRUE(WriteRecord(dir + "/s", ToJson(st)).ok());
  RankStarted st2;
  ASSERT_TRUE(ReadRecord(dir + "/s", &st2).ok());
  EXPECT_EQ(st2.proc.pid, 1234);
  EXPECT_EQ(st2.proc.start_ticks, 99999999999ull);
  EXPECT_EQ(st2.start_ms, 1700000000123);

  RankExit ex{3, 0, 9, 5, "exec 'x': No such file or directory"};
  ASSERT_TRUE(WriteRecord(dir + "/e", ToJson(ex)).ok());
  RankExit ex2;
  ASSERT_TRUE(ReadRecord(dir + "/e", &ex2).ok());
  EXPECT_EQ(ex2.signal, 9);
  EXPECT_EQ(ex2.error, ex.error);

  Launched l{false, 2, "boom"};
  ASSERT_TRUE(WriteRecord(dir + "/l", ToJson(l)).ok());
  Launched l2;
  ASSERT_TRUE(ReadRecord(dir + "/l", &l2).ok());
  EXPECT_FALSE(l2.ok);
  EXPECT_EQ(l2.failed_rank, 2);

  EXPECT_EQ(ReadRecord(dir + "/missing", &l2).code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteRecord(dir + "/bad", "{not json").ok());
  EXPECT_EQ(ReadRecord(dir + "/bad", &l2).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteRecord(dir + "/bad", "{}").ok());
  EXPECT_EQ(ReadRecord(dir + "/bad", &st2).code(), StatusCode::kInvalidArgument);
  // No temp files are left behind.
  auto names = ListDir(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 5u);
  ASSERT_TRUE(tmp.Remove().ok());
}

// Records are read back after an agent restart from files anything could have written
// (tests/fuzz/state_dir_fuzz.cc): a number that does not fit its field (1e300 used to be
// converted to an int with undefined behaviour), 1e400, deep nesting, bytes that are not
// UTF-8 and wrong types are each an INVALID_ARGUMENT naming the file and what was wrong.
TEST(StateDirTest, MalformedRecordsAreErrorsNamingTheFile) {
  coord::testing::TempDir tmp;
  const std::string path = tmp.path() + "/rank-0.exit";
  auto error_of = [&](const std::string& text) {
    EXPECT_TRUE(WriteRecord(path, text).ok());
    RankExit exit;
    Status st = ReadRecord(path, &exit);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << text.substr(0, 60);
    EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
    return st.message();
  };
  const std::string tail = R"(, "signal": 0, "end_ms": 1, "error": ""})";
  EXPECT_NE(error_of(R"({"rank": 1e300, "exit_code": 0)" + tail).find("1e+300 does not fit int32"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"rank": 0, "exit_code": 2147483648)" + tail).find("does not fit int32"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"rank": 0, "exit_code": 1e400)" + tail).find("1e400"), std::string::npos);
  EXPECT_NE(error_of(R"({"rank": "0", "exit_code": 0)" + tail).find("type must be number"),
            std::string::npos);
  error_of(std::string(100000, '[') + std::string(100000, ']'));
  error_of("{\"rank\": 0, \"exit_code\": 0, \"signal\": 0, \"end_ms\": 1, \"error\": \"\xFF\"}");

  ProcId proc;
  ASSERT_TRUE(WriteRecord(path, R"({"pid": 1, "start_ticks": -1})").ok());
  EXPECT_NE(ReadRecord(path, &proc).message().find("the number -1 does not fit uint64"),
            std::string::npos);
}

}  // namespace
}  // namespace coord::agent
