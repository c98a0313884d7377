// import-hf / export-hf for the Llama / Qwen2 family:
//  - a Qwen2-shaped model in bf16, 5 safetensors shards + index, with Qwen2.5's real
//    config.json keys -> import-hf into a TP 2 checkpoint (mp_rank_00, mp_rank_01) ->
//    export-hf --dtype bf16 gives every original tensor back bit for bit (sharded again);
//  - a Llama-shaped untied model in fp16 the same way at TP 1; an fp32 export re-imports
//    to the same bits;
//  - bad input, each refused by name before anything is written: an unsupported
//    model_type, an unknown key, rope_scaling "yarn", tensor shapes that disagree with
//    config.json (the tensor and both shapes), a shard the index lists but that is
//    missing, a tensor the architecture has no place for, a job whose architecture
//    differs.
#include "trainer/checkpoint/hf_llama.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/cli/commands.h"
#include "trainer/model/gpt_params.h"

namespace gpt_rank::cli {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using nlohmann::json;

int RunVerb(int (*verb)(const std::vector<std::string>&), std::vector<std::string> args,
            std::string* err) {
  ::testing::internal::CaptureStderr();
  const int rc = verb(args);
  *err = ::testing::internal::GetCapturedStderr();
  return rc;
}

// Qwen2.5-0.5B's config.json keys, at a tiny size.
json Qwen2Config() {
  return {{"architectures", {"Qwen2ForCausalLM"}},
          {"attention_dropout", 0.0},
          {"bos_token_id", 151643},
          {"eos_token_id", 151643},
          {"hidden_act", "silu"},
          {"hidden_size", 64},
          {"initializer_range", 0.02},
          {"intermediate_size", 176},
          {"max_position_embeddings", 32768},
          {"max_window_layers", 2},
          {"model_type", "qwen2"},
          {"num_attention_heads", 4},
          {"num_hidden_layers", 2},
          {"num_key_value_heads", 2},
          {"rms_norm_eps", 1e-06},
          {"rope_theta", 1000000.0},
          {"sliding_window", 32768},
          {"tie_word_embeddings", true},
          {"torch_dtype", "bfloat16"},
          {"transformers_version", "4.43.1"},
          {"use_cache", true},
          {"use_sliding_window", false},
          {"vocab_size", 300}};
}

// Llama-2's keys: no GQA, no biases, untied.
json LlamaConfig() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 32},
          {"intermediate_size", 96},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 4},
          {"max_position_embeddings", 64},
          {"vocab_size", 200},
          {"rms_norm_eps", 1e-05},
          {"rope_theta", 10000.0},
          {"rope_scaling", nullptr},
          {"tie_word_embeddings", false},
          {"hidden_act", "silu"},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"pretraining_tp", 1},
          {"torch_dtype", "float16"},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

// The job's model section for an HF config (what a user writes; configs/ has real ones).
json JobFor(const trainer::GptConfig& c, int tp, int seq) {
  json m = {{"num_layers", c.num_layers},
            {"hidden_size", c.hidden_size},
            {"num_attention_heads", c.num_attention_heads},
            {"seq_length", seq},
            {"max_position_embeddings", c.max_position_embeddings},
            {"vocab_size", c.vocab_size},
            {"normalization", "RMSNorm"},
            {"norm_epsilon", c.layernorm_epsilon},
            {"position_embedding_type", "rope"},
            {"rotary_base", c.rotary_base},
            {"swiglu", true},
            {"ffn_hidden_size", c.ffn_size()},
            {"disable_bias_linear", true},
            {"add_qkv_bias", c.add_qkv_bias},
            {"untie_embeddings_and_output_weights", !c.tied_output()},
            {"hidden_dropout", 0.0},
            {"attention_dropout", 0.0}};
  if (c.group_query_attention) {
    m["group_query_attention"] = true;
    m["num_query_groups"] = c.num_query_groups;
  }
  return {{"model", m},
          {"parallel", {{"tensor_model_parallel_size", tp}}},
          {"training", {{"seed", 5}}}};
}

// An HF directory with random weights of `cfg` in `dtype` (through our exporter, whose
// config.json is then replaced by the HF-written one above).
trainer::GptConfig WriteHf(const std::string& dir, const json& cfg, trainer::SafetensorsDtype dtype,
                           uint64_t shard_bytes) {
  EXPECT_TRUE(coord::MakeDirs(dir).ok());
  WriteTextFile(dir + "/config.json", cfg.dump(2));
  auto config = trainer::ReadHfLlamaConfig(dir);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  const trainer::GptParamLayout layout(*config);
  std::vector<float> params(layout.num_params());
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (float& p : params) p = normal(gen);
  trainer::HfExportOptions options;
  options.dtype = dtype;
  options.max_shard_bytes = shard_bytes;
  EXPECT_TRUE(trainer::ExportHfLlama(dir, *config, params.data(), options).ok());
  WriteTextFile(dir + "/config.json", cfg.dump(2));
  return *config;
}

