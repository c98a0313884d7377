// DeepSpeed's blocks in the job spec (deepspeed_config.cc) and the parallel layout
// checks: zero_optimization with DeepSpeed's defaults, its deprecated and misspelled
// names, offload, activation_checkpointing, Megatron's aliases, and every refusal
// (TP vs heads / world / node, ZeRO-3 with PP, nvme, unknown zero keys).
#include <gtest/gtest.h>

#include "trainer/train/trainer_config.h"

namespace gpt_rank::train {
namespace {

using json = nlohmann::json;

json MinimalJob() {
  return json::parse(R"({
    "model": {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
              "seq_length": 32, "max_position_embeddings": 32},
    "data": {"data_path": "/d/prefix", "vocab_file": "v.json", "merge_file": "m.txt"},
    "training": {"micro_batch_size": 1, "train_iters": 10, "lr": 1e-3}
  })");
}

coord::StatusOr<TrainerConfigResult> Parse(const json& j, int world = 1, int local = 0) {
  return ParseTrainerConfig(j.dump(), "job.json", {}, world, local);
}

std::string Errors(const json& j, int world = 1, int local = 0) {
  auto r = Parse(j, world, local);
  EXPECT_FALSE(r.ok()) << j.dump();
  return r.ok() ? "" : r.status().message();
}

bool Has(const std::vector<std::string>& lines, const std::string& text) {
  for (const std::string& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(ZeroConfigTest, DeepSpeedDefaults) {
  json j = MinimalJob();
  j["zero_optimization"] = {{"stage", 2}};
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ZeroConfig& z = r->config.parallel.zero;
  EXPECT_EQ(z.stage, 2);
  EXPECT_EQ(z.reduce_bucket_size, 500000000);
  EXPECT_EQ(z.allgather_bucket_size, 500000000);
  EXPECT_FALSE(z.overlap_comm);  // DeepSpeed: true only for stage 3
  EXPECT_TRUE(z.contiguous_gradients);
  EXPECT_TRUE(z.reduce_scatter);
  EXPECT_TRUE(z.allgather_partitions);
  EXPECT_FALSE(z.round_robin_gradients);
  EXPECT_EQ(z.stage3_prefetch_bucket_size, 50000000);
  EXPECT_EQ(z.stage3_max_live_parameters, 1000000000);
  EXPECT_EQ(z.stage3_max_reuse_distance, 1000000000);
  EXPECT_EQ(z.stage3_param_persistence_threshold, 100000);
  EXPECT_EQ(z.offload_optimizer.device, "none");
  EXPECT_EQ(z.offload_optimizer.buffer_count, 4);
  EXPECT_EQ(z.offload_param.buffer_count, 5);
  EXPECT_FALSE(z.offload_param.pin_memory);
  j["zero_optimization"]["stage"] = 3;
  EXPECT_TRUE(Parse(j)->config.parallel.zero.overlap_comm);
}

TEST(ZeroConfigTest, EveryKeyIsRead) {
  json j = MinimalJob();
  j["zero_optimization"] = json::parse(R"({
    "stage": 3, "reduce_bucket_size": 3e6, "allgather_bucket_size": 2e8, "overlap_comm": false,
    "contiguous_gradients": false, "reduce_scatter": false, "allgather_partitions": false,
    "round_robin_gradients": true, "stage3_prefetch_bucket_size": 200000,
    "stage3_max_live_parameters": 6e6, "stage3_max_reuse_distance": 1e8,
    "stage3_param_persistence_threshold": 1e4, "stage3_gather_16bit_weights_on_model_save": true,
    "offload_optimizer": {"device": "cpu", "pin_memory": true, "buffer_count": 8, "fast_init": true},
    "offload_param": {"device": "cpu", "pin_memory": true, "max_in_cpu": 1e8}})");
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ParallelConfig& pc = r->config.parallel;
  const ZeroConfig& z = pc.zero;
  EXPECT_EQ(pc.zero_stage, 3);
  EXPECT_TRUE(pc.cpu_optimizer);
  EXPECT_EQ(z.reduce_bucket_size, 3000000);
  EXPECT_EQ(z.allgather_bucket_size, 200000000);
  EXPECT_FALSE(z.overlap_comm);
  EXPECT_FALSE(z.contiguous_gradients);
  EXPECT_FALSE(z.reduce_scatter);
  EXPECT_FALSE(z.allgather_partitions);
  EXPECT_TRUE(z.round_robin_gradients);
  EXPECT_EQ(z.stage3_prefetch_bucket_size, 200000);
  EXPECT_EQ(z.stage3_max_live_parameters, 6000000);
  EXPECT_EQ(z.stage3_max_reuse_distance, 100000000);
  EXPECT_EQ(z.stage3_param_persistence_threshold, 10000);
  EXPECT_TRUE(z.stage3_gather_16bit_weights_on_model_save);
  EXPECT_TRUE(z.offload_optimizer.cpu());
  EXPECT_TRUE(z.offload_optimizer.pin_memory);
  EXPECT_EQ(z.offload_optimizer.buffer_count, 8);
  EXPECT_TRUE(z.offload_optimizer.fast_init);
  EXPECT_TRUE(z.offload_param.cpu());
  EXPECT_EQ(z.offload_param.max_in_cpu, 100000000);
  EXPECT_TRUE(r->warnings.empty());
}

// DeepSpeed issue 912's ZeRO-3 block, as DeepSpeedExamples wrote it.
TEST(ZeroConfigTest, DeprecatedAndMisspelledNamesWarnAndApply) {
  json j = MinimalJob();
  j["zero_optimization"] = json::parse(R"({
    "stage": 3, "cpu_offload": true, "cpu_offload_params": true,
    "cpu_offload_use_pin_memory": true, "stage3_param_persitance_threshold": 1e5,
    "stage3_gather_fp16_weights_on_model_save": true, "sub_group_size": 1e6})");
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ZeroConfig& z = r->config.parallel.zero;
  EXPECT_TRUE(z.offload_optimizer.cpu());
  EXPECT_TRUE(z.offload_param.cpu());
  EXPECT_TRUE(z.offload_optimizer.pin_memory);
  EXPECT_TRUE(z.offload_param.pin_memory);
  EXPECT_TRUE(z.stage3_gather_16bit_weights_on_model_save);
  EXPECT_TRUE(r->config.parallel.cpu_optimizer);
  const auto& w = r->warnings;
  EXPECT_TRUE(Has(w, "job.json: zero_optimization.cpu_offload: deprecated DeepSpeed name; read "
                     "as offload_optimizer.device \"cpu\""));
  EXPECT_TRUE(Has(w, "job.json: zero_optimization.cpu_offload_params: deprecated DeepSpeed name; "
                     "read as offload_param.device \"cpu\""));
  EXPECT_TRUE(Has(w, "job.json: zero_optimization.cpu_offload_use_pin_memory: deprecated"));
  EXPECT_TRUE(Has(w, "job.json: zero_optimization.stage3_param_persitance_threshold: misspelled "
                     "key (DeepSpeedExamples' ZeRO-3 configs); read as "
                     "stage3_param_persistence_threshold"));
  EXPECT_TRUE(Has(w, "zero_optimization.stage3_gather_fp16_weights_on_model_save: deprecated"));
  EXPECT_TRUE(Has(w, "job.json: zero_optimization.sub_group_size: a DeepSpeed key with no effect "
                     "in gpt-rank; ignored"));
  // The misspelled key's value is used.
  j["zero_optimization"]["stage3_param_persitance_threshold"] = 4096;
  EXPECT_EQ(Parse(j)->config.parallel.zero.stage3_param_persistence_threshold, 4096);
}

TEST(ZeroConfigTest, BadZeroInputIsNamed) {
  json j = MinimalJob();
  j["zero_optimization"] = {{"stage", 2}, {"reduce_bucket_sise", 5e8}, {"overlap_com", true}};
  std::string m = Errors(j);
  EXPECT_NE(m.find("job.json: zero_optimization.reduce_bucket_sise: unknown key; did you mean "
                   "reduce_bucket_size?"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("job.json: zero_optimization.overlap_com: unknown key; did you mean "
                   "overlap_comm?"),
            std::string::npos)
      << m;
  j["zero_optimization"] = {{"stage", 3}, {"offload_param", {{"device", "nvme"}}}};
  m = Errors(j);
  EXPECT_NE(m.find("job.json: zero_optimization.offload_param.device: \"nvme\" (ZeRO-Infinity's "
                   "NVMe swapping) is not supported by gpt-rank; use \"cpu\""),
            std::string::npos)
      << m;
  j["zero_optimization"] = {{"stage", 2}, {"offload_optimizer", {{"device", "gpu"}}}};
  EXPECT_NE(Errors(j).find("offload_optimizer.device: expected \"none\" or \"cpu\", got \"gpu\""),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 2}, {"offload_optimizer", {{"devise", "cpu"}}}};
  EXPECT_NE(Errors(j).find("zero_optimization.offload_optimizer.devise: unknown key; did you "
                           "mean device?"),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 2}, {"offload_param", {{"device", "cpu"}}}};
  EXPECT_NE(Errors(j).find("zero_optimization.offload_param: needs ZeRO stage 3"),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 4}};
  EXPECT_NE(Errors(j).find("zero_optimization.stage: expected 0, 1, 2 or 3, got 4"),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 2}, {"reduce_bucket_size", 1.5}};
  EXPECT_NE(Errors(j).find("zero_optimization.reduce_bucket_size: expected a non-negative whole "
                           "number of elements"),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 2}};
  j["parallel"] = {{"zero_stage", 1}};
  EXPECT_NE(Errors(j).find("zero_optimization.stage: 2 disagrees with parallel.zero_stage = 1"),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 2}, {"offload_optimizer", {{"device", "none"}}}};
  j["parallel"] = {{"cpu_optimizer", true}};
  EXPECT_NE(Errors(j).find("parallel.cpu_optimizer: true contradicts"), std::string::npos);
}

