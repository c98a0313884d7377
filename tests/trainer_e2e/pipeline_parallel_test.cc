// Pipeline-parallel gpt-rank as real processes (gloo over 127.0.0.1), against one rank,
// on a 4-layer model with dropout on:
//  - PP 2 and PP 4 (1F1B; PP 4 with activation checkpointing), PP 2 x 2 virtual chunks (interleaved) and DP 2 x PP 2 x TP 2
//    on 8 ranks give the one-rank loss at every one of 20 iterations within 1e-5
//    relative (dropout streams keyed on the sample and the global layer);
//  - a PP 2 x TP 2 checkpoint resumes at PP 1 x TP 1 and at PP 4 with the next losses
//    of the uninterrupted run (mp_rank_TT_PPP shards, re-sharded at load), and export-hf
//    of a PP checkpoint gives the one-rank run's tensors;
//  - a SIGKILLed middle stage: every other rank exits within the collective timeout,
//    naming its pipeline stage and what it waited for.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::TempDir;
using nlohmann::json;

json PipelineJob(const std::string& dir) {
  json job = ParallelJob(dir);
  job["model"]["num_layers"] = 4;  // 1 layer per stage at PP 4, per chunk at PP 2 x 2
  return job;
}

std::map<int64_t, double> Train(const TempDir& dir, const std::string& cfg, const std::string& tag,
                                int world, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"training.save=" + dir.File(tag)};
  sets.insert(sets.end(), extra.begin(), extra.end());
  RanksResult r = RunRanks(dir, tag, world, cfg, sets, 300000);
  std::string why;
  EXPECT_TRUE(AllExitedZero(r, &why)) << tag << ": " << why;
  return LossPerIteration(dir.File(tag));
}

std::string Pp(int pp) { return "parallel.pipeline_model_parallel_size=" + std::to_string(pp); }

TEST(PipelineParallel, OneFOneBAndInterleavedGiveTheOneRankLossesWithDropout) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), PipelineJob(dir.path()));
  const auto one = Train(dir, cfg, "pp1", 1);
  const auto two = Train(dir, cfg, "pp2", 2, {Pp(2)});
  // Activation checkpointing recomputes bitwise: the reference needs none.
  const auto four = Train(dir, cfg, "pp4", 4, {Pp(4), "model.checkpoint_activations=true"});
  const auto interleaved =
      Train(dir, cfg, "pp2v2", 2, {Pp(2), "parallel.virtual_pipeline_model_parallel_size=2"});
  ExpectSameLosses(one, two, 1, 20, "PP 2");
  ExpectSameLosses(one, four, 1, 20, "PP 4");
  ExpectSameLosses(one, interleaved, 1, 20, "PP 2 x 2 virtual");
  EXPECT_LT(one.at(20), one.at(1) - 0.3);  // it trains: a frozen model would match too
  const std::string log = coord::testing::ReadAll(dir.File("pp2v2-rank0.log"));
  EXPECT_NE(log.find("pipeline parallel: 2 stages (gloo), this rank is stage 0, 2 virtual "
                     "chunks each (interleaved schedule)"),
            std::string::npos)
      << log;
  // Megatron's timers: the stages spent time exchanging activations every iteration.
  for (const json& m : ReadJsonLines(dir.File("pp4") + "/metrics.jsonl")) {
    if (m.contains("timers_ms")) {
      EXPECT_GT(m["timers_ms"]["pp-comm"].get<double>(), 0.0);
    }
  }
}

TEST(PipelineParallel, DataTimesPipelineTimesTensorOnEightRanksGivesTheOneRankLosses) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), PipelineJob(dir.path()));
  const auto one = Train(dir, cfg, "one", 1);
  const auto grid = Train(dir, cfg, "grid", 8,
                          {Pp(2), "parallel.tensor_model_parallel_size=2",
                           "zero_optimization.stage=1"});
  ExpectSameLosses(one, grid, 1, 20, "DP 2 x PP 2 x TP 2, ZeRO-1");
}

// The tensors of a safetensors file (F32 only), by name.
std::map<std::string, std::vector<float>> ReadSafetensors(const std::string& path) {
  const std::string bytes = coord::testing::ReadAll(path);
  std::map<std::string, std::vector<float>> out;
  uint64_t header_len = 0;
  if (bytes.size() < 8) return out;
  std::memcpy(&header_len, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, header_len));
  for (const auto& [name, t] : header.items()) {
    if (name == "__metadata__") continue;
    const size_t begin = t["data_offsets"][0], end = t["data_offsets"][1];
    std::vector<float> v((end - begin) / 4);
    std::memcpy(v.data(), bytes.data() + 8 + header_len + begin, end - begin);
    out[name] = std::move(v);
  }
  return out;
}

