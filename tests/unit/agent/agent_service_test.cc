// AgentService's rules without a process: launch, kill, adopt after an agent
// restart, orphans, port TTLs and heartbeats, on a FakeNode (fake processes and
// supervisor, events delivered when the test says) and a FakeClock (time moves
// when the test says). The state dir is a real temp dir, so the records are the
// real ones. tests/integration/agent_test.cc runs the same rules with real
// processes through the coord-agent binary.
#include "agent/agent_service.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "common/net.h"
#include "tests/support/fake_clock.h"
#include "tests/unit/agent/fake_node.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::agent {
namespace {

bool Contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}
bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Waits (real time) for another thread of the test: the clock never needs this.
bool WaitUntil(const std::function<bool()>& pred, int timeout_ms = 5000) {
  return coord::testing::WaitUntil(pred, timeout_ms, 1);
}

class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = tmp_dir_.path();
    state_dir_ = JoinPath(tmp_, "state");
    ASSERT_TRUE(MakeDirs(state_dir_).ok());
    clock_ = std::make_shared<FakeClock>();
    node_ = std::make_shared<FakeNode>(clock_);
    StartAgent();
  }
  void TearDown() override { agent_.reset(); }

  // Starts the agent, or restarts it on the same node and state dir (the old
  // one shuts down as coord-agent does: it never kills a job).
  void StartAgent() {
    agent_.reset();
    AgentServiceOptions o;
    o.state_dir = state_dir_;
    o.supervisor_path = "/nonexistent/coord-supervisor";  // the fake node never runs it
    o.heartbeat_ms = 1000;
    o.default_grace_ms = 5000;
    o.launch_timeout_ms = 60000;
    o.clock = clock_;
    o.processes = node_->processes();
    o.make_watcher = node_->watcher_factory();
    o.sample_usage = sample_usage_;
    o.usage_ms = 1000;
    o.keep_jobs = keep_jobs_;
    auto s = AgentService::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    agent_ = std::move(*s);
  }

  LaunchRequest MakeLaunch(const std::string& job, int nranks, int generation = 0) {
    LaunchRequest req;
    req.set_job_id(job);
    req.set_generation(generation);
    req.set_node_rank(0);
    req.set_num_nodes(1);
    req.set_world_size(nranks);
    for (int r = 0; r < nranks; ++r) req.add_ranks(r);
    req.set_master_addr("127.0.0.1");
    req.set_master_port(29500);
    req.add_argv("/bin/true");
    req.set_workdir(tmp_);
    return req;
  }
  Status Launch(const LaunchRequest& req) {
    LaunchReply reply;
    return agent_->Launch(req, &reply);
  }
  std::string Dir(const std::string& job, int g = 0) const { return GenDir(state_dir_, job, g); }
  std::string Tag(const std::string& job, int g = 0) const {
    return JobTag(AgentTag(state_dir_), job, g);
  }

  // The generation as ListJobs reports it (an empty one with a failure if unknown).
  JobGeneration Listed(const std::string& job, int g = 0) {
    ListJobsReply reply;
    EXPECT_TRUE(agent_->ListJobs({}, &reply).ok());
    for (const auto& jg : reply.jobs()) {
      if (jg.job_id() == job && jg.generation() == g) return jg;
    }
    ADD_FAILURE() << "job " << job << " g" << g << " is not listed";
    return {};
  }
  int ListedCount() {
    ListJobsReply reply;
    EXPECT_TRUE(agent_->ListJobs({}, &reply).ok());
    return reply.jobs_size();
  }

  coord::testing::TempDir tmp_dir_;
  std::string tmp_, state_dir_;  // tmp_dir_'s path, its state/
  std::shared_ptr<FakeClock> clock_;
  std::shared_ptr<FakeNode> node_;
  std::unique_ptr<AgentService> agent_;
  std::function<void(NodeUsage*)> sample_usage_;  // set before StartAgent (null: none)
  int keep_jobs_ = -1;                            // set before StartAgent
};

// --- launch ----------------------------------------------------------------------------

