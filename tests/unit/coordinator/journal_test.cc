// The journal: records survive a reopen (round trip), a torn final line is skipped and cut
// off, a corrupt line in the middle is an error naming its line, replay re-checks state
// transitions, and a second coordd cannot open the same state dir.
#include "coordinator/journal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "common/fs.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tmpfs_mount.h"

namespace coord::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path(); }

  static JobPlan Plan() {
    JobPlan p;
    p.name = "demo";
    p.config_json = R"({"launch": {"command": ["x"]}})";
    p.config_path = "job.json";
    p.hosts_text = "a slots=1\nb slots=1\n";
    p.hosts_path = "hosts.txt";
    p.workdir = "/w";
    HostEntry a, b;
    a.host = "a", a.slots = 1, a.line = 1;
    b.host = "b", b.port = 7100, b.slots = 1, b.line = 2;
    p.hosts = {a, b};
    p.nproc_per_node = 1;
    p.world_size = 2;
    p.master_addr = "a";
    p.argv = {"python3", "train.py"};
    p.env = {{"NCCL_DEBUG", "INFO"}};
    p.kill_grace_ms = 700;
    p.hang_timeout_ms = 6000;
    p.startup_timeout_ms = 120000;
    return p;
  }
  static JobStatus Status0(const std::string& id) {
    JobStatus s;
    s.set_job_id(id);
    s.set_state(PENDING);
    s.set_world_size(2);
    for (int r = 0; r < 2; ++r) {
      auto* rank = s.add_ranks();
      rank->set_job_id(id);
      rank->set_rank(r);
      rank->set_node_rank(r);
    }
    return s;
  }
  // Writes a submitted, then RUNNING, job whose rank 1 exited 3, then FAILED.
  void WriteFailedJob(Journal* j, const std::string& id) {
    JobStatus s = Status0(id);
    ASSERT_TRUE(j->AppendSubmit(Plan(), s).ok());
    s.set_state(LAUNCHING);
    ASSERT_TRUE(j->AppendState(s).ok());
    s.set_state(RUNNING);
    s.set_master_port(29501);
    ASSERT_TRUE(j->AppendState(s).ok());
    agent::RankStatus r1 = s.ranks(1);
    r1.set_state(agent::RANK_EXITED);
    r1.set_exit_code(3);
    ASSERT_TRUE(j->AppendRank(id, r1).ok());
    *s.mutable_ranks(1) = r1;
    s.set_state(FAILED);
    s.mutable_failure()->set_rank(1);
    s.mutable_failure()->set_host("b");
    s.mutable_failure()->set_exit_code(3);
    s.mutable_failure()->set_kind(FAILURE_STARTUP);
    ASSERT_TRUE(j->AppendState(s).ok());
    Failure f = s.failure();
    f.add_stderr_tail("Traceback (most recent call last):");
    f.add_stderr_tail("ValueError: bad");
    ASSERT_TRUE(j->AppendFailure(id, f).ok());
  }
  std::string JournalPath() const { return dir_ + "/journal.jsonl"; }

 public:
  void WriteFailedJobForTest(Journal* j, const std::string& id) { WriteFailedJob(j, id); }

 protected:
  void AppendRaw(const std::string& text) {
    auto old = ReadFile(JournalPath());
    ASSERT_TRUE(old.ok());
    ASSERT_TRUE(WriteFileAtomic(JournalPath(), *old + text).ok());
  }

  coord::testing::TempDir tmp_;
  std::string dir_;  // tmp_'s path
};