TEST(PipelineParallel, CheckpointsLoadAtOtherLayoutsAndExportLikeOneRank) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), PipelineJob(dir.path()));
  const std::vector<std::string> grid = {Pp(2), "parallel.tensor_model_parallel_size=2"};
  const auto full = Train(dir, cfg, "full", 4, grid);
  const std::string iter10 = dir.File("full/iter_0000010");
  for (const char* shard : {"mp_rank_00_000", "mp_rank_01_000", "mp_rank_00_001", "mp_rank_01_001"}) {
    ASSERT_TRUE(coord::PathExists(iter10 + "/" + shard + "/manifest.json")) << shard;
  }
  for (const auto& [tag, world, layout] :
       std::vector<std::tuple<std::string, int, std::vector<std::string>>>{
           {"to-one", 1, {}}, {"to-pp4", 4, {Pp(4)}}}) {
    const std::string resume = dir.File(tag);
    ASSERT_EQ(coord::testing::RunCommand({"mkdir", "-p", resume}).exit_code, 0);
    ASSERT_EQ(coord::testing::RunCommand({"cp", "-a", iter10, resume + "/"}).exit_code, 0);
    std::ofstream(resume + "/latest_checkpointed_iteration.txt") << "10\n";
    std::vector<std::string> sets = layout;
    sets.push_back("training.load=" + resume);
    const auto resumed = Train(dir, cfg, tag, world, sets);
    ExpectSameLosses(full, resumed, 11, 20, tag);
    const std::string log = coord::testing::ReadAll(dir.File(tag + "-rank0.log"));
    EXPECT_NE(log.find("saved with tensor parallel 2, 2 pipeline stages, re-sharded for"),
              std::string::npos)
        << log;
  }
  // export-hf assembles the stages: the one-rank run's tensors, up to the float
  // rounding of the two runs (the tied embedding's gradient is summed in another order).
  const auto one = Train(dir, cfg, "one", 1);
  for (const auto& [tag, out] : {std::pair<std::string, std::string>{"full", "hf-pp"},
                                 {"one", "hf-one"}}) {
    auto r = coord::testing::RunCommand(
        {GptRank(), "export-hf", "--load", dir.File(tag), "--out", dir.File(out)}, {}, 60000);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const auto pp = ReadSafetensors(dir.File("hf-pp/model.safetensors"));
  const auto ref = ReadSafetensors(dir.File("hf-one/model.safetensors"));
  ASSERT_EQ(pp.size(), ref.size());
  ASSERT_GT(ref.size(), 4u * 12u);
  for (const auto& [name, want] : ref) {
    ASSERT_TRUE(pp.count(name)) << name;
    const std::vector<float>& got = pp.at(name);
    ASSERT_EQ(got.size(), want.size()) << name;
    float scale = 0.0f, worst = 0.0f;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::abs(want[i]));
      worst = std::max(worst, std::abs(want[i] - got[i]));
    }
    EXPECT_LE(worst, 1e-3f * scale) << name;  // a misplaced layer is off by O(scale)
  }
}

// Stage 2 of 4 stops itself mid-schedule (GPT_RANK_INJECT_STOP: its neighbours are
// then waiting on it in a send or receive) and is SIGKILLed there.
TEST(PipelineParallel, AKilledMiddleStageStopsEveryOtherRankNamingTheStage) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = PipelineJob(dir.path());
  job["training"]["train_iters"] = 100000;  // still training when the stage dies
  job["training"]["save"] = dir.File("save");
  job["parallel"]["collective_timeout_s"] = 20;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  const int port = coord::testing::UnusedTcpPort();
  std::vector<std::unique_ptr<coord::testing::Process>> ranks;
  for (int r = 0; r < 4; ++r) {
    std::map<std::string, std::string> env = RankEnv(r, 4, port);
    env["GPT_RANK_INJECT_STOP"] = "2:3";
    ranks.push_back(std::make_unique<coord::testing::Process>());
    ASSERT_TRUE(ranks.back()->Start({GptRank(), "train", "--config", cfg, "--set", Pp(4)},
                                    dir.File("rank" + std::to_string(r) + ".log"), env));
  }
  const std::string stopped_log = dir.File("rank2.log");
  ASSERT_TRUE(coord::testing::WaitUntil(
      [&] {
        return coord::testing::ReadAll(stopped_log).find("stopping pipeline stage 2") !=
               std::string::npos;
      },
      120000))
      << coord::testing::ReadAll(stopped_log);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the neighbours block on it
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(ranks[2]->pid(), SIGKILL), 0);
  for (int r : {0, 1, 3}) {
    const int status = ranks[static_cast<size_t>(r)]->Wait(40000);
    const std::string log = coord::testing::ReadAll(dir.File("rank" + std::to_string(r) + ".log"));
    ASSERT_GE(status, 0) << "rank " << r << " still running 40 s after stage 2 died:\n" << log;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << log;
    EXPECT_NE(log.find("pipeline stage " + std::to_string(r) + " of 4"), std::string::npos)
        << log;
    if (r == 1 || r == 3) {  // the dead stage's neighbours were waiting on it: they name it
      EXPECT_NE(log.find("pipeline stage " + std::to_string(r) + " of 4, iteration 3: waiting for "
                         "the " + std::string(r == 1 ? "gradient" : "activation") +
                         " of micro-batch "),
                std::string::npos)
          << log;
      EXPECT_NE(log.find("from stage 2"), std::string::npos) << log;
    }
  }
  // Within the collective timeout (20 s) plus the time to exit.
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(35));
  for (auto& p : ranks) p->Crash();
}

}  // namespace
}  // namespace gpt_rank::e2e
