// Tensor-parallel checkpoints: shards written by the sharded-save steps as gpt-rank
// writes them (one mp_rank_XX per shard), then loaded into other layouts. The
// reference is independent of the re-sharding code: Megatron init is keyed on each
// element's index in the whole tensor, so InitMegatronParams on layout (tp, r) is
// rank r's shard of the one-rank weights. Loading must give exactly that.
#include "trainer/checkpoint/tp_checkpoint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/temp_dir.h"
#include "trainer/checkpoint/checkpoint_model.h"
#include "trainer/model/gpt.h"
#include "trainer/model/gpt_params.h"

namespace trainer {
namespace {

using coord::testing::TempDir;

GptConfig Model(int tp) {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.seq_length = 8;
  c.max_position_embeddings = 8;
  c.vocab_size = 1100;  // padded to 1152 for tp 1, 1280 for tp 2, 1536 for tp 4
  c.make_vocab_size_divisible_by = 128;
  c.tensor_model_parallel_size = tp;
  return c;
}

std::vector<float> Init(int tp, int rank, uint64_t seed) {
  const GptParamLayout layout(Model(tp), tp, rank);
  std::vector<float> p(layout.num_params());
  InitMegatronParams(Model(tp), layout, seed, p.data());
  return p;
}

// Writes iteration 10 with tp shards: params = Init(seed 1), m = Init(seed 2), v = Init(3).
void SaveTp(const std::string& dir, int tp) {
  TrainState s;
  s.iteration = 10;
  s.tensor_model_parallel_size = tp;
  s.vocab_size = 1100;
  // What generate / export-hf read the model from (the vocabulary is in the state).
  s.config_json = R"({"model": {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
      "seq_length": 8, "max_position_embeddings": 8, "make_vocab_size_divisible_by": 128},
      "parallel": {"tensor_model_parallel_size": )" + std::to_string(tp) + "}}";
  ASSERT_TRUE(BeginShardedSave(dir, 10).ok());
  for (int r = 0; r < tp; ++r) {
    const auto p = Init(tp, r, 1), m = Init(tp, r, 2), v = Init(tp, r, 3);
    auto opt = WriteOptimizerShard(dir, 10, 0, m.data(), v.data(), m.size(), r);
    ASSERT_TRUE(opt.ok()) << opt.status().ToString();
    auto files = WriteShardedModelFiles(dir, s, p.data(), p.size(), r);
    ASSERT_TRUE(files.ok()) << files.status().ToString();
    files->push_back(*opt);
    ASSERT_TRUE(WriteShardManifest(dir, s, r, p.size(), *files,
                                   {{OptimizerShardFileName(0), 0, p.size()}})
                    .ok());
  }
  ASSERT_TRUE(InstallShardedSave(dir, s, tp).ok());
}

// Every element of every tensor, except embedding rows past the real vocabulary.
void ExpectShardEquals(const std::vector<float>& got, int tp, int rank, uint64_t seed,
                       const std::string& what) {
  const GptParamLayout layout(Model(tp), tp, rank);
  const std::vector<float> want = Init(tp, rank, seed);
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t compared = 0;
  for (const ParamTensorInfo& t : layout.tensors()) {
    for (size_t i = 0; i < t.numel; ++i) {
      if (t.name == "wte") {
        const size_t row = layout.ToFullIndex(t, i) / static_cast<size_t>(t.shape[1]);
        if (row >= 1100) continue;
      }
      ASSERT_EQ(got[t.offset + i], want[t.offset + i]) << what << " " << t.name << "[" << i << "]";
      ++compared;
    }
  }
  EXPECT_GT(compared, 4000u) << what;  // every layer tensor at least
}