TEST_F(JournalTest, RoundTripRestoresStateFailureRanksAndPlan) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    EXPECT_TRUE(jobs.empty());
    WriteFailedJob(j->get(), "demo-000001");
  }
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(jobs.size(), 1u);
  const JournaledJob& job = jobs[0];
  EXPECT_EQ(job.status.job_id(), "demo-000001");
  EXPECT_EQ(job.status.state(), FAILED);
  EXPECT_EQ(job.status.master_port(), 29501);
  EXPECT_EQ(job.status.failure().rank(), 1);
  EXPECT_EQ(job.status.failure().host(), "b");
  EXPECT_EQ(job.status.failure().exit_code(), 3);
  EXPECT_THAT(job.status.failure().stderr_tail(),
              ElementsAre("Traceback (most recent call last):", "ValueError: bad"));
  ASSERT_EQ(job.status.ranks_size(), 2);
  EXPECT_EQ(job.status.ranks(1).state(), agent::RANK_EXITED);
  EXPECT_EQ(job.status.ranks(1).exit_code(), 3);
  EXPECT_EQ(job.plan.hosts.size(), 2u);
  EXPECT_EQ(job.plan.hosts[1].port, 7100);
  EXPECT_EQ(job.plan.hosts[1].line, 2);
  EXPECT_THAT(job.plan.argv, ElementsAre("python3", "train.py"));
  EXPECT_EQ(job.plan.env.at("NCCL_DEBUG"), "INFO");
  EXPECT_EQ(job.plan.kill_grace_ms, 700);
  EXPECT_EQ(job.plan.hang_timeout_ms, 6000);
  EXPECT_EQ(job.plan.startup_timeout_ms, 120000);
  EXPECT_EQ(job.status.failure().kind(), FAILURE_STARTUP);
  EXPECT_EQ(job.plan.config_json, Plan().config_json);
  EXPECT_EQ(job.plan.hosts_text, Plan().hosts_text);
}

// A state record without the rank table ("ranks_unchanged", as coordd writes once the
// journal has the table): replay keeps the table that submit, the last full state and
// the rank records built, and still takes the record's other fields.
TEST_F(JournalTest, AStateRecordWithoutRanksKeepsTheJournaledTable) {
  const std::string id = "demo-000002";
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    JobStatus s = Status0(id);
    ASSERT_TRUE((*j)->AppendSubmit(Plan(), s).ok());
    s.set_state(LAUNCHING);
    ASSERT_TRUE((*j)->AppendState(s).ok());
    s.set_state(RUNNING);
    for (auto& r : *s.mutable_ranks()) r.set_state(agent::RANK_RUNNING), r.set_pid(40 + r.rank());
    ASSERT_TRUE((*j)->AppendState(s).ok());  // the launch's pids: the table, whole
    agent::RankStatus r0 = s.ranks(0);
    r0.set_state(agent::RANK_EXITED);
    r0.set_signal(15);
    ASSERT_TRUE((*j)->AppendRank(id, r0).ok());
    JobStatus killed = s;
    killed.set_state(KILLED);
    killed.set_message("killed by request");
    killed.clear_ranks();
    ASSERT_TRUE((*j)->AppendState(killed, true, /*ranks_unchanged=*/true).ok());
  }
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(jobs.size(), 1u);
  const JobStatus& st = jobs[0].status;
  EXPECT_EQ(st.state(), KILLED);
  EXPECT_EQ(st.message(), "killed by request");
  ASSERT_EQ(st.ranks_size(), 2);
  EXPECT_EQ(st.ranks(0).state(), agent::RANK_EXITED);
  EXPECT_EQ(st.ranks(0).signal(), 15);
  EXPECT_EQ(st.ranks(1).state(), agent::RANK_RUNNING);
  EXPECT_EQ(st.ranks(1).pid(), 41);
}

// A journal written before the startup deadline existed: the hang timeout counted from
// the launch then, so it becomes the startup timeout.
TEST_F(JournalTest, AJournalWithoutAStartupTimeoutTakesTheHangTimeout) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    WriteFailedJob(j->get(), "demo-000001");
  }
  auto text = ReadFile(JournalPath());
  ASSERT_TRUE(text.ok());
  const std::string key = ",\"startup_timeout_ms\":120000";
  const size_t at = text->find(key);
  ASSERT_NE(at, std::string::npos) << *text;
  ASSERT_TRUE(WriteFileAtomic(JournalPath(), text->erase(at, key.size())).ok());
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].plan.startup_timeout_ms, 6000);
}

