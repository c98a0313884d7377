// Parameter/activation layouts and the memory plan (see gpt_params.h).
#include "trainer/model/gpt_params.h"

#include <cstdio>
#include <string>

namespace trainer {

namespace {

// The layer's tensor table, in flat order (kLayerSlots): name, decay, init. Which
// slots a config has, their shapes and splits follow in SlotShape.
struct LayerTensorSpec {
  const char* name;
  bool weight_decay;
  ParamInit init;
};

constexpr std::array<LayerTensorSpec, kNumLayerSlots> kLayerSpecs = {{
    {"ln1_weight", false, ParamInit::kOne},
    {"ln1_bias", false, ParamInit::kZero},
    {"qkv_weight", true, ParamInit::kNormal},
    {"qkv_bias", false, ParamInit::kZero},
    {"attn_proj_weight", true, ParamInit::kScaledNormal},
    {"attn_proj_bias", false, ParamInit::kZero},
    {"ln2_weight", false, ParamInit::kOne},
    {"ln2_bias", false, ParamInit::kZero},
    {"fc_weight", true, ParamInit::kNormal},
    {"fc_bias", false, ParamInit::kZero},
    {"fc_proj_weight", true, ParamInit::kScaledNormal},
    {"fc_proj_bias", false, ParamInit::kZero},
}};

// The whole tensor's shape of a slot and how tensor parallel splits it: Megatron's
// ColumnParallelLinear for QKV and fc (grouped QKV as plain rows: whole KV groups per
// rank; SwiGLU's [gate | up] per half), RowParallelLinear for the projections, whose
// biases stay whole.
struct SlotShape {
  std::vector<int> shape;
  TpSplit split;
};

SlotShape ShapeOf(const GptConfig& c, LayerSlot slot) {
  const int C = c.hidden_size, QKV = c.qkv_rows(), F = c.ffn_size(), FC = c.fc_rows();
  const int attn = c.num_attention_heads * c.head_size();
  const TpSplit qkv_split = c.group_query_attention ? TpSplit::kRows : TpSplit::kQkvRows;
  const TpSplit fc_split = c.swiglu ? TpSplit::kGluRows : TpSplit::kRows;
  switch (slot) {
    case kLn1Weight:
    case kLn1Bias:
    case kLn2Weight:
    case kLn2Bias:
    case kAttnProjBias:
    case kFcProjBias:
      return {{C}, TpSplit::kReplicated};
    case kQkvWeight:
      return {{QKV, C}, qkv_split};
    case kQkvBias:
      return {{QKV}, qkv_split};
    case kAttnProjWeight:
      return {{C, attn}, TpSplit::kColumns};
    case kFcWeight:
      return {{FC, C}, fc_split};
    case kFcBias:
      return {{FC}, fc_split};
    case kFcProjWeight:
      return {{C, F}, TpSplit::kColumns};
    case kNumLayerSlots:
      break;
  }
  return {{}, TpSplit::kReplicated};
}

// The shard's shape of a full shape: a vector (1-D) splits like its rows.
std::vector<int> ShardShape(std::vector<int> full, TpSplit split, int tp) {
  if (split == TpSplit::kReplicated) return full;
  if (split == TpSplit::kColumns && full.size() == 2) {
    full[1] /= tp;
  } else {
    full[0] /= tp;
  }
  return full;
}

// Row blocks each split separately: [q | k | v] or [gate | up]; 1 for plain rows.
size_t RowBlocks(TpSplit split) {
  return split == TpSplit::kQkvRows ? 3 : split == TpSplit::kGluRows ? 2 : 1;
}

std::string Problem(const char* key, long long got, const char* want) {
  return std::string("model.") + key + ": expected " + want + ", got " + std::to_string(got);
}

}  // namespace

bool HasLayerSlot(const GptConfig& c, LayerSlot slot) {
  switch (slot) {
    case kLn1Bias:
    case kLn2Bias:
      return !c.rms_norm();
    case kQkvBias:
      return c.qkv_bias();
    case kAttnProjBias:
    case kFcBias:
    case kFcProjBias:
      return c.add_bias_linear;
    case kNumLayerSlots:
      return false;
    default:
      return true;
  }
}

const char* LayerSlotName(LayerSlot slot) { return kLayerSpecs[static_cast<size_t>(slot)].name; }

coord::Status ValidateGptConfig(const GptConfig& c) {
  std::string errors;
  auto add = [&errors](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };
  if (c.num_layers <= 0) add(Problem("num_layers", c.num_layers, "positive integer"));
  if (c.num_layers > kMaxGptLayers) {
    const std::string most = "at most " + std::to_string(kMaxGptLayers) +
                             " (the largest published models have under 200)";
    add(Problem("num_layers", c.num_layers, most.c_str()));
  }
  if (c.hidden_size <= 0) add(Problem("hidden_size", c.hidden_size, "positive integer"));
  if (c.num_attention_heads <= 0) {
    add(Problem("num_attention_heads", c.num_attention_heads, "positive integer"));
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    add("model.hidden_size (" + std::to_string(c.hidden_size) +
        ") must be divisible by model.num_attention_heads (" +
        std::to_string(c.num_attention_heads) + ")");
  }
  if (c.seq_length <= 0) add(Problem("seq_length", c.seq_length, "positive integer"));
  if (c.max_position_embeddings < c.seq_length) {
    add("model.seq_length (" + std::to_string(c.seq_length) +
        ") > model.max_position_embeddings (" + std::to_string(c.max_position_embeddings) + ")");
  }
  if (c.vocab_size <= 0) add(Problem("vocab_size", c.vocab_size, "positive integer"));
  if (c.make_vocab_size_divisible_by <= 0) {
    add(Problem("make_vocab_size_divisible_by", c.make_vocab_size_divisible_by, "positive"));
  }
  if (c.tensor_model_parallel_size <= 0) {
    add(Problem("tensor_model_parallel_size", c.tensor_model_parallel_size, "positive"));
  }
  if (!(c.hidden_dropout >= 0.0f && c.hidden_dropout < 1.0f))
    add("model.hidden_dropout: expected [0, 1)");
  if (!(c.attention_dropout >= 0.0f && c.attention_dropout < 1.0f)) {
    add("model.attention_dropout: expected [0, 1)");
  }
  if (!(c.init_method_std > 0.0f)) add("model.init_method_std: expected > 0");
  if (!(c.layernorm_epsilon > 0.0f)) add("model.norm_epsilon: expected > 0");
  if (c.group_query_attention) {
    if (c.num_query_groups <= 0) {
      add(Problem("num_query_groups", c.num_query_groups, "positive integer"));
    } else if (c.num_attention_heads > 0 && c.num_attention_heads % c.num_query_groups != 0) {
      add("model.num_query_groups (" + std::to_string(c.num_query_groups) +
          ") must divide model.num_attention_heads (" + std::to_string(c.num_attention_heads) +
          ")");
    }
  }
  if (c.rope()) {
    if (c.num_attention_heads > 0 && c.head_size() % 2 != 0) {
      add("model.position_embedding_type rope needs an even head size (hidden_size / "
          "num_attention_heads), got " +
          std::to_string(c.head_size()));
    }
    if (!(c.rotary_base > 0.0f)) add("model.rotary_base: expected > 0");
  }
  if (c.ffn_hidden_size < 0) add(Problem("ffn_hidden_size", c.ffn_hidden_size, ">= 0"));
  if (c.hidden_size > 0 && c.ffn_size() <= 0) {
    add("model.ffn_hidden_size: the MLP's inner size is " + std::to_string(c.ffn_size()) +
        "; set it explicitly");
  }
  if (!errors.empty()) return coord::InvalidArgument(errors);
  return coord::Status::Ok();
}

namespace {

struct Named {
  const char* name;
  int value;
};
constexpr Named kNormalizations[] = {{"LayerNorm", static_cast<int>(Normalization::kLayerNorm)},
                                     {"RMSNorm", static_cast<int>(Normalization::kRMSNorm)}};
constexpr Named kPositionEmbeddings[] = {
    {"learned_absolute", static_cast<int>(PositionEmbedding::kLearnedAbsolute)},
    {"rope", static_cast<int>(PositionEmbedding::kRope)}};

template <size_t N>
coord::StatusOr<int> Lookup(const Named (&table)[N], const std::string& name, const char* key) {
  std::string accepted;
  for (const Named& n : table) {
    if (name == n.name) return n.value;
    accepted += std::string(accepted.empty() ? "" : " or ") + "\"" + n.name + "\"";
  }
  return coord::InvalidArgument(std::string("model.") + key + ": expected " + accepted +
                                ", got \"" + name + "\"");
}

}  // namespace

const char* NormalizationName(Normalization n) {
  return kNormalizations[static_cast<size_t>(n)].name;
}
const char* PositionEmbeddingName(PositionEmbedding p) {
  return kPositionEmbeddings[static_cast<size_t>(p)].name;
}
coord::StatusOr<Normalization> ParseNormalization(const std::string& name) {
  ASSIGN_OR_RETURN(const int v, Lookup(kNormalizations, name, "normalization"));
  return static_cast<Normalization>(v);
}
coord::StatusOr<PositionEmbedding> ParsePositionEmbedding(const std::string& name) {
  ASSIGN_OR_RETURN(const int v, Lookup(kPositionEmbeddings, name, "position_embedding_type"));
  return static_cast<PositionEmbedding>(v);
}

coord::Status CheckTensorParallel(const GptConfig& c, int tp) {
  if (tp <= 1) return coord::Status::Ok();
  const std::string tps = std::to_string(tp);
  if (c.num_attention_heads % tp != 0) {
    return coord::InvalidArgument(
        "tensor parallel size " + tps + " must divide model.num_attention_heads (" +
        std::to_string(c.num_attention_heads) + "): each rank owns whole heads");
  }
  if (c.group_query_attention && c.num_query_groups % tp != 0) {
    return coord::InvalidArgument(
        "tensor parallel size " + tps + " must divide model.num_query_groups (" +
        std::to_string(c.num_query_groups) + "): each rank owns whole KV groups (Megatron's rule)");
  }
  if (c.ffn_size() % tp != 0) {
    return coord::InvalidArgument("tensor parallel size " + tps +
                                  " must divide the MLP's inner size (model.ffn_hidden_size " +
                                  std::to_string(c.ffn_size()) + ")");
  }
  if (c.padded_vocab_size() % tp != 0) {
    return coord::InvalidArgument("tensor parallel size " + tps +
                                  " must divide the padded vocabulary (" +
                                  std::to_string(c.padded_vocab_size()) +
                                  "; model.tensor_model_parallel_size pads it to a multiple of "
                                  "make_vocab_size_divisible_by x tp)");
  }
  return coord::Status::Ok();
}

ModelPart ModelPart::PipelineChunk(int num_layers, int pp, int vpp, int stage, int chunk) {
  ModelPart part;
  part.whole = pp == 1 && vpp == 1;
  const int per_chunk = num_layers / (pp * vpp);
  const int first = (chunk * pp + stage) * per_chunk;
  for (int l = first; l < first + per_chunk; ++l) part.layers.push_back(l);
  part.embedding = stage == 0 && chunk == 0;
  part.head = stage == pp - 1 && chunk == vpp - 1;
  return part;
}

ModelPart ModelPart::PipelineStage(int num_layers, int pp, int vpp, int stage) {
  ModelPart part;
  part.whole = pp == 1 && vpp == 1;
  for (int c = 0; c < vpp; ++c) {
    const ModelPart chunk = PipelineChunk(num_layers, pp, vpp, stage, c);
    part.layers.insert(part.layers.end(), chunk.layers.begin(), chunk.layers.end());
  }
  part.embedding = stage == 0;
  part.head = stage == pp - 1;
  return part;
}

std::vector<int> ModelPart::Layers(int num_layers) const {
  if (!whole) return layers;
  std::vector<int> all(static_cast<size_t>(num_layers));
  for (int l = 0; l < num_layers; ++l) all[static_cast<size_t>(l)] = l;
  return all;
}

GptParamLayout::GptParamLayout(const GptConfig& config, int tp_size, int tp_rank,
                               const ModelPart& part)
    : config_(config), tp_size_(tp_size), tp_rank_(tp_rank), part_(part) {
  const int C = config.hidden_size, L = config.num_layers;
  const bool embedding = part.whole || part.embedding, head = part.whole || part.head;
  slot_position_.assign(kNumLayerSlots, -1);
  for (int j = 0; j < kNumLayerSlots; ++j) {
    const LayerSlot slot = static_cast<LayerSlot>(j);
    if (!HasLayerSlot(config, slot)) continue;
    slot_position_[static_cast<size_t>(j)] = static_cast<int>(layer_slots_.size());
    layer_slots_.push_back(slot);
  }
  first_layer_index_ = config.rope() ? 1 : 2;
  size_t offset = 0;
  auto push = [&](std::string name, std::vector<int> full, bool decay, int layer, ParamInit init,
                  TpSplit split, int global_index) {
    std::vector<int> shape = ShardShape(full, split, tp_size);
    size_t numel = 1;
    for (int d : shape) numel *= static_cast<size_t>(d);
    tensors_.push_back({std::move(name), offset, numel, std::move(shape), decay, layer, init,
                        split, full, global_index, false});
    offset += numel;
  };
  const int Vp = config.padded_vocab_size();
  if (embedding || (head && config.tied_output())) {
    push("wte", {Vp, C}, true, -1, ParamInit::kNormal, TpSplit::kRows, 0);
    tensors_.back().pipeline_copy = !embedding;
  }
  if (embedding && wpe_index() >= 0) {
    push("wpe", {config.max_position_embeddings, C}, true, -1, ParamInit::kNormal,
         TpSplit::kReplicated, wpe_index());
  }
  for (int l : part.Layers(L)) {
    for (LayerSlot slot : layer_slots_) {
      const LayerTensorSpec& spec = kLayerSpecs[static_cast<size_t>(slot)];
      SlotShape shape = ShapeOf(config, slot);
      push("layers." + std::to_string(l) + "." + spec.name, std::move(shape.shape),
           spec.weight_decay, l, spec.init, shape.split, layer_tensor_index(l, slot));
    }
  }
  if (head) {
    push("lnf_weight", {C}, false, -1, ParamInit::kOne, TpSplit::kReplicated, lnf_weight_index());
    if (lnf_bias_index() >= 0) {
      push("lnf_bias", {C}, false, -1, ParamInit::kZero, TpSplit::kReplicated, lnf_bias_index());
    }
    if (output_index() >= 0) {
      push("output_layer", {Vp, C}, true, -1, ParamInit::kNormal, TpSplit::kRows, output_index());
    }
  }
  num_params_ = offset;
  int num_global = lnf_weight_index() + 1;
  if (lnf_bias_index() >= 0) ++num_global;
  if (output_index() >= 0) ++num_global;
  local_index_.assign(static_cast<size_t>(num_global), -1);
  for (size_t k = 0; k < tensors_.size(); ++k) {
    local_index_[static_cast<size_t>(tensors_[k].global_index)] = static_cast<int>(k);
  }
}

size_t GptParamLayout::ToFullIndex(const ParamTensorInfo& t, size_t i) const {
  if (t.split == TpSplit::kReplicated || tp_size_ == 1) return i;
  const size_t cols = t.shape.size() == 2 ? static_cast<size_t>(t.shape[1]) : 1;
  const size_t row = i / cols, col = i % cols;
  const size_t rows = static_cast<size_t>(t.shape[0]);  // of the shard
  const size_t r = static_cast<size_t>(tp_rank_);
  switch (t.split) {
    case TpSplit::kRows:
      return (r * rows + row) * cols + col;
    case TpSplit::kQkvRows:    // shard rows [q_r | k_r | v_r], each rows/3 long
    case TpSplit::kGluRows: {  // shard rows [gate_r | up_r], each rows/2 long
      const size_t blocks = RowBlocks(t.split);
      const size_t block_rows = rows / blocks, block = row / block_rows, j = row % block_rows;
      const size_t full_block_rows = static_cast<size_t>(t.full_shape[0]) / blocks;
      return (block * full_block_rows + r * block_rows + j) * cols + col;
    }
    case TpSplit::kColumns:
      return row * static_cast<size_t>(t.full_shape[1]) + r * cols + col;
    case TpSplit::kReplicated:
      break;
  }
  return i;
}

void GptParamLayout::Locate(const ParamTensorInfo& t, size_t full, int* rank,
                            size_t* local) const {
  *rank = 0;
  *local = full;
  if (t.split == TpSplit::kReplicated || tp_size_ == 1) return;
  const size_t full_cols = t.full_shape.size() == 2 ? static_cast<size_t>(t.full_shape[1]) : 1;
  const size_t row = full / full_cols, col = full % full_cols;
  const size_t tp = static_cast<size_t>(tp_size_);
  switch (t.split) {
    case TpSplit::kRows: {
      const size_t rows = static_cast<size_t>(t.full_shape[0]) / tp;
      *rank = static_cast<int>(row / rows);
      *local = (row % rows) * full_cols + col;
      return;
    }
    case TpSplit::kQkvRows:
    case TpSplit::kGluRows: {
      const size_t block_rows = static_cast<size_t>(t.full_shape[0]) / RowBlocks(t.split);
      const size_t shard_rows = block_rows / tp;
      const size_t block = row / block_rows, j = row % block_rows;
      *rank = static_cast<int>(j / shard_rows);
      *local = (block * shard_rows + j % shard_rows) * full_cols + col;
      return;
    }
    case TpSplit::kColumns: {
      const size_t cols = full_cols / tp;
      *rank = static_cast<int>(col / cols);
      *local = row * cols + col % cols;
      return;
    }
    case TpSplit::kReplicated:
      return;
  }
}

GptParams GptParamLayout::Views(float* base) const {
  GptParams p;
  p.base = base;
  const int L = config_.num_layers;
  auto at = [&](int global_index) -> float* {
    const int k = LocalIndex(global_index);
    return k < 0 ? nullptr : base + tensors_[static_cast<size_t>(k)].offset;
  };
  p.wte = at(0);
  p.wpe = at(wpe_index());
  p.layers.assign(static_cast<size_t>(L), LayerParams{});
  for (int l = 0; l < L; ++l) {
    if (has_layer(l))
      p.layers[static_cast<size_t>(l)] = BindModule({ModuleKind::kLayer, l}, at).layer;
  }
  p.lnfw = at(lnf_weight_index());
  p.lnfb = at(lnf_bias_index());
  p.output = at(output_index());
  return p;
}

LayerParams GptParamLayout::LayerViews(int l, float* layer_base) const {
  const size_t begin = layer_begin(l);
  return BindModule({ModuleKind::kLayer, l},
                    [&](int global_index) {
                      const ParamTensorInfo& t =
                          tensors_[static_cast<size_t>(LocalIndex(global_index))];
                      return layer_base + (t.offset - begin);
                    })
      .layer;
}

std::vector<int> GptParamLayout::ModuleMembers(Module m) const {
  std::vector<int> out;
  auto add = [&out](int global) {
    if (global >= 0) out.push_back(global);
  };
  switch (m.kind) {
    case ModuleKind::kEmbedding:
      add(0);
      add(wpe_index());
      break;
    case ModuleKind::kLayer:
      for (LayerSlot slot : layer_slots_) add(layer_tensor_index(m.layer, slot));
      break;
    case ModuleKind::kHead:
      if (config_.tied_output()) add(0);
      add(lnf_weight_index());
      add(lnf_bias_index());
      add(output_index());
      break;
  }
  return out;
}

}  // namespace trainer