TEST(TpCheckpointTest, TwoShardsLoadAsOneAndAsFourBitwise) {
  TempDir dir;
  SaveTp(dir.path(), 2);
  EXPECT_TRUE(coord::IsDirectory(dir.File("iter_0000010/mp_rank_01")));
  // The same layout reads its own shard.
  auto same = LoadCheckpointForLayout(dir.path(), Model(2), 2, 1, OptimizerRange{});
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->params, Init(2, 1, 1));
  // One shard: the whole model.
  auto one = LoadCheckpointForLayout(dir.path(), Model(1), 1, 0, OptimizerRange{});
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ExpectShardEquals(one->params, 1, 0, 1, "tp 2 -> 1 params");
  ExpectShardEquals(one->adam_m, 1, 0, 2, "tp 2 -> 1 adam m");
  ExpectShardEquals(one->adam_v, 1, 0, 3, "tp 2 -> 1 adam v");
  ASSERT_FALSE(one->warnings.empty());
  EXPECT_NE(one->warnings.back().find("re-sharded for 1"), std::string::npos);
  for (int r = 0; r < 4; ++r) {
    auto four = LoadCheckpointForLayout(dir.path(), Model(4), 4, r, OptimizerRange{});
    ASSERT_TRUE(four.ok()) << four.status().ToString();
    ExpectShardEquals(four->params, 4, r, 1, "tp 2 -> 4 rank " + std::to_string(r));
  }
}

// generate and export-hf: a tensor-parallel checkpoint comes back as the whole model,
// with the config that describes it (tp 1, the real vocabulary).
TEST(TpCheckpointTest, InferenceLoadsTheWholeModelFromShards) {
  TempDir dir;
  SaveTp(dir.path(), 4);
  auto ckpt = LoadCheckpointForInference(dir.path(), -1);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->state.tensor_model_parallel_size, 1);
  ExpectShardEquals(ckpt->params, 1, 0, 1, "tp 4 -> inference");
  auto model = CheckpointModelConfig(*ckpt, "", "", nullptr, nullptr);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->vocab_size, 1100);
  EXPECT_EQ(model->padded_vocab_size(), 1152);
  EXPECT_EQ(GptParamLayout(*model).num_params(), ckpt->params.size());
}

TEST(TpCheckpointTest, AnOptimizerRangeIsCutFromTheReshardedState) {
  TempDir dir;
  SaveTp(dir.path(), 4);
  auto part = LoadCheckpointForLayout(dir.path(), Model(2), 2, 0, OptimizerRange{100, 900, true});
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  const auto m = Init(2, 0, 2);
  ASSERT_EQ(part->adam_m.size(), 800u);
  for (size_t i = 0; i < 800; ++i) ASSERT_EQ(part->adam_m[i], m[100 + i]) << i;
  EXPECT_EQ(part->optim_begin, 100u);
}

TEST(TpCheckpointTest, AMissingShardIsNamed) {
  TempDir dir;
  SaveTp(dir.path(), 2);
  ASSERT_TRUE(coord::RemoveTree(dir.File("iter_0000010/mp_rank_01")).ok());
  auto one = LoadCheckpointForLayout(dir.path(), Model(1), 1, 0, OptimizerRange{});
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.status().message().find("mp_rank_01"), std::string::npos)
      << one.status().message();
}

TEST(TpCheckpointTest, InstallRefusesAnIterationWithAShardMissing) {
  TempDir dir;
  TrainState s;
  s.iteration = 5;
  s.tensor_model_parallel_size = 2;
  s.config_json = "{}";
  ASSERT_TRUE(BeginShardedSave(dir.path(), 5).ok());
  const auto p = Init(2, 0, 1);
  auto files = WriteShardedModelFiles(dir.path(), s, p.data(), p.size(), 0);
  ASSERT_TRUE(files.ok());
  ASSERT_TRUE(WriteShardManifest(dir.path(), s, 0, p.size(), *files, {}).ok());
  coord::Status st = InstallShardedSave(dir.path(), s, 2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("tensor-parallel shard 1 of 2"), std::string::npos) << st.message();
  EXPECT_FALSE(HasCheckpoint(dir.path()));
}

}  // namespace
}  // namespace trainer