TEST_F(AgentServiceTest, LaunchStartsEveryRankAndTheirExitsEndTheGeneration) {
  LaunchReply reply;
  ASSERT_TRUE(agent_->Launch(MakeLaunch("job", 2), &reply).ok());
  const std::string dir = Dir("job");
  EXPECT_EQ(reply.log_dir(), dir);
  ASSERT_EQ(reply.ranks_size(), 2);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(reply.ranks(r).rank(), r);
    EXPECT_EQ(reply.ranks(r).local_rank(), r);
    EXPECT_EQ(reply.ranks(r).pid(), node_->rank_pid(dir, r));
  }
  EXPECT_EQ(node_->last_ack_timeout_ms(), 60000);
  // What the supervisor got: each rank's full environment.
  GenSpec spec;
  ASSERT_TRUE(ReadRecord(JoinPath(dir, kSpecFile), &spec).ok());
  ASSERT_EQ(spec.ranks.size(), 2u);
  EXPECT_EQ(spec.tag, Tag("job"));
  const auto& env = spec.ranks[1].env;
  for (const char* kv : {"RANK=1", "LOCAL_RANK=1", "WORLD_SIZE=2", "MASTER_PORT=29500"}) {
    EXPECT_NE(std::find(env.begin(), env.end(), kv), env.end()) << kv;
  }

  JobGeneration jg = Listed("job");
  EXPECT_FALSE(jg.finished());
  ASSERT_EQ(jg.ranks_size(), 2);
  for (const auto& r : jg.ranks()) {
    EXPECT_EQ(r.state(), RANK_RUNNING);
    EXPECT_EQ(r.start_time_ms(), clock_->WallMs());
  }

  clock_->Advance(1500);
  node_->RankExits(dir, 0, 0);
  node_->Deliver();
  EXPECT_FALSE(Listed("job").finished());  // rank 1 still runs
  node_->RankExits(dir, 1, 3);
  node_->Deliver();
  jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  EXPECT_EQ(jg.ranks(0).state(), RANK_EXITED);
  EXPECT_EQ(jg.ranks(1).state(), RANK_EXITED);
  EXPECT_EQ(jg.ranks(1).exit_code(), 3);
  EXPECT_EQ(jg.ranks(1).end_time_ms(), clock_->WallMs());
  EXPECT_FALSE(node_->DirWatched(dir));  // ended: nothing more to hear from it
}

TEST_F(AgentServiceTest, LaunchRefusesASecondStartOfTheSameGeneration) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 1)).ok());
  Status again = Launch(MakeLaunch("job", 1));
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_EQ(node_->spawns(), 1);
  EXPECT_TRUE(Launch(MakeLaunch("job", 1, /*generation=*/1)).ok());
}

TEST_F(AgentServiceTest, LaunchWhoseSupervisorCannotStartLeavesNothingBehind) {
  FakeNode::Script script;
  script.spawn_fails = true;
  node_->SetScript(script);
  Status st = Launch(MakeLaunch("job", 2));
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "cannot launch job job generation 0")) << st.ToString();
  EXPECT_FALSE(PathExists(Dir("job")));
  EXPECT_EQ(ListedCount(), 0);
  // Dropped, not half-known: the same generation can be launched again.
  node_->SetScript({});
  EXPECT_TRUE(Launch(MakeLaunch("job", 2)).ok());
}

TEST_F(AgentServiceTest, ExecFailureFailsTheLaunchAndEndsTheGeneration) {
  FakeNode::Script script;
  script.ack = LaunchAck::kFail;
  script.exec_fails = {1};
  node_->SetScript(script);
  Status st = Launch(MakeLaunch("job", 2));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "rank 1: exec 'x': No such file or directory"))
      << st.ToString();
  JobGeneration jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  EXPECT_EQ(jg.ranks(0).state(), RANK_EXITED);  // started, then killed by its supervisor
  EXPECT_EQ(jg.ranks(0).signal(), SIGKILL);
  EXPECT_EQ(jg.ranks(1).state(), RANK_EXITED);  // never started
  EXPECT_EQ(jg.ranks(1).exit_code(), 127);
  node_->Deliver();  // the late events of records already read change nothing
  EXPECT_TRUE(Listed("job").finished());
  EXPECT_TRUE(node_->LiveTagged(Tag("job")).empty());
}