TEST(ZeroConfigTest, MegatronCpuOptimizerAndZeroStageKeys) {
  json j = MinimalJob();
  j["parallel"] = {{"zero_stage", 2}, {"cpu_optimizer", true}};
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.parallel.zero.stage, 2);
  EXPECT_TRUE(r->config.parallel.cpu_optimizer);
  EXPECT_TRUE(r->config.parallel.zero.offload_optimizer.cpu());
}

TEST(ActivationCheckpointingTest, BlockAndMegatronDeepSpeedFlags) {
  json j = MinimalJob();
  j["training"]["checkpoint_activations"] = true;
  j["activation_checkpointing"] = {{"partition_activations", true},
                                   {"contiguous_memory_optimization", true},
                                   {"number_checkpoints", 4},
                                   {"synchronize_checkpoint_boundary", true},
                                   {"profile", true}};
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ActivationCheckpointingConfig& a = r->config.activation_checkpointing;
  EXPECT_TRUE(a.partition_activations);
  EXPECT_FALSE(a.cpu_checkpointing);
  EXPECT_TRUE(a.contiguous_memory_optimization);
  EXPECT_EQ(a.number_checkpoints, 4);
  EXPECT_TRUE(a.synchronize_checkpoint_boundary);
  EXPECT_TRUE(a.profile);
  j.erase("activation_checkpointing");
  j["model"]["checkpoint_in_cpu"] = true;
  j["model"]["partition_activations"] = true;
  r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->config.activation_checkpointing.cpu_checkpointing);
  EXPECT_TRUE(r->config.activation_checkpointing.partition_activations);
  j["training"]["checkpoint_activations"] = false;
  r = Parse(j);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has(r->warnings, "has no effect without training.checkpoint_activations"));
  j = MinimalJob();
  j["activation_checkpointing"] = {{"cpu_checkpoint", true}};
  EXPECT_NE(Errors(j).find("activation_checkpointing.cpu_checkpoint: unknown key; did you mean "
                           "cpu_checkpointing?"),
            std::string::npos);
}