// Every tensor of a and b: same names, dtypes, shapes and values bit for bit.
void ExpectSameTensors(const std::string& a_dir, const std::string& b_dir) {
  auto a = trainer::HfCheckpoint::Open(a_dir);
  auto b = trainer::HfCheckpoint::Open(b_dir);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  ASSERT_EQ(a->Names(), b->Names());
  for (const std::string& name : a->Names()) {
    ASSERT_EQ(a->Dtype(name), b->Dtype(name)) << name;
    const std::vector<int64_t> shape = a->Shape(name);
    ASSERT_EQ(shape, b->Shape(name)) << name;
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<float> va(n), vb(n);
    ASSERT_TRUE(a->ReadF32(name, shape, va.data()).ok()) << name;
    ASSERT_TRUE(b->ReadF32(name, shape, vb.data()).ok()) << name;
    // Widened exactly from the stored 16-bit values: equal floats = equal stored bits.
    ASSERT_EQ(0, std::memcmp(va.data(), vb.data(), n * sizeof(float))) << name;
  }
}

TEST(HfLlamaTest, Qwen2Bf16ShardsRoundTripThroughATensorParallelCheckpointBitForBit) {
  TempDir dir;
  const trainer::GptConfig c =
      WriteHf(dir.File("hf"), Qwen2Config(), trainer::SafetensorsDtype::kBF16, 60000);
  ASSERT_TRUE(coord::PathExists(dir.File("hf/model.safetensors.index.json")));
  ASSERT_TRUE(coord::PathExists(dir.File("hf/model-00005-of-00005.safetensors")));
  EXPECT_FALSE(trainer::HfCheckpoint::Open(dir.File("hf"))->Has("lm_head.weight"));  // tied
  WriteTextFile(dir.File("job.json"), JobFor(c, 2, 16).dump(2));
  std::string err;
  ASSERT_EQ(RunVerb(RunImportHf,
                    {"import-hf", "--hf", dir.File("hf"), "--config", dir.File("job.json"),
                     "--save", dir.File("ckpt")},
                    &err),
            0)
      << err;
  EXPECT_NE(err.find("as 2 tensor-parallel shards"), std::string::npos) << err;
  for (const char* shard : {"mp_rank_00", "mp_rank_01"}) {
    EXPECT_TRUE(
        coord::PathExists(dir.File(std::string("ckpt/iter_0000000/") + shard + "/manifest.json")))
        << shard;
  }
  auto state = trainer::LoadFirstShardState(dir.File("ckpt/iter_0000000"));
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->tensor_model_parallel_size, 2);
  EXPECT_EQ(state->vocab_size, 300);
  ASSERT_EQ(RunVerb(RunExportHf,
                    {"export-hf", "--load", dir.File("ckpt"), "--out", dir.File("out"), "--dtype",
                     "bf16", "--max-shard-size", "60000"},
                    &err),
            0)
      << err;
  EXPECT_TRUE(coord::PathExists(dir.File("out/model.safetensors.index.json")));
  ExpectSameTensors(dir.File("hf"), dir.File("out"));
  // The exported config.json reads back as the same architecture.
  auto back = trainer::ReadHfLlamaConfig(dir.File("out"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->group_query_attention && back->num_query_groups == 2 && back->add_qkv_bias &&
              back->tied_output());
}

TEST(HfLlamaTest, LlamaFp16UntiedRoundTripsAndAnFp32ExportReimportsToTheSameBits) {
  TempDir dir;
  const trainer::GptConfig c =
      WriteHf(dir.File("hf"), LlamaConfig(), trainer::SafetensorsDtype::kF16, 5000000000ull);
  EXPECT_TRUE(coord::PathExists(dir.File("hf/model.safetensors")));
  EXPECT_TRUE(trainer::HfCheckpoint::Open(dir.File("hf"))->Has("lm_head.weight"));
  WriteTextFile(dir.File("job.json"), JobFor(c, 1, 16).dump(2));
  std::string err;
  ASSERT_EQ(RunVerb(RunImportHf,
                    {"import-hf", "--hf", dir.File("hf"), "--config", dir.File("job.json"),
                     "--save", dir.File("ckpt")},
                    &err),
            0)
      << err;
  ASSERT_EQ(RunVerb(RunExportHf,
                    {"export-hf", "--load", dir.File("ckpt"), "--out", dir.File("out16"), "--dtype",
                     "fp16"},
                    &err),
            0)
      << err;
  ExpectSameTensors(dir.File("hf"), dir.File("out16"));
  // fp32: the master weights out and back in, bit for bit.
  ASSERT_EQ(RunVerb(RunExportHf,
                    {"export-hf", "--load", dir.File("ckpt"), "--out", dir.File("out32")}, &err),
            0)
      << err;
  auto ckpt = trainer::LoadCheckpointForInference(dir.File("ckpt"), -1);
  ASSERT_TRUE(ckpt.ok());
  trainer::GptConfig job = c;
  job.seq_length = 16;
  std::vector<float> back(ckpt->params.size());
  ASSERT_TRUE(trainer::ImportHfLlama(dir.File("out32"), job, back.data()).ok());
  EXPECT_EQ(0, std::memcmp(back.data(), ckpt->params.data(), back.size() * sizeof(float)));
}