TEST_F(AgentServiceTest, SupervisorDyingMidLaunchIsKilledWithWhatItStarted) {
  FakeNode::Script script;
  script.ack = LaunchAck::kDied;
  node_->SetScript(script);
  const std::string dir = Dir("job");
  Status st = Launch(MakeLaunch("job", 2));
  EXPECT_EQ(st.code(), StatusCode::kInternal) << st.ToString();
  const int sup = node_->supervisor_pid(dir);
  EXPECT_TRUE(Contains(node_->sigkilled(), sup));
  auto kills = node_->kill_calls();
  ASSERT_EQ(kills.size(), 1u);
  EXPECT_EQ(kills[0].grace_ms, 0);
  ASSERT_EQ(kills[0].targets.size(), 1u);
  EXPECT_EQ(kills[0].targets[0].tag, Tag("job"));
  EXPECT_EQ(kills[0].targets[0].rank_mains.size(), 2u);
  EXPECT_TRUE(node_->LiveTagged(Tag("job")).empty());
  // The supervisor's death, heard once Launch has let go, ends the generation.
  node_->Deliver();
  JobGeneration jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  for (const auto& r : jg.ranks()) {
    EXPECT_EQ(r.signal(), SIGKILL);
    EXPECT_TRUE(Contains(
        r.error(), "killed by coord-agent: its supervisor (pid " + std::to_string(sup) + ") died"))
        << r.error();
  }
  EXPECT_TRUE(PathExists(JoinPath(dir, kDoneFile)));
}

TEST_F(AgentServiceTest, LaunchThatTimesOutIsDeadlineExceededAndKillsTheSupervisor) {
  FakeNode::Script script;
  script.ack = LaunchAck::kTimeout;
  node_->SetScript(script);
  Status st = Launch(MakeLaunch("job", 1));
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "within 60000 ms")) << st.ToString();
  EXPECT_TRUE(Contains(node_->sigkilled(), node_->supervisor_pid(Dir("job"))));
}

// --- ports -------------------------------------------------------------------------------

TEST_F(AgentServiceTest, LaunchReleasesTheReservedMasterPort) {
  ReservePortRequest rreq;
  rreq.set_job_id("job");
  ReservePortReply rreply;
  ASSERT_TRUE(agent_->ReservePort(rreq, &rreply).ok());
  const int port = rreply.port();
  EXPECT_FALSE(TcpPortBindable(port));
  LaunchRequest req = MakeLaunch("job", 1);
  req.set_master_port(port);
  ASSERT_TRUE(Launch(req).ok());
  EXPECT_TRUE(TcpPortBindable(port));
}

TEST_F(AgentServiceTest, ReservedPortsExpireOnTheClock) {
  ReservePortRequest rreq;
  rreq.set_job_id("job");
  rreq.set_ttl_ms(1000);
  ReservePortReply short_ttl, default_ttl;
  ASSERT_TRUE(agent_->ReservePort(rreq, &short_ttl).ok());
  rreq.set_ttl_ms(0);  // the agent's default: 60 s
  ASSERT_TRUE(agent_->ReservePort(rreq, &default_ttl).ok());
  clock_->Advance(999);
  node_->Tick();
  EXPECT_FALSE(TcpPortBindable(short_ttl.port()));
  clock_->Advance(1);
  node_->Tick();
  EXPECT_TRUE(TcpPortBindable(short_ttl.port()));
  EXPECT_FALSE(TcpPortBindable(default_ttl.port()));
  clock_->SetWallMs(clock_->WallMs() + 3600 * 1000);  // a wall-clock step expires nothing
  node_->Tick();
  EXPECT_FALSE(TcpPortBindable(default_ttl.port()));
  clock_->Advance(59000);
  node_->Tick();
  EXPECT_TRUE(TcpPortBindable(default_ttl.port()));
}

// --- kill ----------------------------------------------------------------------------------

