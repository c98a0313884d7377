// Data-parallel gpt-rank as real processes on this machine: N ranks of `gpt-rank
// train` with torchrun's environment (or under Open MPI's mpirun), rendezvous on
// 127.0.0.1, gloo between them.
//  - 1, 2 and 4 ranks with the same global batch (so 4, 2 and 1 micro-batches per
//    rank) give the same loss at every iteration within 1e-5, for plain DP, ZeRO-1
//    and ZeRO-2; so does mpirun -np 4.
//  - a ZeRO-2 checkpoint written by 4 ranks resumes on 2 and on 1 rank and the next
//    10 losses match the uninterrupted 4-rank run within 1e-5;
//  - a rank killed or stopped mid-run makes the others exit with an error naming the
//    failure within the collective timeout; a rank that cannot reach the store says
//    where it looked and for how long.
// Dropout is on: masks follow each sample's global position, not the rank.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::Process;
using coord::testing::TempDir;
using nlohmann::json;

// iteration -> lm loss, from rank 0's metrics.jsonl.
json DpJob(const std::string& dir) {
  json job = SmallJob(dir);
  job["training"]["micro_batch_size"] = 2;
  job["training"]["global_batch_size"] = 8;
  job["training"]["train_iters"] = 8;
  job["training"]["eval_interval"] = 4;
  job["training"]["save_interval"] = 4;
  job["training"]["threads"] = 1;
  // Small buckets: several reductions per step, overlapped with backward.
  job["parallel"] = {{"bucket_cap_mb", 0.25}, {"collective_timeout_s", 60}};
  return job;
}

class DataParallelLosses : public ::testing::TestWithParam<int> {};

TEST_P(DataParallelLosses, OneTwoAndFourRanksGiveTheSameLosses) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  const int stage = GetParam();
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), DpJob(dir.path()));
  const std::string zero = "zero_optimization.stage=" + std::to_string(stage);
  std::map<int, std::map<int64_t, double>> losses;
  for (int world : {1, 2, 4}) {
    const std::string save = dir.File("w" + std::to_string(world));
    RanksResult r =
        RunRanks(dir, "w" + std::to_string(world), world, cfg, {zero, "training.save=" + save});
    std::string why;
    ASSERT_TRUE(AllExitedZero(r, &why)) << why;
    losses[world] = LossPerIteration(save);
    if (world > 1) {
      // Rank 0 alone logs iterations; every rank tags its lines with [node:rank].
      EXPECT_NE(r.logs[0].find(" iteration        8/"), std::string::npos) << r.logs[0];
      EXPECT_EQ(r.logs[1].find(" iteration "), std::string::npos) << r.logs[1];
      EXPECT_NE(r.logs[1].find(":1] rank 1 of " + std::to_string(world)), std::string::npos)
          << r.logs[1];
    }
  }
  ExpectSameLosses(losses[1], losses[2], 1, 8, "2 ranks, stage " + std::to_string(stage));
  ExpectSameLosses(losses[1], losses[4], 1, 8, "4 ranks, stage " + std::to_string(stage));
  // The losses actually move: a frozen model would pass the comparison too.
  EXPECT_LT(losses[1][8], losses[1][1] - 0.3);
}

INSTANTIATE_TEST_SUITE_P(ZeroStages, DataParallelLosses, ::testing::Values(0, 1, 2, 3),
                         [](const auto& info) { return "stage" + std::to_string(info.param); });

TEST(DataParallelCheckpoint, ZeroTwoCheckpointOfFourRanksResumesOnTwoAndOne) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = DpJob(dir.path());
  job["training"]["train_iters"] = 20;
  job["training"]["save_interval"] = 10;
  job["training"]["eval_interval"] = 10;
  job["zero_optimization"] = {{"stage", 2}};
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RanksResult full = RunRanks(dir, "full", 4, cfg, {"training.save=" + dir.File("full")});
  std::string why;
  ASSERT_TRUE(AllExitedZero(full, &why)) << why;
  const auto want = LossPerIteration(dir.File("full"));
  const std::string ckpt = dir.File("full/iter_0000010/mp_rank_00");
  ASSERT_TRUE(coord::PathExists(ckpt + "/zero_optim_rank_00003.bin"));

  for (int world : {2, 1}) {
    // A save directory holding only iteration 10 of the 4-rank run.
    const std::string resume = dir.File("resume" + std::to_string(world));
    (void)coord::testing::RunCommand({"mkdir", "-p", resume});
    ASSERT_EQ(coord::testing::RunCommand({"cp", "-a", dir.File("full/iter_0000010"), resume + "/"})
                  .exit_code,
              0);
    std::ofstream(resume + "/latest_checkpointed_iteration.txt") << "10\n";
    RanksResult r = RunRanks(dir, "resume" + std::to_string(world), world, cfg,
                             {"training.save=" + resume, "training.load=" + resume});
    ASSERT_TRUE(AllExitedZero(r, &why)) << why;
    EXPECT_NE(r.logs[0].find("optimizer state from 4 ZeRO shards, re-sharded for " +
                             std::to_string(world) + " ranks"),
              std::string::npos)
        << r.logs[0];
    ExpectSameLosses(want, LossPerIteration(resume), 11, 20,
                     "resumed on " + std::to_string(world) + " rank(s)");
  }
}

