// Megatron's TensorBoard tags from the loop's figures: which tags, at which steps
// (iteration, and consumed samples for "vs samples"), lm loss averaged since the last
// write (= metrics.jsonl's with the default interval), loss-scale 1 without fp16,
// iteration-time in seconds, validation ppl capped as Megatron caps it, and the
// fault-injection variable's parsing.
#include "trainer/train/tensorboard_log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "tests/support/temp_dir.h"
#include "tests/unit/trainer_tensorboard/event_reader.h"

namespace gpt_rank::train {
namespace {

// tag -> step -> value, from the writer's file.
using Scalars = std::map<std::string, std::map<int64_t, float>>;

Scalars Read(const TensorBoardLog& tb) {
  std::string error;
  auto events = trainer::tensorboard::testing::ReadEvents(tb.writer().path(), &error);
  EXPECT_EQ(error, "");
  Scalars out;
  for (const auto& e : events) {
    for (const auto& v : e.summary().value()) out[v.tag()][e.step()] = v.simple_value();
  }
  return out;
}

TrainingConfig Config(const std::string& dir) {
  TrainingConfig tr;
  tr.tensorboard_dir = dir;
  tr.log_interval = 2;
  tr.train_iters = 5;
  tr.global_batch_size = 8;
  return tr;
}

TEST(TensorBoardLogTest, TrainingTagsEveryLogIntervalAndTheLastIteration) {
  coord::testing::TempDir dir;
  auto tb = TensorBoardLog::Open(Config(dir.path()), 4);
  ASSERT_TRUE(tb.ok()) << tb.status().ToString();
  const double losses[] = {0, 9.0, 8.0, 7.5, 7.0, 6.0};
  for (int it = 1; it <= 5; ++it) {
    (*tb)->OnIteration({it, 8 * it, losses[it], 0.5 * it, 1e-3 * it, 0.0});
  }
  const Scalars s = Read(**tb);
  const std::set<std::string> want = {
      "learning-rate", "learning-rate vs samples", "batch-size", "batch-size vs samples",
      "lm loss",       "lm loss vs samples",       "loss-scale", "loss-scale vs samples",
      "world-size",    "world-size vs samples",    "grad-norm",  "grad-norm vs samples"};
  std::set<std::string> got;
  for (const auto& [tag, _] : s) got.insert(tag);
  EXPECT_EQ(got, want);
  const std::map<int64_t, float> loss = {{2, 8.5f}, {4, 7.25f}, {5, 6.0f}};
  EXPECT_EQ(s.at("lm loss"), loss);
  EXPECT_EQ(s.at("lm loss vs samples"), (std::map<int64_t, float>{{16, 8.5f}, {32, 7.25f}, {40, 6.0f}}));
  EXPECT_EQ(s.at("grad-norm").at(4), 2.0f);
  EXPECT_EQ(s.at("learning-rate").at(5), 5e-3f);
  EXPECT_EQ(s.at("loss-scale").at(2), 1.0f);  // no fp16: Megatron's 1
  EXPECT_EQ(s.at("batch-size").at(2), 8.0f);
  EXPECT_EQ(s.at("world-size vs samples").at(40), 4.0f);
}

TEST(TensorBoardLogTest, ItsOwnIntervalWritesEachIterationsLoss) {
  coord::testing::TempDir dir;
  TrainingConfig tr = Config(dir.path());
  tr.tensorboard_log_interval = 1;
  auto tb = TensorBoardLog::Open(tr, 1);
  ASSERT_TRUE(tb.ok());
  for (int it = 1; it <= 3; ++it) (*tb)->OnIteration({it, 8 * it, 10.0 - it, 1, 1, 65536.0});
  const Scalars s = Read(**tb);
  EXPECT_EQ(s.at("lm loss"), (std::map<int64_t, float>{{1, 9.0f}, {2, 8.0f}, {3, 7.0f}}));
  EXPECT_EQ(s.at("loss-scale").at(3), 65536.0f);
}

TEST(TensorBoardLogTest, LogLineAndValidation) {
  coord::testing::TempDir dir;
  auto tb = TensorBoardLog::Open(Config(dir.path()), 1);
  ASSERT_TRUE(tb.ok());
  IterationRecord r;
  r.iteration = 4;
  r.elapsed_ms = 250.0;
  r.tflops = 0.125;
  (*tb)->OnLogLine(r);
  (*tb)->OnValidation(4, 32, 2.0);
  (*tb)->OnValidation(5, 40, 25.0);  // ppl capped at exp(20)
  const Scalars s = Read(**tb);
  EXPECT_EQ(s.at("iteration-time"), (std::map<int64_t, float>{{4, 0.25f}}));
  EXPECT_EQ(s.at("throughput"), (std::map<int64_t, float>{{4, 0.125f}}));
  EXPECT_EQ(s.at("lm loss validation").at(4), 2.0f);
  EXPECT_EQ(s.at("lm loss validation vs samples").at(32), 2.0f);
  EXPECT_EQ(s.at("lm loss validation ppl").at(4), static_cast<float>(std::exp(2.0)));
  EXPECT_EQ(s.at("lm loss validation ppl vs samples").at(40), static_cast<float>(std::exp(20.0)));
  EXPECT_EQ(s.count("iteration-time vs samples"), 0u);  // Megatron has no such twin
}

TEST(TensorBoardLogTest, OpenNamesTheDirectory) {
  coord::testing::TempDir dir;
  std::ofstream(dir.File("file")) << "x";
  auto tb = TensorBoardLog::Open(Config(dir.File("file/tb")), 1);
  ASSERT_FALSE(tb.ok());
  EXPECT_NE(tb.status().message().find("training.tensorboard_dir " + dir.File("file/tb")),
            std::string::npos)
      << tb.status().message();
}

TEST(TensorBoardLogTest, InjectedFaultFromEnv) {
  unsetenv("GPT_RANK_INJECT_EVENT_WRITE_FAULT");
  auto none = InjectedEventWriteFaultFromEnv();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  setenv("GPT_RANK_INJECT_EVENT_WRITE_FAULT", "-3", 1);
  EXPECT_FALSE(InjectedEventWriteFaultFromEnv().ok());
  setenv("GPT_RANK_INJECT_EVENT_WRITE_FAULT", "1000", 1);  // about 1.5 batches
  auto fault = InjectedEventWriteFaultFromEnv();
  unsetenv("GPT_RANK_INJECT_EVENT_WRITE_FAULT");
  ASSERT_TRUE(fault.ok());
  ASSERT_NE(*fault, nullptr);
  coord::testing::TempDir dir;
  ::testing::internal::CaptureStderr();
  auto tb = TensorBoardLog::Open(Config(dir.path()), 1, *fault);
  ASSERT_TRUE(tb.ok());
  for (int it = 1; it <= 5; ++it) (*tb)->OnIteration({it, 8 * it, 1.0, 1, 1, 0});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_GT((*tb)->writer().dropped_events(), 0);
  const Scalars s = Read(**tb);  // the first batch is there, whole; nothing after it
  EXPECT_EQ(s.at("lm loss"), (std::map<int64_t, float>{{2, 1.0f}}));
  EXPECT_LE(coord::ReadFile((*tb)->writer().path())->size(), 1000u);
}

}  // namespace
}  // namespace gpt_rank::train
