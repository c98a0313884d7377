// Supervised fine-tuning end to end (`gpt-rank train` with data.format "sft") on a
// Qwen2-shaped tiny model, the tiny ChatML tokenizer and a chat set the test writes
// (mixed formats; no download): the loss on the assistant tokens falls and the
// held-out split is evaluated; packed rows train; DP 2 and TP 2 reproduce one rank;
// resume from a checkpoint reproduces the uninterrupted run; bad lines are skipped with
// their line number, or fatal with data.strict_samples; config errors name the key.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/trainer_e2e/e2e_util.h"
#include "tests/unit/trainer_data/tiny_chat_tokenizer.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::TempDir;
using nlohmann::json;

// 240 conversations: "add a b" -> "a+b=c" in the four formats, some multi-turn.
void WriteChatSet(const std::string& path, bool with_bad_line) {
  std::ofstream out(path);
  for (int i = 0; i < 240; ++i) {
    const int a = (i * 7) % 10, b = (i * 3 + 1) % 10;
    const std::string q = "add " + std::to_string(a) + " " + std::to_string(b);
    const std::string r = std::to_string(a) + "+" + std::to_string(b) + "=" + std::to_string(a + b);
    json j;
    switch (i % 4) {
      case 0:
        j = {{"messages",
              {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", r}}}}};
        break;
      case 1:
        j = {{"query", q},
             {"response", r},
             {"history", json::array({json::array({"add 1 1", "1+1=2"})})}};
        break;
      case 2:
        j = {{"instruction", "add"},
             {"input", std::to_string(a) + " " + std::to_string(b)},
             {"output", r}};
        break;
      default:
        j = {{"system", "sum"},
             {"conversations",
              {{{"from", "human"}, {"value", q}}, {{"from", "gpt"}, {"value", r}}}}};
    }
    out << j.dump() << "\n";
    if (with_bad_line && i == 2)
      out << R"({"messages": [{"role": "user", "content": "no answer"}]})"
          << "\n";
  }
}

json SftJob(const TempDir& dir) {
  json job = ParallelJob(dir.path());
  json& m = job["model"];
  m = {{"num_layers", 2},
       {"hidden_size", 64},
       {"num_attention_heads", 4},
       {"seq_length", 128},
       {"max_position_embeddings", 128},
       {"hidden_dropout", 0.0},
       {"attention_dropout", 0.0},
       {"normalization", "RMSNorm"},
       {"norm_epsilon", 1e-6},
       {"position_embedding_type", "rope"},
       {"rotary_base", 1000000.0},
       {"swiglu", true},
       {"ffn_hidden_size", 128},
       {"group_query_attention", true},
       {"num_query_groups", 2},
       {"disable_bias_linear", true},
       {"add_qkv_bias", true}};
  job["data"] = {{"format", "sft"},
                 {"train_data", dir.File("chat.jsonl")},
                 {"tokenizer_file", dir.File("tokenizer.json")},
                 {"chat_template", "qwen"},
                 {"packing", true},
                 {"split_dataset_ratio", 0.05}};
  job["training"]["lr"] = 3e-3;
  job["training"]["eval_interval"] = 10;
  job["training"]["eval_iters"] = 2;
  job["training"]["lr_decay_iters"] = 20;
  return job;
}

struct SftRun {
  std::map<int64_t, double> train, valid;
  std::string log;
};

SftRun Train(const TempDir& dir, const std::string& cfg, const std::string& tag, int world,
             const std::vector<std::string>& extra) {
  const std::string save = dir.File(tag);
  std::vector<std::string> sets = {"training.save=" + save};
  sets.insert(sets.end(), extra.begin(), extra.end());
  RanksResult r = RunRanks(dir, tag, world, cfg, sets, 300000);
  std::string why;
  EXPECT_TRUE(AllExitedZero(r, &why)) << tag << ": " << why;
  SftRun out;
  out.log = r.logs[0];
  for (const json& j : ReadJsonLines(save + "/metrics.jsonl")) {
    if (!j.contains("lm_loss")) continue;
    const bool valid = j.value("event", "") == "validation";
    (valid ? out.valid : out.train)[j["iteration"].get<int64_t>()] = j["lm_loss"].get<double>();
  }
  return out;
}

class SftE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.File("tokenizer.json"))
        << trainer::data::testing::TinyChatTokenizerJson().dump();
    WriteChatSet(dir_.File("chat.jsonl"), true);
  }
  std::string Config(const json& job) { return WriteJob(dir_.File("job.json"), job); }
  TempDir dir_;
};

TEST_F(SftE2e, AssistantLossFallsPackedAndUnpackedWithValidation) {
  const std::string cfg = Config(SftJob(dir_));
  const SftRun packed = Train(dir_, cfg, "packed", 1, {});
  ASSERT_TRUE(packed.train.count(1) && packed.train.count(20)) << packed.log;
  EXPECT_LT(packed.train.at(20), 0.6 * packed.train.at(1)) << packed.log;
  ASSERT_TRUE(packed.valid.count(10) && packed.valid.count(20)) << packed.log;
  EXPECT_LT(packed.valid.at(20), packed.valid.at(10) + 1e-9);
  // The start log says what was read and skipped (line 4: the turn without an answer).
  EXPECT_NE(packed.log.find("241 lines, 240 samples, 1 skipped"), std::string::npos) << packed.log;
  EXPECT_NE(packed.log.find("chat.jsonl:4: no assistant turn"), std::string::npos) << packed.log;
  EXPECT_NE(packed.log.find("; packed"), std::string::npos);
  const SftRun rows = Train(dir_, cfg, "rows", 1, {"data.packing=false"});
  ASSERT_TRUE(rows.train.count(20));
  EXPECT_LT(rows.train.at(20), 0.6 * rows.train.at(1)) << rows.log;
  EXPECT_NE(rows.log.find("one sample per row"), std::string::npos);
}