TEST(DataParallelMpirun, MpirunWithFourRanksGivesTheSameLosses) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  if (!coord::PathExists("/usr/bin/mpirun")) GTEST_SKIP() << "no mpirun (openmpi-bin)";
  TempDir dir;
  json job = DpJob(dir.path());
  job["zero_optimization"] = {{"stage", 1}};
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RanksResult one = RunRanks(dir, "one", 1, cfg, {"training.save=" + dir.File("one")});
  std::string why;
  ASSERT_TRUE(AllExitedZero(one, &why)) << why;
  const int port = coord::testing::UnusedTcpPort();
  // Open MPI only launches: gpt-rank reads OMPI_COMM_WORLD_* and rendezvous on its own
  // store (MASTER_ADDR defaults to 127.0.0.1 when all ranks are on one node).
  coord::testing::RunResult r =
      coord::testing::RunCommand({"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "4",
                                  "-x", "MASTER_PORT=" + std::to_string(port), GptRank(), "train",
                                  "--config", cfg, "--set", "training.save=" + dir.File("mpi")},
                                 {}, 120000, SIGTERM);  // mpirun forwards it to its ranks
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("from openmpi"), std::string::npos);
  ExpectSameLosses(LossPerIteration(dir.File("one")), LossPerIteration(dir.File("mpi")), 1, 8,
                   "mpirun -np 4");
}

// A peer that dies (SIGKILL) or hangs (SIGSTOP) mid-run: the surviving ranks fail
// with an error naming it within the collective timeout, instead of waiting forever.
void PeerFailureTest(int signal, double timeout_s, const std::string& expect_in_log) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = DpJob(dir.path());
  job["training"]["train_iters"] = 100000;
  job["training"]["global_batch_size"] = 6;  // 3 ranks
  job["training"]["save_interval"] = 0;
  job["training"]["eval_iters"] = 0;
  job["parallel"]["collective_timeout_s"] = timeout_s;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  const int port = coord::testing::UnusedTcpPort();
  Process ranks[3];
  for (int rank = 0; rank < 3; ++rank) {
    ASSERT_TRUE(ranks[rank].Start({GptRank(), "train", "--config", cfg},
                                  dir.File("rank" + std::to_string(rank) + ".log"),
                                  RankEnv(rank, 3, port)));
  }
  // Wait until training runs (rank 0 logged iteration 3), then hit rank 1.
  ASSERT_TRUE(
      coord::testing::WaitUntil(
          [&] {
            return !ranks[0].Alive() ||
                   coord::testing::ReadAll(dir.File("rank0.log")).find(" iteration        3/") !=
                       std::string::npos;
          },
          60000) &&
      ranks[0].Alive())
      << coord::testing::ReadAll(dir.File("rank0.log"));
  kill(ranks[1].pid(), signal);
  const auto t0 = std::chrono::steady_clock::now();
  for (int rank : {0, 2}) {
    const int status = ranks[rank].Wait(static_cast<int>(timeout_s * 1000) + 10000);
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string log =
        coord::testing::ReadAll(dir.File("rank" + std::to_string(rank) + ".log"));
    ASSERT_GE(status, 0) << "rank " << rank << " still running " << waited << " s after the peer "
                         << "failed:\n"
                         << log;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
    EXPECT_NE(log.find(expect_in_log), std::string::npos) << log;
    EXPECT_LE(waited, timeout_s + 8.0);
    std::printf("rank %d exited %.2f s after the peer's signal %d\n", rank, waited, signal);
  }
  ranks[1].Crash();
}

TEST(DataParallelFailure, KilledPeerMakesTheOthersExitWithAnError) {
  PeerFailureTest(SIGKILL, 30.0, "gloo");
}

TEST(DataParallelFailure, StoppedPeerMakesTheOthersTimeOut) {
  PeerFailureTest(SIGSTOP, 3.0, "collective timeout 3.0 s");
}

TEST(DataParallelFailure, UnreachableStoreIsNamedWithTheTimeWaited) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = DpJob(dir.path());
  job["parallel"]["rendezvous_timeout_s"] = 1;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  const int port = coord::testing::UnusedTcpPort();
  coord::testing::RunResult r =
      coord::testing::RunCommand({GptRank(), "train", "--config", cfg}, RankEnv(1, 2, port), 20000);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1.0 s"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 10.0);
}

}  // namespace
}  // namespace gpt_rank::e2e