// A journal from before NodeState wrote node states as words ("spare"); a coordd of
// today replays them as the enum, in the submit record and in the state records.
TEST_F(JournalTest, NodeStatesWrittenAsWordsReplayAsTheEnum) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    JobPlan plan = Plan();
    plan.pool = plan.hosts;
    plan.hosts.pop_back();  // b is the spare
    plan.world_size = 1;
    JobStatus s = Status0("demo-000001");
    s.set_world_size(1);
    s.mutable_ranks()->RemoveLast();
    NodeStatus* node = s.add_nodes();
    node->set_host("a");
    node->set_port(Plan().hosts[0].port);
    node->set_line(1);
    node->set_state(NODE_PENDING);
    NodeStatus* spare = s.add_spares();
    spare->set_host("b");
    spare->set_port(7100);
    spare->set_line(2);
    spare->set_state(NODE_SPARE);
    ASSERT_TRUE(j->get()->AppendSubmit(plan, s).ok());
    s.set_state(LAUNCHING);
    s.mutable_nodes(0)->set_state(NODE_LAUNCHED);
    s.mutable_spares(0)->set_state(NODE_EXCLUDED);
    ASSERT_TRUE(j->get()->AppendState(s).ok());
  }
  auto text = ReadFile(JournalPath());
  ASSERT_TRUE(text.ok());
  std::string old = *text;
  for (const auto& [name, word] : std::vector<std::pair<std::string, std::string>>{
           {"NODE_PENDING", "pending"}, {"NODE_SPARE", "spare"},
           {"NODE_LAUNCHED", "launched"}, {"NODE_EXCLUDED", "excluded"}}) {
    const std::string from = "\"" + name + "\"", to = "\"" + word + "\"";
    const size_t at = old.find(from);
    ASSERT_NE(at, std::string::npos) << name << " in " << old;
    old.replace(at, from.size(), to);
  }
  ASSERT_TRUE(WriteFileAtomic(JournalPath(), old).ok());
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].status.nodes(0).state(), NODE_LAUNCHED);
  EXPECT_EQ(jobs[0].status.spares(0).state(), NODE_EXCLUDED);
}

TEST_F(JournalTest, TornFinalLineIsSkippedAndCutOff) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok());
    JobStatus s = Status0("demo-000002");
    ASSERT_TRUE((*j)->AppendSubmit(Plan(), s).ok());
  }
  AppendRaw(R"({"v":1,"type":"state","job":"demo-000002","status":{"job_id":"de)");
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].status.state(), PENDING);
    // The next record must land on a line of its own.
    JobStatus s = jobs[0].status;
    s.set_state(KILLED);
    ASSERT_TRUE((*j)->AppendState(s).ok());
  }
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].status.state(), KILLED);
}

TEST_F(JournalTest, ZeroFilledTailAfterACrashIsCutOff) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->AppendSubmit(Plan(), Status0("demo-000005")).ok());
  }
  AppendRaw(std::string(64, '\0'));  // blocks allocated, data never written
  for (JobState next : {KILLED, JOB_STATE_UNKNOWN}) {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ASSERT_EQ(jobs.size(), 1u);
    if (next == KILLED) {
      JobStatus s = jobs[0].status;
      s.set_state(KILLED);
      ASSERT_TRUE((*j)->AppendState(s).ok());
    } else {
      EXPECT_EQ(jobs[0].status.state(), KILLED);  // the record after the cut was kept
    }
  }
  auto text = ReadFile(JournalPath());
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find('\0'), std::string::npos);
}

TEST_F(JournalTest, CorruptMiddleLineIsAnErrorNamingTheLine) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->AppendSubmit(Plan(), Status0("demo-000003")).ok());
  }
  // A bad line followed by a good one: not a torn tail but damage in the middle.
  auto text = ReadFile(JournalPath());
  ASSERT_TRUE(text.ok());
  AppendRaw("this is not json\n" + *text);
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("journal.jsonl:2"));
  EXPECT_THAT(j.status().message(), HasSubstr("corrupt"));
}