// import-hf on a broken copy of a good Qwen2 directory: exit 2, the message has `want`,
// and no checkpoint was written.
void ExpectRefused(const TempDir& dir, const std::string& hf, const std::string& want) {
  std::string err;
  const std::string save = dir.File("refused-save");
  EXPECT_EQ(
      RunVerb(RunImportHf,
              {"import-hf", "--hf", hf, "--config", dir.File("job.json"), "--save", save}, &err),
      2)
      << err;
  EXPECT_NE(err.find(want), std::string::npos) << err;
  EXPECT_FALSE(coord::PathExists(save)) << "nothing may be written: " << err;
}

TEST(HfLlamaTest, BadInputIsRefusedByNameBeforeAnythingIsLoaded) {
  TempDir dir;
  const std::string good = dir.File("hf");
  const trainer::GptConfig c =
      WriteHf(good, Qwen2Config(), trainer::SafetensorsDtype::kBF16, 60000);
  WriteTextFile(dir.File("job.json"), JobFor(c, 1, 16).dump(2));
  auto variant = [&](const std::string& name, const json& cfg) {
    const std::string d = dir.File(name);
    EXPECT_EQ(coord::testing::RunCommand({"cp", "-a", good, d}).exit_code, 0);
    WriteTextFile(d + "/config.json", cfg.dump(2));
    return d;
  };
  json cfg = Qwen2Config();
  cfg["model_type"] = "mistral";
  ExpectRefused(dir, variant("mistral", cfg), "model_type: \"mistral\" is not supported");
  cfg = Qwen2Config();
  cfg["architectures"] = {"Qwen2ForSequenceClassification"};
  ExpectRefused(dir, variant("arch", cfg), "Qwen2ForSequenceClassification");
  cfg = Qwen2Config();
  cfg["quantization_config"] = {{"bits", 4}};
  ExpectRefused(dir, variant("key", cfg), "quantization_config: key not supported");
  cfg = Qwen2Config();
  cfg["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  ExpectRefused(dir, variant("yarn", cfg), "rope_scaling: type \"yarn\" is not supported");
  cfg = Qwen2Config();
  cfg["use_sliding_window"] = true;
  ExpectRefused(dir, variant("sliding", cfg), "use_sliding_window");
  cfg = Qwen2Config();
  cfg["hidden_act"] = "gelu";
  ExpectRefused(dir, variant("act", cfg), "hidden_act: \"gelu\"");
  // config.json says F = 160 but the tensors have 176 rows: the job follows config.json.
  cfg = Qwen2Config();
  cfg["intermediate_size"] = 160;
  {
    trainer::GptConfig f = c;
    f.ffn_hidden_size = 160;
    WriteTextFile(dir.File("job.json"), JobFor(f, 1, 16).dump(2));
  }
  ExpectRefused(dir, variant("shapes", cfg),
                "tensor model.layers.0.mlp.gate_proj.weight: expected shape (160, 64), got (176, "
                "64)");
  WriteTextFile(dir.File("job.json"), JobFor(c, 1, 16).dump(2));
  // A shard the index lists is gone.
  const std::string missing = variant("missing", Qwen2Config());
  ASSERT_EQ(std::remove((missing + "/model-00002-of-00005.safetensors").c_str()), 0);
  ExpectRefused(dir, missing, "lists shard model-00002-of-00005.safetensors (for ");
  // A tensor this architecture has no place for.
  const std::string extra = variant("extra", Qwen2Config());
  ASSERT_TRUE(trainer::WriteSafetensors(
                  extra + "/model.safetensors",
                  {{"model.layers.0.self_attn.o_proj.bias", {64}, std::vector<float>(64, 1.0f)}})
                  .ok());
  {
    json index = json::parse(*coord::ReadFile(extra + "/model.safetensors.index.json"));
    index["weight_map"]["model.layers.0.self_attn.o_proj.bias"] = "model.safetensors";
    WriteTextFile(extra + "/model.safetensors.index.json", index.dump());
  }
  ExpectRefused(dir, extra,
                "tensor model.layers.0.self_attn.o_proj.bias is not part of this model");
  // A job with another architecture.
  {
    json job = JobFor(c, 1, 16);
    job["model"]["num_query_groups"] = 4;
    WriteTextFile(dir.File("job.json"), job.dump(2));
  }
  ExpectRefused(dir, good, "model.num_query_groups is 4 in the job config but 2");
  // A TP size that does not divide the query groups.
  WriteTextFile(dir.File("job.json"), JobFor(c, 4, 16).dump(2));
  ExpectRefused(dir, good, "must divide model.num_query_groups (2)");
}