TEST(ParallelLayoutTest, ModelParallelSizeIsAnAlias) {
  json j = MinimalJob();
  j["parallel"] = {{"model_parallel_size", 2}};
  auto r = Parse(j, 4);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.parallel.tensor_model_parallel_size, 2);
  EXPECT_EQ(r->config.parallel.data_parallel_size(), 2);
  j["parallel"]["tensor_model_parallel_size"] = 4;
  EXPECT_NE(Errors(j, 4).find("parallel.model_parallel_size: 2 disagrees with "
                              "parallel.tensor_model_parallel_size = 4"),
            std::string::npos);
}

TEST(ParallelLayoutTest, TensorParallelMustDivideHeadsWorldAndNode) {
  json j = MinimalJob();  // 4 heads
  j["parallel"] = {{"tensor_model_parallel_size", 3}};
  EXPECT_NE(Errors(j, 3).find("job.json: parallel.tensor_model_parallel_size: 3 does not divide "
                              "model.num_attention_heads (4)"),
            std::string::npos);
  j["parallel"] = {{"tensor_model_parallel_size", 2}};
  EXPECT_NE(Errors(j, 3).find("job.json: parallel.tensor_model_parallel_size: world size 3 is not "
                              "a multiple of tensor (2) x pipeline (1) parallel"),
            std::string::npos);
  // 4 ranks per node of 3: TP 2 would put one group across two nodes.
  j["parallel"] = {{"tensor_model_parallel_size", 2}};
  j["training"]["global_batch_size"] = 3;
  EXPECT_NE(Errors(j, 6, 3).find("parallel.tensor_model_parallel_size: 2 does not divide the 3 "
                                 "ranks of a node (LOCAL_WORLD_SIZE)"),
            std::string::npos);
  // TP 4 over nodes of 2: allowed, with a warning naming the slow link.
  j["parallel"] = {{"tensor_model_parallel_size", 4}};
  j["training"]["global_batch_size"] = 2;
  auto r = Parse(j, 8, 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Has(r->warnings, "parallel.tensor_model_parallel_size: 4 is larger than the 2 ranks "
                               "of a node: each TP group spans 2 nodes"));
  EXPECT_TRUE(Has(r->warnings, "instead of NVLink"));
  // Inside a node: no warning.
  r = Parse(j, 8, 4);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->warnings.empty());
}

