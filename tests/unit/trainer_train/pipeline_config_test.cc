// The pipeline-parallel keys of the job spec and every refusal they bring: Megatron's
// two spellings of the interleaved schedule's chunks, layers per stage and per chunk,
// micro-batches for 1F1B and for the interleaved schedule, ZeRO-2/3 with PP (as
// DeepSpeed), a world that is not DP x PP x TP, and the default global batch with PP.
#include <gtest/gtest.h>

#include "trainer/train/trainer_config.h"

namespace gpt_rank::train {
namespace {

using json = nlohmann::json;

// 8 layers, micro-batch 1; the tests set pp, vpp, the world and the global batch.
json PipelineJob(int pp, int64_t global_batch) {
  json j = json::parse(R"({
    "model": {"num_layers": 8, "hidden_size": 64, "num_attention_heads": 4,
              "seq_length": 32, "max_position_embeddings": 32},
    "data": {"data_path": "/d/prefix", "vocab_file": "v.json", "merge_file": "m.txt"},
    "training": {"micro_batch_size": 1, "train_iters": 10, "lr": 1e-3}
  })");
  j["parallel"] = {{"pipeline_model_parallel_size", pp}};
  if (global_batch > 0) j["training"]["global_batch_size"] = global_batch;
  return j;
}

coord::StatusOr<TrainerConfigResult> Parse(const json& j, int world) {
  return ParseTrainerConfig(j.dump(), "job.json", {}, world);
}

std::string Errors(const json& j, int world) {
  auto r = Parse(j, world);
  EXPECT_FALSE(r.ok()) << j.dump();
  return r.ok() ? "" : r.status().message();
}

TEST(PipelineConfigTest, VirtualStagesFromEitherMegatronKey) {
  json j = PipelineJob(2, 4);
  auto plain = Parse(j, 2);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->config.parallel.virtual_pipeline_model_parallel_size, 1);
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 2;
  auto direct = Parse(j, 2);
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_EQ(direct->config.parallel.virtual_pipeline_model_parallel_size, 2);
  // Megatron's --num-layers-per-virtual-pipeline-stage: (8 / 2) / 1 = 4 chunks per stage.
  j["parallel"].erase("virtual_pipeline_model_parallel_size");
  j["parallel"]["num_layers_per_virtual_pipeline_stage"] = 1;
  auto derived = Parse(j, 2);
  ASSERT_TRUE(derived.ok()) << derived.status().ToString();
  EXPECT_EQ(derived->config.parallel.virtual_pipeline_model_parallel_size, 4);
  // Both given and agreeing: fine; disagreeing: an error naming both.
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 4;
  EXPECT_TRUE(Parse(j, 2).ok());
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 2;
  EXPECT_NE(Errors(j, 2).find("job.json: parallel.num_layers_per_virtual_pipeline_stage: 1 gives "
                              "4 model chunks per stage ((8 / 2) / 1), but "
                              "parallel.virtual_pipeline_model_parallel_size = 2; keep one of "
                              "them"),
            std::string::npos);
  // 3 layers per chunk do not split a stage's 4.
  j["parallel"].erase("virtual_pipeline_model_parallel_size");
  j["parallel"]["num_layers_per_virtual_pipeline_stage"] = 3;
  EXPECT_NE(Errors(j, 2).find("parallel.num_layers_per_virtual_pipeline_stage: 3 does not divide "
                              "the 4 layers of a pipeline stage"),
            std::string::npos);
}

TEST(PipelineConfigTest, LayersMustSplitEvenlyOverStagesAndChunks) {
  json j = PipelineJob(3, 3);  // 8 layers over 3 stages
  EXPECT_NE(Errors(j, 3).find("job.json: parallel.pipeline_model_parallel_size: 3 does not divide "
                              "model.num_layers (8): every stage holds the same number of whole "
                              "layers"),
            std::string::npos);
  j = PipelineJob(2, 4);  // 8 layers over 2 stages x 3 chunks
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 3;
  EXPECT_NE(Errors(j, 2).find("job.json: parallel.virtual_pipeline_model_parallel_size: "
                              "model.num_layers (8) is not a multiple of pipeline (2) x virtual "
                              "pipeline (3) stages"),
            std::string::npos);
}

