// Greedy generation with the KV cache against the plain PyTorch reference
// (tests/reference/llama_generate_reference.py over llama_reference.py's model: float64,
// the whole sequence re-run every token): a Qwen2-shaped (GQA, q/k/v biases, tied, 3 shards) and a
// Llama-shaped (untied, no biases) tiny model with the reference's random weights, imported through
// import-hf's path. The ids must agree at every step whose top-two logit gap in the
// reference is at least kMinMargin; the first closer step (a near-tie fp32 may break the
// other way) ends the comparison, and at least kMinCompared steps must be compared.
// Skips only without torch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "trainer/checkpoint/hf_llama.h"
#include "trainer/model/generate.h"

namespace trainer {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr double kMinMargin = 1e-3;  // fp32 vs float64 logits differ by ~1e-6 here
constexpr size_t kMinCompared = 16;
constexpr int kNewTokens = 24;

std::string Script(const char* name) {
  return std::string(COORD_SOURCE_DIR) + "/tests/reference/" + name;
}

class KvGenerateReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KvGenerateReferenceTest, GreedyTokensMatchPyTorch) {
  if (access(kPython, X_OK) != 0 ||
      coord::testing::RunCommand({kPython, "-c", "import torch"}).exit_code != 0) {
    GTEST_SKIP() << kPython << " with torch (Debian python3-torch) not available";
  }
  const std::string arch = GetParam();
  coord::testing::TempDir tmp;
  const std::string weights = tmp.File("weights");
  auto init =
      coord::testing::RunCommand({kPython, Script("llama_reference.py"), "init", "--out", weights,
                                  "--arch", arch, "--shards", arch == "qwen2" ? "3" : "1"});
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  const std::vector<int32_t> prompt = {3, 17, 92, 5, 250, 41};
  std::string prompt_arg;
  for (int32_t id : prompt) prompt_arg += (prompt_arg.empty() ? "" : ",") + std::to_string(id);
  auto ref_run = coord::testing::RunCommand(
      {kPython, Script("llama_generate_reference.py"), "--weights", weights, "--prompt", prompt_arg,
       "--new-tokens", std::to_string(kNewTokens), "--out", tmp.File("ref.json")},
      {}, /*timeout_ms=*/300000);
  ASSERT_EQ(ref_run.exit_code, 0) << ref_run.out << ref_run.err;
  auto text = coord::ReadFile(tmp.File("ref.json"));
  ASSERT_TRUE(text.ok());
  const nlohmann::json ref = nlohmann::json::parse(*text);

  auto config = ReadHfLlamaConfig(weights);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  config->seq_length = config->max_position_embeddings;
  std::vector<float> params(GptParamLayout(*config).num_params());
  ASSERT_TRUE(ImportHfLlama(weights, *config, params.data()).ok());
  SampleOptions o;
  o.temperature = 0.0f;
  o.max_tokens = kNewTokens;
  auto g = GenerateWithCache(*config, params.data(), params.size(), prompt, o);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->tokens.size(), static_cast<size_t>(kNewTokens));

  size_t compared = 0;
  for (; compared < g->tokens.size(); ++compared) {
    if (ref["margins"][compared].get<double>() < kMinMargin) break;
    ASSERT_EQ(g->tokens[compared], ref["tokens"][compared].get<int>()) << "step " << compared;
  }
  EXPECT_GE(compared, kMinCompared)
      << "a near-tie at step " << compared << " left too few steps to compare";
}

INSTANTIATE_TEST_SUITE_P(Family, KvGenerateReferenceTest, ::testing::Values("qwen2", "llama"));

}  // namespace
}  // namespace trainer