TEST(ParallelLayoutTest, Zero3WithPipelineParallelIsRefused) {
  json j = MinimalJob();
  j["parallel"] = {{"pipeline_model_parallel_size", 2}};
  j["zero_optimization"] = {{"stage", 3}};
  EXPECT_NE(Errors(j, 2).find("job.json: zero_optimization.stage: 3 cannot be combined with "
                              "pipeline parallel"),
            std::string::npos);
  j["zero_optimization"] = {{"stage", 1}};
  EXPECT_TRUE(Parse(j, 2).ok());
}

TEST(ParallelLayoutTest, ShippedConfigsParseOnTheirCluster) {
  struct Shipped {
    const char* name;
    int world, local;
  };
  for (const Shipped& c : {Shipped{"10B.json", 64, 8}, Shipped{"100B.json", 64, 8},
                           Shipped{"demo.json", 2, 1}, Shipped{"tiny.json", 1, 1},
                           Shipped{"tiny-dp.json", 2, 2}, Shipped{"gpt2-small-cpu.json", 1, 1}}) {
    const char* name = c.name;
    const std::string path = std::string(COORD_SOURCE_DIR) + "/configs/" + name;
    auto r = LoadTrainerConfig(path, {}, c.world, c.local);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    EXPECT_TRUE(r->warnings.empty()) << name << ": " << r->warnings[0];
  }
  auto big = LoadTrainerConfig(std::string(COORD_SOURCE_DIR) + "/configs/100B.json", {}, 64, 8);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->config.parallel.tensor_model_parallel_size, 8);
  EXPECT_EQ(big->config.parallel.zero_stage, 3);
  EXPECT_TRUE(big->config.parallel.cpu_optimizer);
  EXPECT_EQ(big->config.training.micro_batch_size, 6);
}

}  // namespace
}  // namespace gpt_rank::train
