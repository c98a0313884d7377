// Tensor-parallel re-sharding at load (see tp_checkpoint.h).
#include "trainer/checkpoint/tp_checkpoint.h"

#include <algorithm>
#include <string>
#include <vector>

#include "trainer/model/gpt_params.h"

namespace trainer {
namespace {

GptConfig WithTp(GptConfig c, int tp) {
  c.tensor_model_parallel_size = tp;  // decides the vocabulary padding
  return c;
}

// dst (layout `to`) from the saved shards (layouts `from[r]`), tensor by tensor. Rows
// of the embedding past the smaller padding are zero (they are never used).
void Reshard(const GptParamLayout& to, const std::vector<GptParamLayout>& from,
             const std::vector<const float*>& src, float* dst) {
  const auto& to_tensors = to.tensors();
  for (size_t k = 0; k < to_tensors.size(); ++k) {
    const ParamTensorInfo& t = to_tensors[k];
    const ParamTensorInfo& s = from[0].tensors()[k];
    const size_t cols = t.full_shape.size() == 2 ? static_cast<size_t>(t.full_shape[1]) : 1;
    const size_t saved_rows = static_cast<size_t>(s.full_shape[0]);
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < static_cast<long long>(t.numel); ++i) {
      const size_t full = to.ToFullIndex(t, static_cast<size_t>(i));
      if (full / cols >= saved_rows) {
        dst[t.offset + i] = 0.0f;
        continue;
      }
      int rank = 0;
      size_t local = 0;
      from[0].Locate(s, full, &rank, &local);
      dst[t.offset + i] = src[static_cast<size_t>(rank)][from[static_cast<size_t>(rank)].tensors()[k].offset + local];
    }
  }
}

}  // namespace

coord::StatusOr<LoadedCheckpoint> LoadIterationForLayout(const std::string& iter_dir,
                                                         const GptConfig& model, int tp,
                                                         int tp_rank,
                                                         const OptimizerRange& optimizer) {
  const GptParamLayout mine(WithTp(model, tp), tp, tp_rank);
  // mp_rank_00's state says how it was saved (its tensors are not read for that).
  ASSIGN_OR_RETURN(const TrainState first, LoadCheckpointState(iter_dir, 0));
  const int saved_tp = first.tensor_model_parallel_size;
  if (saved_tp == tp) {
    ASSIGN_OR_RETURN(LoadedCheckpoint out,
                     LoadCheckpoint(iter_dir, mine.num_params(), optimizer, tp_rank));
    return out;
  }
  const GptConfig saved_model = WithTp(model, saved_tp);
  if (saved_model.num_attention_heads % saved_tp != 0 ||
      saved_model.padded_vocab_size() % saved_tp != 0) {
    return coord::FailedPrecondition(iter_dir + ": saved with tensor parallel " +
                                     std::to_string(saved_tp) + ", which does not divide this "
                                     "model's heads or vocabulary: a different model?");
  }
  std::vector<GptParamLayout> saved;
  std::vector<LoadedCheckpoint> shards;
  for (int r = 0; r < saved_tp; ++r) {
    saved.emplace_back(saved_model, saved_tp, r);
    auto shard = LoadCheckpoint(iter_dir, saved.back().num_params(),
                                OptimizerRange{0, static_cast<size_t>(-1), optimizer.load}, r);
    if (!shard.ok()) {
      return shard.status().WithContext("tensor-parallel shard " + MpRankDirName(r) + " of " +
                                        std::to_string(saved_tp));
    }
    shards.push_back(std::move(*shard));
  }
  LoadedCheckpoint out;
  out.state = shards[0].state;
  out.path = iter_dir;
  out.saved_dp_shards = shards[0].saved_dp_shards;
  auto gather = [&](std::vector<float> LoadedCheckpoint::*member, std::vector<float>* dst) {
    std::vector<const float*> src;
    for (const LoadedCheckpoint& s : shards) src.push_back((s.*member).data());
    dst->assign(mine.num_params(), 0.0f);
    Reshard(mine, saved, src, dst->data());
  };
  gather(&LoadedCheckpoint::params, &out.params);
  const size_t n = mine.num_params();
  const size_t begin = optimizer.load ? std::min(optimizer.begin, n) : 0;
  const size_t end = optimizer.load ? std::min(optimizer.end, n) : 0;
  out.optim_begin = begin;
  if (optimizer.load) {
    std::vector<float> m, v;
    gather(&LoadedCheckpoint::adam_m, &m);
    gather(&LoadedCheckpoint::adam_v, &v);
    out.adam_m.assign(m.begin() + static_cast<std::ptrdiff_t>(begin),
                      m.begin() + static_cast<std::ptrdiff_t>(end));
    out.adam_v.assign(v.begin() + static_cast<std::ptrdiff_t>(begin),
                      v.begin() + static_cast<std::ptrdiff_t>(end));
  }
  out.state.tensor_model_parallel_size = tp;
  out.warnings.push_back(iter_dir + ": saved with tensor parallel " + std::to_string(saved_tp) +
                         ", re-sharded for " + std::to_string(tp));
  return out;
}

coord::StatusOr<LoadedCheckpoint> LoadCheckpointForLayout(const std::string& load_dir,
                                                          const GptConfig& model, int tp,
                                                          int tp_rank,
                                                          const OptimizerRange& optimizer) {
  return LoadLatestWith(load_dir, [&](const std::string& iter_dir) {
    return LoadIterationForLayout(iter_dir, model, tp, tp_rank, optimizer);
  });
}

}  // namespace trainer