TEST(PipelineConfigTest, VirtualStagesNeedPipelineParallel) {
  json j = PipelineJob(1, 4);
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 2;
  EXPECT_NE(Errors(j, 1).find("job.json: parallel.virtual_pipeline_model_parallel_size: 2 needs "
                              "pipeline parallel"),
            std::string::npos);
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 0;
  EXPECT_NE(Errors(j, 1).find("parallel.virtual_pipeline_model_parallel_size: expected a positive "
                              "integer"),
            std::string::npos);
}

TEST(PipelineConfigTest, FewerMicroBatchesThanStagesAreRefused) {
  // pp 4 on 8 ranks: dp 2, so global 4 is 2 micro-batches per DP rank.
  json j = PipelineJob(4, 4);
  const std::string e = Errors(j, 8);
  EXPECT_NE(e.find("job.json: training.global_batch_size: 2 micro-batches per iteration "
                   "(global_batch_size 4 / (micro_batch_size 1 x data parallel 2)) cannot fill 4 "
                   "pipeline stages: Megatron's 1F1B schedule"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("raise global_batch_size to at least 8"), std::string::npos) << e;
  j["training"]["global_batch_size"] = 8;
  auto r = Parse(j, 8);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.num_micro_batches(), 4);
}

TEST(PipelineConfigTest, InterleavedNeedsAMultipleOfStagesMicroBatches) {
  json j = PipelineJob(2, 3);  // 3 micro-batches: fills 2 stages, but not whole groups of 2
  j["parallel"]["virtual_pipeline_model_parallel_size"] = 2;
  const std::string e = Errors(j, 2);
  EXPECT_NE(e.find("job.json: training.global_batch_size: 3 micro-batches per iteration "
                   "(global_batch_size 3 / (micro_batch_size 1 x data parallel 1)) is not a "
                   "multiple of the 2 pipeline stages, which the interleaved schedule needs"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("get_model_chunk_id"), std::string::npos) << e;
  j["training"]["global_batch_size"] = 6;
  EXPECT_TRUE(Parse(j, 2).ok());
  j["parallel"].erase("virtual_pipeline_model_parallel_size");  // plain 1F1B takes 3
  j["training"]["global_batch_size"] = 3;
  EXPECT_TRUE(Parse(j, 2).ok());
}

TEST(PipelineConfigTest, ZeroStage2And3AreRefusedWithPipelineParallel) {
  for (int stage : {2, 3}) {
    json j = PipelineJob(2, 4);
    j["zero_optimization"] = {{"stage", stage}};
    const std::string s = std::to_string(stage);
    EXPECT_NE(Errors(j, 2).find("job.json: zero_optimization.stage: " + s +
                                " cannot be combined with pipeline parallel "
                                "(parallel.pipeline_model_parallel_size = 2), as in DeepSpeed; use "
                                "stage 1 with pipeline parallel"),
              std::string::npos)
        << stage;
  }
  json j = PipelineJob(2, 4);
  j["zero_optimization"] = {{"stage", 1}};
  EXPECT_TRUE(Parse(j, 2).ok());
}

TEST(PipelineConfigTest, WorldMustBeDataTimesPipelineTimesTensor) {
  json j = PipelineJob(4, 8);
  EXPECT_NE(
      Errors(j, 6).find("job.json: parallel.tensor_model_parallel_size: world size 6 is not a "
                        "multiple of tensor (1) x pipeline (4) parallel; start a multiple of "
                        "4 ranks"),
      std::string::npos);
  j["parallel"]["tensor_model_parallel_size"] = 2;
  EXPECT_NE(Errors(j, 12).find("world size 12 is not a multiple of tensor (2) x pipeline (4)"),
            std::string::npos);
  auto r = Parse(j, 16);  // dp 2
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.parallel.data_parallel_size(), 2);
}

TEST(PipelineConfigTest, DefaultGlobalBatchFillsThePipeline) {
  // Megatron's default, one micro-batch per DP rank, would leave 3 of 4 stages idle.
  auto r = Parse(PipelineJob(4, 0), 8);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.training.global_batch_size, 1 * 2 * 4);
  EXPECT_EQ(r->config.num_micro_batches(), 4);
  // Without PP the default stays Megatron's micro x dp.
  auto flat = Parse(PipelineJob(1, 0), 8);
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(flat->config.training.global_batch_size, 8);
  // DeepSpeed's gradient_accumulation_steps, when given, is the micro-batch count.
  json j = PipelineJob(4, 0);
  j["gradient_accumulation_steps"] = 2;
  EXPECT_NE(Errors(j, 8).find("2 micro-batches per iteration"), std::string::npos);
}

}  // namespace
}  // namespace gpt_rank::train
