// coordd at and beyond its limits (issue 23), with real daemons on loopback:
//   - SIGTERM while a launch waits on a frozen node (its agent SIGSTOPped: TCP still
//     connects, nothing answers) stops coordd at once, not after the 120 s connect
//     deadline; the coordd started next finds the job cut short in LAUNCHING, fails it
//     as a coordinator failure, and leaves nothing running.
//   - `coordctl start` with a hosts file beyond one coordd's limit is refused at once,
//     naming the line and the limit.
//   - With its state dir on a full disk (a small tmpfs), coordd refuses new jobs saying
//     why, still kills a running one, and its journal replays afterwards: a record the
//     disk took only part of is cut off, never left to corrupt the next one.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/hostfile.h"
#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tmpfs_mount.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

using nlohmann::json;

// The launch's own deadline on the frozen node: far above the bound on shutdown below,
// so a coordd that waits for the launch cannot pass.
constexpr int kConnectTimeoutMs = 120000;
// "At once" for a loaded 2-core machine (gRPC server shutdown, thread joins).
constexpr int kShutdownBoundMs = 20000;

class CoorddLimitsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::cout << cluster_.Logs();
    for (int i = 0; i < cluster_.num_agents(); ++i) {
      if (cluster_.agent(i).pid() > 0) kill(cluster_.agent(i).pid(), SIGCONT);
    }
    ExpectJobProcessesGone(job_, 10000);
    cluster_.StopAll();
  }
  std::string ProbeJob() {
    const std::string cfg = dir_.File("probe.json");
    json job = {{"name", "probe"},
                {"launch",
                 {{"nproc_per_node", 1},
                  {"command", {BinPath("rank_probe"), "--sleep-ms", "600000"}},
                  {"kill_grace_s", 1}}}};
    EXPECT_TRUE(WriteTextFile(cfg, job.dump()));
    return cfg;
  }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::string job_;
};

TEST_F(CoorddLimitsTest, SigtermDuringALaunchToAFrozenNodeStopsCoorddAtOnce) {
  ASSERT_TRUE(cluster_.StartCoordd(
      {0, false, {"--connect-timeout-ms", std::to_string(kConnectTimeoutMs)}}));
  ASSERT_TRUE(cluster_.StartAgents(2));
  ASSERT_EQ(kill(cluster_.agent(1).pid(), SIGSTOP), 0);

  Process start;
  ASSERT_TRUE(
      start.Start({BinPath("coordctl"), "--coordinator", cluster_.coordinator(), "start", "--hosts",
                   cluster_.hosts_file(), "--config", ProbeJob(), "--skip-checks"},
                  dir_.File("start.log")));
  json jobs;
  ASSERT_TRUE(WaitUntil(
      [&] {
        json reply = json::parse(cluster_.Ctl({"jobs", "--json"}).out, nullptr, false);
        jobs = reply.is_object() ? reply.value("jobs", json::array()) : json::array();
        return jobs.size() == 1 && jobs[0].value("state", "") == "LAUNCHING";
      },
      30000, 100))
      << jobs.dump(1);
  job_ = jobs[0].value("job_id", "");

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(cluster_.coordd().pid(), SIGTERM), 0);
  const int status = cluster_.coordd().Wait(kShutdownBoundMs);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::cout << "coordd stopped " << ms << " ms after SIGTERM, mid-launch" << std::endl;
  ASSERT_NE(status, -1) << "coordd still running " << kShutdownBoundMs
                        << " ms after SIGTERM: it waits for the launch";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(start.Wait(kShutdownBoundMs), -1) << "coordctl start still waits";

  // The next coordd: the launch was cut short, so the job fails as the coordinator's
  // failure (it has no restarts), and nothing of it runs anywhere.
  ASSERT_EQ(kill(cluster_.agent(1).pid(), SIGCONT), 0);
  ASSERT_TRUE(cluster_.StartCoordd({cluster_.coordd_port(), false, {}}));
  json st;
  ASSERT_TRUE(WaitUntil(
      [&] {
        st = cluster_.Status(job_);
        return st.value("state", "") == "FAILED";
      },
      30000, 100))
      << st.dump(1);
  ASSERT_GE(st["failures"].size(), 1u) << st.dump(1);
  EXPECT_NE(st["failures"][0].value("message", "").find("coordd restarted while job"),
            std::string::npos)
      << st.dump(1);
}