TEST_F(JournalTest, ReplayRejectsInvalidTransitionsAndUnknownJobs) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok());
    JobStatus s = Status0("demo-000004");
    ASSERT_TRUE((*j)->AppendSubmit(Plan(), s).ok());
    s.set_state(SUCCEEDED);  // PENDING -> SUCCEEDED is not an edge
    ASSERT_TRUE((*j)->AppendState(s).ok());
  }
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("journal.jsonl:2"));
  EXPECT_THAT(j.status().message(), HasSubstr("invalid transition PENDING -> SUCCEEDED"));

  ASSERT_TRUE(WriteFileAtomic(JournalPath(),
                              R"({"v":1,"type":"state","job":"ghost","time_ms":1,"status":{}})"
                              "\n{}\n")
                  .ok());
  auto ghost = Journal::Open(dir_, &jobs);
  ASSERT_FALSE(ghost.ok());
  EXPECT_THAT(ghost.status().message(), HasSubstr("journal.jsonl:1: record for job 'ghost'"));

  // Well-formed JSON with fields of the wrong type is an error, not a crash.
  ASSERT_TRUE(WriteFileAtomic(JournalPath(), R"({"v":1,"type":"submit","job":7})"
                                             "\n{}\n")
                  .ok());
  auto typed = Journal::Open(dir_, &jobs);
  ASSERT_FALSE(typed.ok());
  EXPECT_THAT(typed.status().message(), HasSubstr("journal.jsonl:1"));
}

// What tests/fuzz/journal_fuzz.cc feeds the replay: numbers that do not fit their field
// (1e300 used to become an int with undefined behaviour), a plan whose nodes x processes
// overflow, deep nesting (Dump() recursed over it), bytes that are not UTF-8. Each is an
// error naming the file and line, never a crash.
TEST_F(JournalTest, ReplayRefusesOutOfRangeNumbersDeepNestingAndBadUtf8) {
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->AppendSubmit(Plan(), Status0("demo-000005")).ok());
  }
  auto text = ReadFile(JournalPath());
  ASSERT_TRUE(text.ok());
  const std::string submit = *text;  // one line
  auto replay_error = [&](const std::string& journal) {
    EXPECT_TRUE(WriteFileAtomic(JournalPath(), journal + "\n{}\n").ok());
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    EXPECT_FALSE(j.ok());
    return j.ok() ? std::string() : j.status().message();
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = submit.substr(0, submit.size() - 1);  // without its newline
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  EXPECT_THAT(replay_error(replace("\"nproc_per_node\":", "\"nproc_per_node\":1e300,\"x\":")),
              AllOf(HasSubstr("journal.jsonl:1"), HasSubstr("1e+300 does not fit int32")));
  EXPECT_THAT(replay_error(replace("\"nproc_per_node\":", "\"nproc_per_node\":2147483647,\"x\":")),
              AllOf(HasSubstr("journal.jsonl:1"),
                    HasSubstr("plan.nproc_per_node 2147483647 is not in [1, 1024]")));
  EXPECT_THAT(replay_error(replace("\"v\":1", "\"v\":1e300")),
              AllOf(HasSubstr("journal.jsonl:1"), HasSubstr("does not fit int32")));
  EXPECT_THAT(replay_error(submit + std::string(100000, '[') + std::string(100000, ']')),
              AllOf(HasSubstr("journal.jsonl:2"), HasSubstr("nested deeper than 64")));
  EXPECT_THAT(replay_error(replace("\"demo\"", "\"de\xFFmo\"")),
              AllOf(HasSubstr("journal.jsonl:1"), HasSubstr("corrupt")));
}

TEST_F(JournalTest, SecondOpenOfTheSameStateDirIsRefused) {
  std::vector<JournaledJob> jobs;
  auto first = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(first.ok());
  auto second = Journal::Open(dir_, &jobs);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("another coordd"));
}

// --- compaction -------------------------------------------------------------------------

// What replay gives, as text: every job's status (proto text format, deterministic) and
// the plan fields replay restores.
std::string Describe(const std::vector<JournaledJob>& jobs) {
  std::string out;
  for (const JournaledJob& j : jobs) {
    out += j.status.DebugString() + "plan " + j.plan.name + " " + j.plan.config_json + " " +
           j.plan.hosts_text + " " + std::to_string(j.plan.hosts.size()) + " " +
           std::to_string(j.plan.world_size) + " " + j.plan.master_addr + " " +
           std::to_string(j.plan.kill_grace_ms) + " " + std::to_string(j.plan.startup_timeout_ms);
    for (const std::string& a : j.plan.argv) out += " " + a;
    for (const auto& [k, v] : j.plan.env) out += " " + k + "=" + v;
    out += "\n";
  }
  return out;
}

