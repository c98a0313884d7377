// Megatron's log line and validation block (exact format), metrics.jsonl records
// (fields, full precision, append on resume) and COORD_PROGRESS_FD records through a
// real pipe, including a closed fd (one warning, training goes on).
#include "trainer/train/metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace gpt_rank::train {
namespace {

IterationRecord Sample() {
  IterationRecord r;
  r.iteration = 20;
  r.train_iters = 500000;
  r.consumed_samples = 160;
  r.elapsed_ms = 236.66;
  r.lr = 1.977e-3;
  r.global_batch_size = 8;
  r.lm_loss = 7.123456789;
  r.grad_norm = 1.23456;
  r.tokens_per_s = 2163.35;
  r.tflops = 0.01234;
  return r;
}

TEST(MetricsTest, MegatronLogLine) {
  EXPECT_EQ(FormatMegatronLogLine(Sample()),
            " iteration       20/  500000 | consumed samples:          160 |"
            " elapsed time per iteration (ms): 236.7 | learning rate: 1.977E-03 |"
            " global batch size:     8 | lm loss: 7.123457E+00 | grad norm: 1.235 |"
            " number of skipped iterations:   0 | number of nan iterations:   0 |"
            " tokens/s: 2163.3 | TFLOP/s: 0.012 |");
}

TEST(MetricsTest, ValidationBlockAsMegatronPrintsIt) {
  const std::string block = FormatValidationBlock("iteration 100", 2.0);
  const std::string line =
      " validation loss at iteration 100 | lm loss value: 2.000000E+00 | lm loss PPL: "
      "7.389056E+00 | ";
  const std::string dashes(line.size() + 1, '-');
  EXPECT_EQ(block, dashes + "\n" + line + "\n" + dashes);
  // Megatron caps the perplexity's exponent at 20.
  EXPECT_NE(FormatValidationBlock("x", 50.0).find("lm loss PPL: 4.851652E+08"), std::string::npos);
}

TEST(MetricsTest, JsonRecordHasFullPrecisionFields) {
  nlohmann::json j = IterationRecordJson(Sample());
  for (const char* key : {"iteration", "lm_loss", "lr", "grad_norm", "tokens_per_s",
                          "consumed_samples", "elapsed_ms"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["iteration"], 20);
  EXPECT_EQ(j["lm_loss"].get<double>(), 7.123456789);
  EXPECT_EQ(nlohmann::json::parse(j.dump())["lr"].get<double>(), 1.977e-3);
}

TEST(MetricsTest, FlopsFormulaOfMegatronDeepSpeed) {
  trainer::GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 64;
  c.seq_length = 32;
  c.vocab_size = 500;  // padded 512
  const double expected = 24.0 * 3 * 4 * 32 * 2 * 64 * 64 * (1 + 32.0 / 384 + 512.0 / 2048);
  EXPECT_DOUBLE_EQ(FlopsPerIteration(c, 4), expected);
  c.checkpoint_activations = true;
  EXPECT_DOUBLE_EQ(FlopsPerIteration(c, 4), expected * 4 / 3);
}

TEST(MetricsTest, MetricsFileAppends) {
  coord::testing::TempDir tmp;
  const std::string path = tmp.File("sub/metrics.jsonl");
  for (int round = 0; round < 2; ++round) {  // a resumed run appends
    auto sink = MetricsSink::Open(path, -1);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    IterationRecord r = Sample();
    r.iteration += round;
    ASSERT_TRUE(sink->WriteMetrics(r).ok());
    ASSERT_TRUE(sink->WriteValidation(r.iteration, 2.5).ok());
  }
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["iteration"], 20);
  EXPECT_EQ(lines[1]["event"], "validation");
  EXPECT_EQ(lines[2]["iteration"], 21);
}

TEST(MetricsTest, ProgressRecordsThroughAPipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  {
    auto sink = MetricsSink::Open("", fds[1]);
    ASSERT_TRUE(sink.ok());
    sink->WriteProgress(1, 10.5, 12.25);
    sink->WriteProgress(2, 9.75, 11.0);
    ProgressRecord r;  // a checkpoint and the job's tokens/s
    r.iteration = 3;
    r.loss = 9.5;
    r.time_ms = 10.0;
    r.checkpoint = 2;
    r.tokens_per_s = 4096.5;
    sink->WriteProgress(r);
  }
  close(fds[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(nlohmann::json::parse(line),
            nlohmann::json({{"iteration", 1}, {"loss", 10.5}, {"time_ms", 12.25}}));
  std::getline(lines, line);
  EXPECT_EQ(nlohmann::json::parse(line)["iteration"], 2);
  std::getline(lines, line);
  EXPECT_EQ(nlohmann::json::parse(line),
            nlohmann::json({{"iteration", 3},
                            {"loss", 9.5},
                            {"time_ms", 10.0},
                            {"checkpoint", 2},
                            {"tokens_per_s", 4096.5}}));
  EXPECT_FALSE(std::getline(lines, line));
}

TEST(MetricsTest, BadProgressFdWarnsOnceAndStops) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const int bad = fds[1];
  close(fds[0]);
  close(fds[1]);  // now EBADF
  auto sink = MetricsSink::Open("", bad);
  ASSERT_TRUE(sink.ok());
  testing::internal::CaptureStderr();
  sink->WriteProgress(1, 1.0, 1.0);
  sink->WriteProgress(2, 1.0, 1.0);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("COORD_PROGRESS_FD"), std::string::npos) << err;
  EXPECT_EQ(err.find("COORD_PROGRESS_FD"), err.rfind("COORD_PROGRESS_FD")) << "warned twice";
}

TEST(MetricsTest, ProgressFdFromEnv) {
  unsetenv("COORD_PROGRESS_FD");
  EXPECT_EQ(*ProgressFdFromEnv(), -1);
  setenv("COORD_PROGRESS_FD", "7", 1);
  EXPECT_EQ(*ProgressFdFromEnv(), 7);
  setenv("COORD_PROGRESS_FD", "x", 1);
  EXPECT_FALSE(ProgressFdFromEnv().ok());
  unsetenv("COORD_PROGRESS_FD");
}

// The timings extend the record without changing the old fields, and even at extreme
// values a record stays under the 512 bytes an older agent reads of the file's end.
TEST(MetricsTest, ProgressRecordWithTimingsKeepsTheOldFieldsAndStaysSmall) {
  ProgressRecord r;
  r.iteration = 120;
  r.loss = 3.25;
  r.time_ms = 101.5;
  r.checkpoint = 100;
  r.train_iters = 500;
  r.tokens_per_s = 2521.53;
  r.lr = 2.5e-4;
  r.stage = 1;
  r.has_timings = true;
  r.timings.compute_ms = 60.1234567;
  r.timings.wait_ms = 30.5;
  r.timings.wait_dp_ms = 30.5;
  r.timings.data_ms = 1.25;
  r.timings.optimizer_ms = 9.5;
  const nlohmann::json j = nlohmann::json::parse(ProgressRecordJson(r));
  EXPECT_EQ(j["iteration"], 120);
  EXPECT_EQ(j["loss"], 3.25);
  EXPECT_EQ(j["time_ms"], 101.5);
  EXPECT_EQ(j["checkpoint"], 100);
  EXPECT_EQ(j["train_iters"], 500);
  EXPECT_EQ(j["tokens_per_s"], 2521.5);
  EXPECT_EQ(j["lr"], 2.5e-4);  // the web page's learning-rate curve
  EXPECT_EQ(j["stage"], 1);
  EXPECT_EQ(j["compute_ms"], 60.123);  // to the microsecond
  EXPECT_EQ(j["wait_ms"], 30.5);
  EXPECT_EQ(j["wait_dp_ms"], 30.5);
  EXPECT_FALSE(j.contains("wait_tp_ms"));  // groups it never waited in are left out
  EXPECT_EQ(j["data_ms"], 1.25);
  EXPECT_EQ(j["optimizer_ms"], 9.5);

  ProgressRecord big = r;
  big.iteration = big.train_iters = big.checkpoint = INT64_MAX / 3;
  big.loss = big.time_ms = 1.0 / 3.0 * 1e300;
  big.tokens_per_s = 1e300;
  big.lr = 1.0 / 3.0 * 1e300;
  big.stage = 1 << 30;
  big.timings = {1e300, 1e300, 1e300, 1e300, 1e300, 1e300, 1e300};
  EXPECT_LT(ProgressRecordJson(big).size(), 512u) << ProgressRecordJson(big);
  // Without timings: exactly the old record.
  ProgressRecord old;
  old.iteration = 1;
  old.loss = 10.5;
  old.time_ms = 12.25;
  EXPECT_EQ(ProgressRecordJson(old), R"({"iteration":1,"loss":10.5,"time_ms":12.25})");
}

}  // namespace
}  // namespace gpt_rank::train