TEST_F(AgentServiceTest, KillSignalsTheRunningRanksWithTheDefaultGrace) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 2)).ok());
  const std::string dir = Dir("job");
  node_->RankExits(dir, 0, 0);
  node_->Deliver();
  KillRequest req;
  req.set_job_id("job");
  req.set_generation(-1);
  KillReply reply;
  ASSERT_TRUE(agent_->Kill(req, &reply).ok());
  EXPECT_TRUE(reply.job_known());
  EXPECT_EQ(reply.ranks_signalled(), 1);  // rank 0 had already exited
  EXPECT_EQ(reply.survivors(), 0);
  auto kills = node_->kill_calls();
  ASSERT_EQ(kills.size(), 1u);
  EXPECT_EQ(kills[0].grace_ms, 5000);
  ASSERT_EQ(kills[0].targets.size(), 1u);
  ASSERT_EQ(kills[0].targets[0].rank_mains.size(), 1u);
  EXPECT_EQ(kills[0].targets[0].rank_mains[0].pid, node_->rank_pid(dir, 1));
  EXPECT_TRUE(PathExists(JoinPath(dir, kKilledFile)));
  node_->Deliver();
  JobGeneration jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  EXPECT_EQ(jg.ranks(1).signal(), SIGTERM);
}

TEST_F(AgentServiceTest, KillOfAnUnknownJobStillKillsItsTaggedStrays) {
  KillRequest req;
  req.set_job_id("ghost");
  req.set_generation(-1);
  KillReply reply;
  ASSERT_TRUE(agent_->Kill(req, &reply).ok());
  EXPECT_FALSE(reply.job_known());
  EXPECT_TRUE(node_->kill_calls().empty());  // nothing of it anywhere

  const int stray = node_->AddTaggedProcess(Tag("ghost", 3));
  const int other_job = node_->AddTaggedProcess(Tag("ghostly", 3));
  ASSERT_TRUE(agent_->Kill(req, &reply).ok());
  EXPECT_FALSE(reply.job_known());
  EXPECT_FALSE(node_->process(stray).alive);
  EXPECT_TRUE(node_->process(other_job).alive);
  ASSERT_EQ(node_->kill_calls().size(), 1u);
  EXPECT_EQ(node_->kill_calls()[0].targets[0].tag, Tag("ghost", 3));
}

TEST_F(AgentServiceTest, KillRejectsBadArguments) {
  KillRequest req;
  KillReply reply;
  req.set_job_id("job");
  req.set_generation(-2);
  EXPECT_EQ(agent_->Kill(req, &reply).code(), StatusCode::kInvalidArgument);
  req.set_generation(0);
  req.set_grace_ms(-1);
  EXPECT_EQ(agent_->Kill(req, &reply).code(), StatusCode::kInvalidArgument);
  req.set_grace_ms(0);
  req.set_job_id("../x");
  EXPECT_EQ(agent_->Kill(req, &reply).code(), StatusCode::kInvalidArgument);
}