TEST_F(CoorddLimitsTest, AHostsFileBeyondTheLimitIsRefusedAtOnceNamingIt) {
  ASSERT_TRUE(cluster_.StartCoordd());
  std::string hosts;
  for (int i = 0; i < 100000; ++i) hosts += "node-" + std::to_string(i) + "\n";
  ASSERT_TRUE(WriteTextFile(dir_.File("huge.txt"), hosts));
  RunResult r = cluster_.Ctl({"start", "--hosts", dir_.File("huge.txt"), "--config", ProbeJob()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  const std::string limit = std::to_string(kMaxHosts);
  EXPECT_NE(r.err.find("huge.txt:" + std::to_string(kMaxHosts + 1) + ": host number"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("at most " + limit + " nodes"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 20.0);
}

TEST_F(CoorddLimitsTest, AFullDiskRefusesNewJobsWithTheReasonAndCorruptsNothing) {
  const std::string state = dir_.File("coordd");  // LocalCluster's coordd state dir
  ASSERT_EQ(mkdir(state.c_str(), 0700), 0);
  TmpfsMount mounted;
  if (!mounted.Mount(state, "16m")) {
    GTEST_SKIP() << "needs root to mount a small tmpfs (CI runs as root)";
  }
  ASSERT_TRUE(cluster_.StartCoordd());
  ASSERT_TRUE(cluster_.StartAgents(1));
  auto start = [&] {
    return cluster_.Ctl(
        {"start", "--hosts", cluster_.hosts_file(), "--config", ProbeJob(), "--skip-checks",
         "--allow-overlap"});
  };
  RunResult a = start();
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  job_ = a.out.substr(0, a.out.find('\n'));

  // Fill the disk to the last byte.
  {
    std::ofstream filler(state + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
    }
  }
  RunResult b = start();
  EXPECT_NE(b.exit_code, 0) << b.out;
  EXPECT_NE(b.err.find("journal.jsonl: only 0 KiB free"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("free space there to start jobs"), std::string::npos) << b.err;
  RunResult killed = cluster_.Ctl({"kill", job_});
  EXPECT_EQ(killed.exit_code, 0) << killed.out << killed.err;
  ExpectJobProcessesGone(job_, 10000);
  EXPECT_TRUE(cluster_.coordd().Alive());

  // Space again: jobs start, and their records follow whatever the full disk cut short;
  // a new coordd replays the journal whole.
  ASSERT_EQ(unlink((state + "/filler").c_str()), 0);
  RunResult c = start();
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  const std::string job_c = c.out.substr(0, c.out.find('\n'));
  EXPECT_EQ(cluster_.Ctl({"kill", job_c}).exit_code, 0);
  ExpectJobProcessesGone(job_c, 10000);
  cluster_.coordd().Stop();
  ASSERT_TRUE(cluster_.StartCoordd({cluster_.coordd_port(), false, {}}));
  const std::string jobs = cluster_.Ctl({"jobs"}).out;
  EXPECT_NE(jobs.find(job_), std::string::npos) << jobs;
  EXPECT_NE(jobs.find(job_c), std::string::npos) << jobs;
}

TEST_F(CoorddLimitsTest, ANodeWithAFullDiskRefusesLaunchesAndStillReportsItsRanks) {
  const std::string state = dir_.File("agent0");  // LocalCluster's state dir of agent 0
  ASSERT_EQ(mkdir(state.c_str(), 0700), 0);
  TmpfsMount mounted;
  if (!mounted.Mount(state, "16m")) {
    GTEST_SKIP() << "needs root to mount a small tmpfs (CI runs as root)";
  }
  ASSERT_TRUE(cluster_.StartCoordd());
  ASSERT_TRUE(cluster_.StartAgent(0, {0, false, {"--min-free-mb", "4"}}));
  ASSERT_TRUE(WriteTextFile(cluster_.hosts_file(), cluster_.agent_grpc(0) + "\n"));
  auto start = [&] {
    return cluster_.Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", ProbeJob(),
                         "--skip-checks", "--allow-overlap"});
  };
  RunResult a = start();
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  job_ = a.out.substr(0, a.out.find('\n'));
  ASSERT_TRUE(WaitUntil([&] { return cluster_.Status(job_).value("state", "") == "RUNNING"; },
                        30000, 100));
  const int rank = static_cast<int>(cluster_.Status(job_)["ranks"][0].value("pid", 0));
  ASSERT_GT(rank, 0);

  // The ranks' logs fill the disk to the last byte.
  {
    std::ofstream filler(state + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
    }
  }
  // A new job is refused by the node, with the reason.
  RunResult b = start();
  const std::string job_b = b.out.substr(0, b.out.find('\n'));
  json sb;
  ASSERT_TRUE(WaitUntil(
      [&] {
        sb = cluster_.Status(job_b);
        return sb.value("state", "") == "FAILED";
      },
      30000, 100))
      << b.out << b.err << sb.dump(1);
  const std::string why = sb["failure"].value("message", "");
  EXPECT_NE(why.find("has only 0 KiB free"), std::string::npos) << why;
  EXPECT_NE(why.find("--min-free-mb"), std::string::npos) << why;

  // The running job is still supervised: its rank's death reaches coordd, exit and all,
  // though the disk has no room for the record (it uses the generation's reserve).
  ASSERT_EQ(kill(rank, SIGKILL), 0);
  json sa;
  ASSERT_TRUE(WaitUntil(
      [&] {
        sa = cluster_.Status(job_);
        return sa.value("state", "") == "FAILED";
      },
      30000, 100))
      << sa.dump(1);
  EXPECT_EQ(sa["failure"].value("kind", ""), "FAILURE_RANK_EXIT") << sa.dump(1);
  EXPECT_NE(sa["failure"].value("message", "").find("signal 9"), std::string::npos) << sa.dump(1);
  ExpectJobProcessesGone(job_, 10000);
  EXPECT_TRUE(cluster_.agent(0).Alive());

  // Space again: a restarted agent reads its records whole, and jobs start.
  ASSERT_EQ(unlink((state + "/filler").c_str()), 0);
  cluster_.agent(0).Stop();
  ASSERT_TRUE(cluster_.StartAgent(0, {cluster_.agent_port(0), false, {"--min-free-mb", "4"}}));
  const std::string log = ReadAll(dir_.File("agent0.log"));
  EXPECT_EQ(log.find(" E ["), std::string::npos) << log;
  RunResult c = start();
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  const std::string job_c = c.out.substr(0, c.out.find('\n'));
  EXPECT_TRUE(WaitUntil([&] { return cluster_.Status(job_c).value("state", "") == "RUNNING"; },
                        30000, 100));
  EXPECT_EQ(cluster_.Ctl({"kill", job_c}).exit_code, 0);
  ExpectJobProcessesGone(job_c, 10000);
}

}  // namespace
}  // namespace coord::testing