// Ten jobs, three of them with a history of failures and restarts.
void WriteHistory(JournalTest* t, Journal* j) {
  for (int i = 0; i < 10; ++i) t->WriteFailedJobForTest(j, "job-" + std::to_string(i));
}

TEST_F(JournalTest, ACompactedJournalReplaysToTheSameJobsAndKeepsItsTail) {
  std::string before;
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    WriteHistory(this, j->get());
  }
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok());
  before = Describe(jobs);
  const uint64_t old_size = (*j)->size_bytes();
  ASSERT_TRUE((*j)->Compact(jobs).ok());
  EXPECT_LT((*j)->size_bytes(), old_size);
  EXPECT_EQ((*j)->size_bytes(), (*j)->snapshot_bytes());
  WriteFailedJobForTest(j->get(), "after-compaction");  // the tail
  j->reset();

  std::vector<JournaledJob> again;
  auto reopened = Journal::Open(dir_, &again);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ASSERT_EQ(again.size(), 11u);
  EXPECT_EQ(again.back().status.job_id(), "after-compaction");
  again.pop_back();
  EXPECT_EQ(Describe(again), before);
}

// kill -9 of a process compacting over and over, at random moments: every replay gives
// the same jobs, and no temporary file outlives the next open.
TEST_F(JournalTest, AKillNineAtAnyPointOfCompactionLosesNothing) {
  std::string expected;
  {
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok());
    WriteHistory(this, j->get());
  }
  {
    std::vector<JournaledJob> jobs;
    ASSERT_TRUE(Journal::Open(dir_, &jobs).ok());
    expected = Describe(jobs);
  }
  std::mt19937 rng(42);
  for (int round = 0; round < 25; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      std::vector<JournaledJob> jobs;
      auto j = Journal::Open(dir_, &jobs);
      if (!j.ok()) _exit(3);
      for (;;) {
        if (!(*j)->Compact(jobs).ok()) _exit(4);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the compacting child ended by itself: " << status;
    std::vector<JournaledJob> jobs;
    auto j = Journal::Open(dir_, &jobs);
    ASSERT_TRUE(j.ok()) << "round " << round << ": " << j.status().ToString();
    EXPECT_EQ(Describe(jobs), expected) << "round " << round;
    const auto names = ListDir(dir_);
    ASSERT_TRUE(names.ok());
    for (const std::string& name : *names) {
      EXPECT_EQ(name.find(".tmp"), std::string::npos) << "round " << round << ": " << name;
    }
  }
}

// A full disk takes part of a record (the journal's last page has room for its start):
// the part is cut off, so the next record, once there is space again, starts on a line
// of its own and the journal replays. Needs root for a small tmpfs.
TEST_F(JournalTest, ARecordTheFullDiskTookPartOfIsCutOff) {
  coord::testing::TmpfsMount mounted;
  if (!mounted.Mount(dir_, "64k")) GTEST_SKIP() << "needs root to mount a small tmpfs";
  std::vector<JournaledJob> jobs;
  auto j = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  WriteFailedJob(j->get(), "before");
  // Leave room in the journal's last page, less than the big record below needs.
  while ((*j)->size_bytes() % 4096 > 2048 || (*j)->size_bytes() % 4096 == 0) {
    ASSERT_TRUE((*j)->AppendState(Status0("before")).ok());
  }
  const uint64_t before = (*j)->size_bytes();
  {
    std::ofstream filler(dir_ + "/filler", std::ios::binary);
    const std::string block(1024, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) &&
           filler.flush()) {
    }
  }
  Failure big;
  big.set_message(std::string(8192, 'e'));
  Status full = (*j)->AppendFailure("before", big);
  ASSERT_FALSE(full.ok());
  EXPECT_THAT(full.message(), HasSubstr("No space left on device"));
  struct stat st;
  ASSERT_EQ(stat(JournalPath().c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), before) << "the partial record was left";

  ASSERT_EQ(unlink((dir_ + "/filler").c_str()), 0);
  ASSERT_TRUE((*j)->AppendFailure("before", Failure()).ok());
  j->reset();
  auto reopened = Journal::Open(dir_, &jobs);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ASSERT_EQ(jobs.size(), 1u);
}

}  // namespace
}  // namespace coord::coordinator
