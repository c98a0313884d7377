// Model-parallel re-sharding at load (see tp_checkpoint.h).
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

GptParamLayout LayoutOf(const GptConfig& model, const ModelLayout& l) {
  return GptParamLayout(WithTp(model, l.tp), l.tp, l.tp_rank,
                        ModelPart::PipelineStage(model.num_layers, l.pp, l.vpp, l.pp_rank));
}

// The saved shards of one pipeline stage: one layout and one loaded checkpoint per
// tensor-parallel rank.
struct SavedStage {
  std::vector<GptParamLayout> layouts;
  std::vector<LoadedCheckpoint> shards;
};

// dst (layout `to`) from the saved stages, tensor by tensor: each comes from the first
// stage that holds it (wte from the first stage, whose copy the last stage keeps
// equal). Rows of the embedding past the smaller padding are zero (never used).
void Reshard(const GptParamLayout& to, const std::vector<SavedStage>& from,
             std::vector<float> LoadedCheckpoint::*member, float* dst) {
  for (const ParamTensorInfo& t : to.tensors()) {
    const SavedStage* stage = nullptr;
    int k = -1;
    for (const SavedStage& s : from) {
      if (s.layouts.empty() || (k = s.layouts[0].LocalIndex(t.global_index)) < 0) continue;
      stage = &s;
      break;
    }
    if (stage == nullptr) continue;  // unreachable: every tensor is in some stage
    const ParamTensorInfo& s0 = stage->layouts[0].tensors()[static_cast<size_t>(k)];
    const size_t cols = t.full_shape.size() == 2 ? static_cast<size_t>(t.full_shape[1]) : 1;
    const size_t saved_rows = static_cast<size_t>(s0.full_shape[0]);
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < static_cast<long long>(t.numel); ++i) {
      const size_t full = to.ToFullIndex(t, static_cast<size_t>(i));
      if (full / cols >= saved_rows) {
        dst[t.offset + i] = 0.0f;
        continue;
      }
      int rank = 0;
      size_t local = 0;
      stage->layouts[0].Locate(s0, full, &rank, &local);
      const size_t r = static_cast<size_t>(rank);
      const ParamTensorInfo& sr = stage->layouts[r].tensors()[static_cast<size_t>(k)];
      dst[t.offset + i] = (stage->shards[r].*member)[sr.offset + local];
    }
  }
}

std::string Describe(int tp, int pp, int vpp) {
  std::string out = "tensor parallel " + std::to_string(tp);
  if (pp > 1) out += ", " + std::to_string(pp) + " pipeline stages";
  if (vpp > 1) out += " x " + std::to_string(vpp) + " virtual chunks";
  return out;
}

}  // namespace