// A kill that comes while the generation is launching waits until its ranks
// exist, so no rank can start after the kill has looked.
TEST_F(AgentServiceTest, KillWaitsForALaunchInFlight) {
  FakeNode::Script script;
  script.hold_ack = true;
  node_->SetScript(script);
  auto launch = std::async(std::launch::async, [&] { return Launch(MakeLaunch("job", 2)); });
  ASSERT_TRUE(WaitUntil([&] { return node_->spawns() == 1; }));
  KillRequest req;
  req.set_job_id("job");
  req.set_generation(0);
  req.set_grace_ms(100);
  KillReply reply;
  auto kill = std::async(std::launch::async, [&] { return agent_->Kill(req, &reply); });
  // A kill that did not wait would be back at once: the fake kills instantly.
  EXPECT_EQ(kill.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  node_->ReleaseAck();
  EXPECT_TRUE(launch.get().ok());
  ASSERT_TRUE(kill.get().ok());
  EXPECT_EQ(reply.ranks_signalled(), 2);
  EXPECT_TRUE(node_->LiveTagged(Tag("job")).empty());
}

TEST_F(AgentServiceTest, KillStopsWaitingForAHungLaunchOnTheClock) {
  FakeNode::Script script;
  script.hold_ack = true;
  node_->SetScript(script);
  auto launch = std::async(std::launch::async, [&] { return Launch(MakeLaunch("job", 1)); });
  ASSERT_TRUE(WaitUntil([&] { return node_->spawns() == 1; }));
  KillRequest req;
  req.set_job_id("job");
  KillReply reply;
  auto kill = std::async(std::launch::async, [&] { return agent_->Kill(req, &reply); });
  EXPECT_EQ(kill.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  clock_->Advance(60000 + 5000);  // launch timeout + 5 s
  ASSERT_EQ(kill.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(kill.get().ok());
  EXPECT_EQ(reply.ranks_signalled(), 0);  // nothing had started yet
  node_->ReleaseAck();
  EXPECT_TRUE(launch.get().ok());
}

// --- adopt and orphans -----------------------------------------------------------------

TEST_F(AgentServiceTest, RestartAdoptsRunningGenerationsFromTheStateDir) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 2)).ok());
  const std::string dir = Dir("job");
  StartAgent();  // restart: the old agent shuts down without killing anything
  EXPECT_TRUE(node_->kill_calls().empty());
  EXPECT_TRUE(node_->sigkilled().empty());
  JobGeneration jg = Listed("job");
  EXPECT_FALSE(jg.finished());
  ASSERT_EQ(jg.ranks_size(), 2);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(jg.ranks(r).state(), RANK_RUNNING);
    EXPECT_EQ(jg.ranks(r).pid(), node_->rank_pid(dir, r));
  }
  // Watched again: the ranks' exits reach the new agent.
  node_->RankExits(dir, 0, 0);
  node_->RankExits(dir, 1, 9);
  node_->Deliver();
  jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  EXPECT_EQ(jg.ranks(1).exit_code(), 9);
}

TEST_F(AgentServiceTest, RestartEndsGenerationsWhoseSupervisorDiedMeanwhile) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 2)).ok());
  const std::string dir = Dir("job");
  node_->RankExits(dir, 0, 0);
  node_->Deliver();
  agent_.reset();
  node_->KillSupervisor(dir);  // while no agent runs: its rank 1 lives on, unsupervised
  const int rank1 = node_->rank_pid(dir, 1);
  ASSERT_TRUE(node_->process(rank1).alive);
  clock_->Advance(10000);
  StartAgent();
  EXPECT_FALSE(node_->process(rank1).alive);
  auto kills = node_->kill_calls();
  ASSERT_EQ(kills.size(), 1u);
  EXPECT_EQ(kills[0].grace_ms, 0);
  ASSERT_EQ(kills[0].targets[0].rank_mains.size(), 1u);
  EXPECT_EQ(kills[0].targets[0].rank_mains[0].pid, rank1);
  JobGeneration jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  EXPECT_EQ(jg.ranks(0).exit_code(), 0);  // its own exit, recorded by the supervisor
  EXPECT_EQ(jg.ranks(1).signal(), SIGKILL);
  EXPECT_EQ(jg.ranks(1).error(),
            "killed by coord-agent: its supervisor died while the agent was down");
  EXPECT_EQ(jg.ranks(1).end_time_ms(), clock_->WallMs());
  EXPECT_TRUE(PathExists(JoinPath(dir, kDoneFile)));
  EXPECT_FALSE(node_->DirWatched(dir));
}

