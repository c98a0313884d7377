// The job config a checkpoint carries (checkpoint_model.h: ParseJobModelConfig, as
// generate, export-hf and the tensor-parallel loader read train_state.json's
// config_json), the vocab size read from vocab.json, and generation_config.json's eos
// ids (hf_generation_config.h): numbers that do not fit, wrong types, nesting without
// end and bytes that are not UTF-8 are errors naming the file (or origin) and the JSON
// path, never an exception or undefined behaviour.
#include "trainer/checkpoint/checkpoint_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "trainer/checkpoint/hf_generation_config.h"

namespace trainer {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using ::testing::HasSubstr;

TEST(CheckpointModelTest, AGoodConfigKeepsItsValues) {
  auto job = ParseJobModelConfig(
      R"({"model": {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
          "seq_length": 16, "layernorm_epsilon": 1e-6, "vocab_size": 264},
          "data": {"vocab_file": "v.json"}, "training": {"seed": 9}})",
      "job.json");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->model.num_layers, 2);
  EXPECT_EQ(job->model.hidden_size, 32);
  EXPECT_FLOAT_EQ(job->model.layernorm_epsilon, 1e-6f);
  EXPECT_TRUE(job->vocab_size_given);
  EXPECT_EQ(job->vocab_file, "v.json");
  EXPECT_EQ(job->seed, 9u);
}

TEST(CheckpointModelTest, HostileConfigsAreErrorsNamingTheOriginAndField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"model": {"num_layers": 1e300}})", "model.num_layers: expected an integer, got 1e+300"},
      {R"({"model": {"hidden_size": 1099511627776}})",
       "model.hidden_size: expected an integer that fits int32, got 1099511627776"},
      {R"({"model": {"hidden_size": -2147483649}})",
       "model.hidden_size: expected an integer that fits"},
      {R"({"model": {"layernorm_epsilon": 1e300}})",
       "model.layernorm_epsilon: expected a number that fits a float, got 1e+300"},
      {R"({"model": {"num_attention_heads": "4"}})",
       "model.num_attention_heads: expected an integer, got string"},
      {R"({"model": {"swiglu": 1}})", "model.swiglu: expected true or false, got 1"},
      {R"({"model": {"normalization": ["RMSNorm"]}})",
       "model.normalization: expected a string, got array"},
      {R"({"parallel": {"tensor_model_parallel_size": 4294967297}})",
       "parallel.tensor_model_parallel_size: expected an integer that fits int32"},
      {R"({"model": {"num_layers": 1e400}})",
       ":1:26: invalid JSON: the number 1e400 is out of range"},
      {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
      {"{\"data\": {\"vocab_file\": \"v\xff.json\"}}",
       ":1:27: invalid JSON: invalid string: ill-formed UTF-8"},
      {"[1]", "config is not a JSON object"},
  };
  for (const auto& [text, says] : cases) {
    auto job = ParseJobModelConfig(text, "checkpoint /ck/iter_0000010");
    ASSERT_FALSE(job.ok()) << text.substr(0, 80);
    EXPECT_EQ(job.status().code(), coord::StatusCode::kInvalidArgument);
    EXPECT_THAT(job.status().message(), HasSubstr("checkpoint /ck/iter_0000010")) << says;
    EXPECT_THAT(job.status().message(), HasSubstr(says));
  }
}

TEST(CheckpointModelTest, VocabSizeOfAHostileVocabFileIsAnError) {
  TempDir dir;
  const std::string path = dir.File("vocab.json");
  for (const std::string& text :
       {std::string("{\"a\": 1e400}"), std::string(100000, '{'), std::string("{\"\xff\": 0}")}) {
    WriteTextFile(path, text);
    auto n = ReadVocabSize(path);
    ASSERT_FALSE(n.ok()) << text.substr(0, 40);
    EXPECT_THAT(n.status().message(), HasSubstr(path + ":1:"));
  }
  WriteTextFile(path, R"({"a": 0, "b": 1})");
  auto n = ReadVocabSize(path);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
}

TEST(HfGenerationConfigTest, EosIdsOneOrAList) {
  TempDir dir;
  const std::string path = dir.File("generation_config.json");
  WriteTextFile(path, R"({"eos_token_id": [151645, 151643], "temperature": 0.7})");
  auto ids = ReadHfEosTokenIds(path);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<int>{151645, 151643}));
  WriteTextFile(path, R"({"eos_token_id": 2})");
  EXPECT_EQ(*ReadHfEosTokenIds(path), std::vector<int>{2});
  WriteTextFile(path, R"({"eos_token_id": null})");
  EXPECT_TRUE(ReadHfEosTokenIds(path)->empty());
}

TEST(HfGenerationConfigTest, HostileFilesAreErrorsNamingTheFileAndField) {
  TempDir dir;
  const std::string path = dir.File("generation_config.json");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"eos_token_id": 1e300})", ": eos_token_id: got 1e+300; eos_token_id must be a token id"},
      {R"({"eos_token_id": [2, 4294967296]})", ": eos_token_id[1]: got 4294967296"},
      {R"({"eos_token_id": [2, -1]})", ": eos_token_id[1]: got -1"},
      {R"({"eos_token_id": [2, 2.5]})", ": eos_token_id[1]: got 2.5"},
      {R"({"eos_token_id": [[2]]})", ": eos_token_id[0]: got array"},
      {R"({"eos_token_id": "x"})", ": eos_token_id: got string"},
      {R"({"eos_token_id": 1e400})", ":1:18: invalid JSON: the number 1e400 is out of range"},
      {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
      {"{\"eos_token_id\": 2, \"x\": \"\xc0\x80\"}", ":1:27: invalid JSON: invalid string"},
      {"[2]", ": expected a JSON object"},
  };
  for (const auto& [text, says] : cases) {
    WriteTextFile(path, text);
    auto ids = ReadHfEosTokenIds(path);
    ASSERT_FALSE(ids.ok()) << text.substr(0, 80);
    EXPECT_EQ(ids.status().code(), coord::StatusCode::kInvalidArgument);
    EXPECT_THAT(ids.status().message(), HasSubstr(path + says));
  }
}

}  // namespace
}  // namespace trainer