coord::StatusOr<LoadedCheckpoint> LoadIterationForLayout(const std::string& iter_dir,
                                                         const GptConfig& model,
                                                         const ModelLayout& layout,
                                                         const OptimizerRange& optimizer) {
  const GptParamLayout mine = LayoutOf(model, layout);
  // The first shard's state says how the iteration was saved (its tensors are not read
  // for that).
  ASSIGN_OR_RETURN(const TrainState first, LoadFirstShardState(iter_dir));
  const ModelLayout saved_as{first.tensor_model_parallel_size, 0,
                             first.pipeline_model_parallel_size, 0,
                             first.virtual_pipeline_model_parallel_size};
  auto stamp = [&](LoadedCheckpoint* out) {
    out->state.tensor_model_parallel_size = layout.tp;
    out->state.pipeline_model_parallel_size = layout.pp;
    out->state.virtual_pipeline_model_parallel_size = layout.vpp;
  };
  if (saved_as.tp == layout.tp && saved_as.pp == layout.pp && saved_as.vpp == layout.vpp) {
    ASSIGN_OR_RETURN(LoadedCheckpoint out,
                     LoadCheckpoint(iter_dir, mine.num_params(), optimizer,
                                    ModelShardId(layout.tp_rank, layout.pp_rank, layout.pp)));
    stamp(&out);
    return out;
  }
  const GptConfig saved_model = WithTp(model, saved_as.tp);
  if (saved_model.num_attention_heads % saved_as.tp != 0 ||
      saved_model.padded_vocab_size() % saved_as.tp != 0 ||
      saved_model.num_layers % (saved_as.pp * saved_as.vpp) != 0) {
    return coord::FailedPrecondition(iter_dir + ": saved with " +
                                     Describe(saved_as.tp, saved_as.pp, saved_as.vpp) +
                                     ", which does not divide this model's heads, vocabulary or "
                                     "layers: a different model?");
  }
  // Only the saved stages that hold some tensor of this rank are read.
  std::vector<SavedStage> stages(static_cast<size_t>(saved_as.pp));
  for (int p = 0; p < saved_as.pp; ++p) {
    const GptParamLayout probe =
        LayoutOf(model, ModelLayout{saved_as.tp, 0, saved_as.pp, p, saved_as.vpp});
    const bool needed = std::any_of(mine.tensors().begin(), mine.tensors().end(),
                                    [&](const ParamTensorInfo& t) {
                                      return probe.LocalIndex(t.global_index) >= 0;
                                    });
    if (!needed) continue;
    SavedStage& stage = stages[static_cast<size_t>(p)];
    for (int r = 0; r < saved_as.tp; ++r) {
      stage.layouts.push_back(
          LayoutOf(model, ModelLayout{saved_as.tp, r, saved_as.pp, p, saved_as.vpp}));
      const ModelShardId id(r, p, saved_as.pp);
      auto shard = LoadCheckpoint(iter_dir, stage.layouts.back().num_params(),
                                  OptimizerRange{0, static_cast<size_t>(-1), optimizer.load}, id);
      if (!shard.ok()) {
        return shard.status().WithContext("model-parallel shard " + MpRankDirName(id) + " of " +
                                          Describe(saved_as.tp, saved_as.pp, saved_as.vpp));
      }
      stage.shards.push_back(std::move(*shard));
    }
  }
  LoadedCheckpoint out;
  out.state = first;
  out.path = iter_dir;
  for (const SavedStage& s : stages) {
    if (!s.shards.empty()) out.saved_dp_shards = std::max(out.saved_dp_shards, s.shards[0].saved_dp_shards);
  }
  auto gather = [&](std::vector<float> LoadedCheckpoint::*member, std::vector<float>* dst) {
    dst->assign(mine.num_params(), 0.0f);
    Reshard(mine, stages, member, dst->data());
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
  stamp(&out);
  const bool tp_only = saved_as.pp == 1 && layout.pp == 1 && saved_as.vpp == 1 && layout.vpp == 1;
  out.warnings.push_back(iter_dir + ": saved with " +
                         Describe(saved_as.tp, saved_as.pp, saved_as.vpp) + ", re-sharded for " +
                         (tp_only ? std::to_string(layout.tp)
                                  : Describe(layout.tp, layout.pp, layout.vpp)));
  return out;
}

coord::Status SaveTensorParallelCheckpoint(const std::string& save_dir, TrainState state,
                                           const GptConfig& model, const float* whole_params) {
  const int tp = model.tensor_model_parallel_size;
  RETURN_IF_ERROR(CheckTensorParallel(model, tp));
  state.tensor_model_parallel_size = tp;
  state.pipeline_model_parallel_size = 1;
  state.virtual_pipeline_model_parallel_size = 1;
  state.vocab_size = model.vocab_size;
  const GptParamLayout whole(model);
  RETURN_IF_ERROR(BeginShardedSave(save_dir, state.iteration));
  coord::Status st;
  for (int r = 0; r < tp && st.ok(); ++r) {
    const GptParamLayout shard(model, tp, r);
    const size_t n = shard.num_params();
    std::vector<float> params(n), zeros(n, 0.0f);
    for (const ParamTensorInfo& t : shard.tensors()) {
      const ParamTensorInfo& w =
          whole.tensors()[static_cast<size_t>(whole.LocalIndex(t.global_index))];
      for (size_t i = 0; i < t.numel; ++i) {
        params[t.offset + i] = whole_params[w.offset + shard.ToFullIndex(t, i)];
      }
    }
    const ModelShardId id(r);
    auto optimizer = WriteOptimizerShard(save_dir, state.iteration, 0, zeros.data(), zeros.data(),
                                         n, id);
    if (!optimizer.ok()) {
      st = optimizer.status();
      break;
    }
    auto files = WriteShardedModelFiles(save_dir, state, params.data(), n, id);
    if (!files.ok()) {
      st = files.status();
      break;
    }
    const std::string name = OptimizerShardFileName(0);
    files->push_back({name, optimizer->size, optimizer->xxh64});
    st = WriteShardManifest(save_dir, state, id, n, *files, {{name, 0, n}});
  }
  if (st.ok()) st = InstallShardedSave(save_dir, state, tp, 1);
  if (!st.ok()) AbortShardedSave(save_dir, state.iteration);
  return st;
}

coord::StatusOr<LoadedCheckpoint> LoadCheckpointForLayout(const std::string& load_dir,
                                                          const GptConfig& model,
                                                          const ModelLayout& layout,
                                                          const OptimizerRange& optimizer) {
  return LoadLatestWith(load_dir, [&](const std::string& iter_dir) {
    return LoadIterationForLayout(iter_dir, model, layout, optimizer);
  });
}

}  // namespace trainer