TEST_F(SftE2e, DataAndTensorParallelReproduceOneRank) {
  const std::string cfg = Config(SftJob(dir_));
  const SftRun one = Train(dir_, cfg, "one", 1, {});
  const SftRun dp = Train(dir_, cfg, "dp2", 2, {});
  ExpectSameLosses(one.train, dp.train, 1, 20, "SFT DP 2");
  for (int64_t it : {10, 20}) {  // validation: the same held-out tokens, averaged alike
    ASSERT_TRUE(one.valid.count(it) && dp.valid.count(it)) << it;
    EXPECT_NEAR(dp.valid.at(it), one.valid.at(it), 1e-5 * one.valid.at(it)) << it;
  }
  const SftRun tp = Train(dir_, cfg, "tp2", 2, {"parallel.tensor_model_parallel_size=2"});
  ExpectSameLosses(one.train, tp.train, 1, 20, "SFT TP 2");
}

TEST_F(SftE2e, PipelineAndZero3ReproduceOneRank) {
  // Every pipeline stage loads the micro-batch (positions and segments for its
  // attention, the weights for the last stage's loss).
  const std::string cfg = Config(SftJob(dir_));
  const SftRun one = Train(dir_, cfg, "one", 1, {});
  const SftRun pp = Train(dir_, cfg, "pp2", 2, {"parallel.pipeline_model_parallel_size=2"});
  ExpectSameLosses(one.train, pp.train, 1, 20, "SFT PP 2");
  const SftRun z3 = Train(dir_, cfg, "zero3", 2, {"zero_optimization.stage=3"});
  ExpectSameLosses(one.train, z3.train, 1, 20, "SFT ZeRO-3 DP 2");
}

TEST_F(SftE2e, ResumeReproducesTheUninterruptedRun) {
  const std::string cfg = Config(SftJob(dir_));
  const SftRun full = Train(dir_, cfg, "full", 1, {});
  // A second run stops at 10 (its checkpoint; the same lr schedule), a third resumes
  // from it to 20.
  Train(dir_, cfg, "half", 1, {"training.train_iters=10", "training.lr_decay_iters=20"});
  const SftRun resumed = Train(dir_, cfg, "resumed", 1, {"training.load=" + dir_.File("half")});
  EXPECT_NE(resumed.log.find("resumed from"), std::string::npos) << resumed.log;
  ExpectSameLosses(full.train, resumed.train, 11, 20, "SFT resumed");
}

TEST_F(SftE2e, StrictSamplesMakesABadLineFatal) {
  json job = SftJob(dir_);
  job["data"]["strict_samples"] = true;
  const std::string cfg = Config(job);
  RanksResult r = RunRanks(dir_, "strict", 1, cfg, {"training.save=" + dir_.File("strict")});
  ASSERT_TRUE(WIFEXITED(r.status[0]) && WEXITSTATUS(r.status[0]) != 0) << r.logs[0];
  EXPECT_NE(r.logs[0].find("chat.jsonl:4: no assistant turn"), std::string::npos) << r.logs[0];
}

TEST_F(SftE2e, ConfigErrorsNameTheKey) {
  auto error_of = [&](const json& job) {
    const std::string cfg = Config(job);
    auto r = coord::testing::RunCommand({GptRank(), "train", "--config", cfg});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    return r.out + r.err;
  };
  json gpt2 = SftJob(dir_);
  gpt2["model"].erase("position_embedding_type");
  EXPECT_NE(error_of(gpt2).find("data.packing"), std::string::npos);
  json long_rows = SftJob(dir_);
  long_rows["data"]["max_length"] = 200;
  EXPECT_NE(error_of(long_rows).find("data.max_length"), std::string::npos);
  json rule = SftJob(dir_);
  rule["data"]["truncation_strategy"] = "middle";
  EXPECT_NE(error_of(rule).find("data.truncation_strategy"), std::string::npos);
  json pretrain = SftJob(dir_);
  pretrain["data"]["format"] = "pretrain";
  EXPECT_NE(error_of(pretrain).find("data.packing: only for data.format \"sft\""),
            std::string::npos);
  // A template the tokenizer cannot render fails at start, naming data.chat_template.
  json unknown = SftJob(dir_);
  unknown["data"]["chat_template"] = "llama3";
  const std::string cfg = Config(unknown);
  RanksResult r = RunRanks(dir_, "tmpl", 1, cfg, {"training.save=" + dir_.File("tmpl")});
  EXPECT_NE(r.logs[0].find("data.chat_template"), std::string::npos) << r.logs[0];
  EXPECT_NE(r.logs[0].find("\"llama3\""), std::string::npos) << r.logs[0];
}

}  // namespace
}  // namespace gpt_rank::e2e