// What tests/fuzz/hf_config_fuzz.cc writes into config.json: values of the wrong type
// (model_type 1 threw out of the reader), numbers past what their field holds (1e300 became
// a float, head_dim x heads overflowed an int, n_embd 2^40 was truncated), nesting deeper
// than any config. Each is an error naming the file and the key.
TEST(HfLlamaTest, MalformedConfigJsonIsAnErrorNamingTheFileAndKey) {
  TempDir dir;
  const std::string path = dir.File("config.json");
  auto read_error = [&](const std::string& text) {
    WriteTextFile(path, text);
    auto c = trainer::ReadHfModelConfig(dir.path());
    EXPECT_FALSE(c.ok()) << text.substr(0, 80);
    const std::string m = c.ok() ? "" : c.status().message();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    return m;
  };
  auto has = [](const std::string& m, const std::string& part) {
    EXPECT_NE(m.find(part), std::string::npos) << m;
  };
  json cfg = Qwen2Config();
  cfg["model_type"] = 1;
  has(read_error(cfg.dump()), "model_type: expected a string, got 1");
  cfg = Qwen2Config();
  cfg["hidden_act"] = {{"a", 1}};
  has(read_error(cfg.dump()), "hidden_act: expected a string");
  cfg = Qwen2Config();
  cfg["rms_norm_eps"] = 1e300;
  has(read_error(cfg.dump()), "rms_norm_eps: expected a number, got 1e+300");
  cfg = Qwen2Config();
  cfg["num_attention_heads"] = 1 << 30;
  cfg["head_dim"] = 1 << 30;
  has(read_error(cfg.dump()), "head_dim");
  has(read_error(std::string(100000, '[') + std::string(100000, ']')), "nested deeper than 64");

  const json gpt2 = {{"model_type", "gpt2"}, {"n_layer", 2},      {"n_embd", 64},
                     {"n_head", 4},          {"n_positions", 32}, {"vocab_size", 100}};
  cfg = gpt2;
  cfg["n_inner"] = "x";
  has(read_error(cfg.dump()), "type must be number");
  cfg = gpt2;
  cfg["n_embd"] = 1ll << 40;
  has(read_error(cfg.dump()), "n_embd: expected an integer, got 1099511627776");
  cfg = gpt2;
  cfg["resid_pdrop"] = 1e300;
  has(read_error(cfg.dump()), "resid_pdrop: 1e+300 is out of range");
  cfg = gpt2;
  cfg["activation_function"] = 7;
  has(read_error(cfg.dump()), "type must be string");
}

// model.safetensors.index.json of a sharded checkpoint: a weight_map entry of the wrong
// type or naming no file, 1e400, nesting without end and bytes that are not UTF-8 are
// errors naming the index and the entry (its tensor name quoted: it holds dots).
TEST(HfLlamaTest, MalformedShardIndexIsAnErrorNamingTheFileAndEntry) {
  TempDir dir;
  ASSERT_TRUE(
      trainer::WriteSafetensors(dir.File("model-1.safetensors"), {{"w", {1}, {0.5f}}}).ok());
  const std::string index = dir.File(trainer::kHfIndexFile);
  WriteTextFile(index,
                R"({"metadata": {"total_size": 4}, "weight_map": {"w": "model-1.safetensors"}})");
  auto good = trainer::HfCheckpoint::Open(dir.path());
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->Names(), std::vector<std::string>{"w"});
  for (const auto& [text, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"weight_map": {"model.embed_tokens.weight": 1e300}})",
            R"(: weight_map["model.embed_tokens.weight"]: expected a shard file name, got number)"},
           {R"({"weight_map": {"w": "../model-1.safetensors"}})",
            R"(: weight_map.w: "../model-1.safetensors" is not a file name)"},
           {R"({"weight_map": ["w"]})", R"(: expected an object with a "weight_map" object)"},
           {R"({"weight_map": {"w": 1e400}})", ":1:22: invalid JSON: the number 1e400"},
           {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
           {"{\"weight_map\": {\"w\xff\": \"model-1.safetensors\"}}",
            ":1:19: invalid JSON: invalid string: ill-formed UTF-8 byte"},
       }) {
    WriteTextFile(index, text);
    auto c = trainer::HfCheckpoint::Open(dir.path());
    ASSERT_FALSE(c.ok()) << text.substr(0, 80);
    EXPECT_NE(c.status().message().find(index + says), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace gpt_rank::cli