TEST_F(AgentServiceTest, RestartKillsTaggedProcessesOfUnknownOrFinishedGenerations) {
  ASSERT_TRUE(Launch(MakeLaunch("done", 1)).ok());
  node_->RankExits(Dir("done"), 0, 0);
  node_->Deliver();
  ASSERT_TRUE(Launch(MakeLaunch("live", 1)).ok());
  const int escaped = node_->AddTaggedProcess(Tag("done"));  // a daemon that outlived its rank
  const int unknown = node_->AddTaggedProcess(Tag("gone", 7));
  const int foreign = node_->AddTaggedProcess(JobTag("0123456789ab", "gone", 7));
  StartAgent();
  std::vector<int> killed = node_->sigkilled();
  EXPECT_TRUE(Contains(killed, escaped));
  EXPECT_TRUE(Contains(killed, unknown));
  EXPECT_FALSE(Contains(killed, foreign));  // another agent's
  EXPECT_EQ(killed.size(), 2u);
  EXPECT_TRUE(node_->process(node_->rank_pid(Dir("live"), 0)).alive);
  EXPECT_FALSE(Listed("live").finished());
}

TEST_F(AgentServiceTest, SupervisorDeathOrphansAndKillsItsRanks) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 2)).ok());
  const std::string dir = Dir("job");
  const int sup = node_->supervisor_pid(dir);
  node_->KillSupervisor(dir);
  node_->Deliver();
  EXPECT_TRUE(node_->LiveTagged(Tag("job")).empty());
  JobGeneration jg = Listed("job");
  EXPECT_TRUE(jg.finished());
  for (const auto& r : jg.ranks()) {
    EXPECT_EQ(r.signal(), SIGKILL);
    EXPECT_EQ(r.error(),
              "killed by coord-agent: its supervisor (pid " + std::to_string(sup) + ") died");
  }
}

TEST_F(AgentServiceTest, TickNoticesADeadSupervisorWhosePidEventWasLost) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 1)).ok());
  node_->KillSupervisor(Dir("job"), /*notify=*/false);
  node_->Deliver();
  EXPECT_FALSE(Listed("job").finished());
  node_->Tick();
  EXPECT_TRUE(Listed("job").finished());
  EXPECT_TRUE(node_->LiveTagged(Tag("job")).empty());
}

// --- watch and the clock -------------------------------------------------------------------

TEST_F(AgentServiceTest, WatchReplaysRanksThenHeartbeatsOnTheClock) {
  ASSERT_TRUE(Launch(MakeLaunch("job", 2)).ok());
  std::mutex mu;
  std::vector<AgentEvent> events;
  std::atomic<bool> cancel{false};
  auto count = [&](bool heartbeats) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(events.begin(), events.end(),
                         [&](const AgentEvent& e) { return e.has_heartbeat() == heartbeats; });
  };
  WatchRequest req;
  req.set_heartbeat_ms(500);
  auto watch = std::async(std::launch::async, [&] {
    return agent_->Watch(
        req,
        [&](const AgentEvent& e) {
          std::lock_guard<std::mutex> lock(mu);
          events.push_back(e);
          return true;
        },
        [&] { return cancel.load(); });
  });
  ASSERT_TRUE(WaitUntil([&] { return count(true) == 1; }));
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(events.size(), 3u);  // the two running ranks, then the first heartbeat
    EXPECT_TRUE(events[0].replay());
    EXPECT_EQ(events[0].rank().state(), RANK_RUNNING);
    EXPECT_EQ(events[2].heartbeat().running_ranks(), 2);
    EXPECT_EQ(events[2].time_ms(), clock_->WallMs());
  }
  clock_->Advance(499);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a few of Watch's wakes
  EXPECT_EQ(count(true), 1);
  clock_->Advance(1);
  ASSERT_TRUE(WaitUntil([&] { return count(true) == 2; }));

  node_->RankExits(Dir("job"), 0, 4);
  node_->Deliver();
  ASSERT_TRUE(WaitUntil([&] { return count(false) == 3; }));
  {
    std::lock_guard<std::mutex> lock(mu);
    const AgentEvent& e = events.back();
    EXPECT_FALSE(e.replay());
    EXPECT_EQ(e.rank().state(), RANK_EXITED);
    EXPECT_EQ(e.rank().exit_code(), 4);
  }
  cancel = true;
  EXPECT_EQ(watch.get().code(), StatusCode::kCancelled);
}

// The node's usage rides on the first heartbeat at or after each usage_ms (1000 here),
// not on every one (500): the page needs a sample every few seconds, not twice a second.
TEST_F(AgentServiceTest, HeartbeatsCarryTheNodeUsageEveryUsageMs) {
  std::atomic<int> samples{0};
  sample_usage_ = [&](NodeUsage* u) {
    u->set_cpu_busy_s(++samples);
    u->set_mem_total_bytes(1 << 30);
  };
  StartAgent();
  std::mutex mu;
  std::vector<Heartbeat> beats;
  std::atomic<bool> cancel{false};
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return beats.size();
  };
  WatchRequest req;
  req.set_heartbeat_ms(500);
  auto watch = std::async(std::launch::async, [&] {
    return agent_->Watch(
        req,
        [&](const AgentEvent& e) {
          std::lock_guard<std::mutex> lock(mu);
          if (e.has_heartbeat()) beats.push_back(e.heartbeat());
          return true;
        },
        [&] { return cancel.load(); });
  });
  ASSERT_TRUE(WaitUntil([&] { return count() == 1; }));
  for (size_t n = 2; n <= 3; ++n) {
    clock_->Advance(500);
    ASSERT_TRUE(WaitUntil([&] { return count() == n; }));
  }
  cancel = true;
  EXPECT_EQ(watch.get().code(), StatusCode::kCancelled);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(beats.size(), 3u);
  EXPECT_TRUE(beats[0].has_usage());
  EXPECT_EQ(beats[0].usage().cpu_busy_s(), 1);
  EXPECT_FALSE(beats[1].has_usage());  // 500 ms later
  EXPECT_TRUE(beats[2].has_usage());   // 1000 ms later
  EXPECT_EQ(beats[2].usage().cpu_busy_s(), 2);
  EXPECT_EQ(samples.load(), 2);
}

// Retention: the newest keep_jobs finished jobs keep their generation dirs; an older job
// loses its clean generations but keeps a failed one; a restarted agent applies the
// same rule to what it finds on disk.
TEST_F(AgentServiceTest, StateRetentionKeepsTheNewestJobsAndEveryFailedGeneration) {
  keep_jobs_ = 2;
  StartAgent();
  auto run = [&](const std::string& job, int generation, int exit_code) {
    ASSERT_TRUE(Launch(MakeLaunch(job, 1, generation)).ok());
    clock_->Advance(1000);
    node_->RankExits(Dir(job, generation), 0, exit_code);
    node_->Deliver();
    ASSERT_TRUE(Listed(job, generation).finished());
  };
  run("a", 0, 0);
  run("b", 0, 3);  // failed, then restarted and finished cleanly
  run("b", 1, 0);
  run("c", 0, 0);
  EXPECT_FALSE(PathExists(Dir("a"))) << "a is the third newest finished job";
  EXPECT_TRUE(PathExists(Dir("b", 0)));
  EXPECT_TRUE(PathExists(Dir("b", 1)));
  run("d", 0, 0);
  EXPECT_TRUE(PathExists(Dir("b", 0))) << "a failed generation is kept";
  EXPECT_FALSE(PathExists(Dir("b", 1)));
  EXPECT_TRUE(PathExists(Dir("c")));
  EXPECT_TRUE(PathExists(Dir("d")));
  EXPECT_EQ(ListedCount(), 3);  // b g0, c, d

  // On disk before a restart with a smaller limit: only the newest job's clean one stays.
  keep_jobs_ = 1;
  StartAgent();
  EXPECT_FALSE(PathExists(Dir("c")));
  EXPECT_TRUE(PathExists(Dir("d")));
  EXPECT_TRUE(PathExists(Dir("b", 0)));
  EXPECT_EQ(ListedCount(), 2);
}

TEST_F(AgentServiceTest, PingAnswersWithTheInjectedClock) {
  const int64_t started = clock_->WallMs();
  clock_->Advance(2500);
  PingReply reply;
  ASSERT_TRUE(agent_->Ping({}, &reply).ok());
  EXPECT_EQ(reply.start_time_ms(), started);
  EXPECT_EQ(reply.time_ms(), started + 2500);
  EXPECT_EQ(reply.agent_id(), agent_->agent_id());
}

}  // namespace
}  // namespace coord::agent
