// Parameter/activation layouts and the memory plan (see gpt_params.h).
#include "trainer/model/gpt_params.h"

#include <cstdio>
#include <string>

namespace trainer {

namespace {

// The 12 per-layer tensors in flat order: name, member, shape in units of C, decay,
// init, and how tensor parallel splits it (Megatron's ColumnParallelLinear for QKV and
// fc, RowParallelLinear for the projections, whose biases stay whole).
struct LayerTensorSpec {
  const char* name;
  float* LayerParams::*member;
  int rows_times_c;  // first dim / C (0 for a vector of cols_times_c * C)
  int cols_times_c;  // last dim / C
  bool weight_decay;
  ParamInit init;
  TpSplit split;
};

constexpr std::array<LayerTensorSpec, kTensorsPerLayer> kLayerSpecs = {{
    {"ln1_weight", &LayerParams::ln1w, 0, 1, false, ParamInit::kOne, TpSplit::kReplicated},
    {"ln1_bias", &LayerParams::ln1b, 0, 1, false, ParamInit::kZero, TpSplit::kReplicated},
    {"qkv_weight", &LayerParams::qkvw, 3, 1, true, ParamInit::kNormal, TpSplit::kQkvRows},
    {"qkv_bias", &LayerParams::qkvb, 0, 3, false, ParamInit::kZero, TpSplit::kQkvRows},
    {"attn_proj_weight", &LayerParams::attprojw, 1, 1, true, ParamInit::kScaledNormal,
     TpSplit::kColumns},
    {"attn_proj_bias", &LayerParams::attprojb, 0, 1, false, ParamInit::kZero,
     TpSplit::kReplicated},
    {"ln2_weight", &LayerParams::ln2w, 0, 1, false, ParamInit::kOne, TpSplit::kReplicated},
    {"ln2_bias", &LayerParams::ln2b, 0, 1, false, ParamInit::kZero, TpSplit::kReplicated},
    {"fc_weight", &LayerParams::fcw, 4, 1, true, ParamInit::kNormal, TpSplit::kRows},
    {"fc_bias", &LayerParams::fcb, 0, 4, false, ParamInit::kZero, TpSplit::kRows},
    {"fc_proj_weight", &LayerParams::fcprojw, 1, 4, true, ParamInit::kScaledNormal,
     TpSplit::kColumns},
    {"fc_proj_bias", &LayerParams::fcprojb, 0, 1, false, ParamInit::kZero, TpSplit::kReplicated},
}};

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

std::string Problem(const char* key, long long got, const char* want) {
  return std::string("model.") + key + ": expected " + want + ", got " + std::to_string(got);
}

}  // namespace

coord::Status ValidateGptConfig(const GptConfig& c) {
  std::string errors;
  auto add = [&errors](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };
  if (c.num_layers <= 0) add(Problem("num_layers", c.num_layers, "positive integer"));
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
  if (!(c.layernorm_epsilon > 0.0f)) add("model.layernorm_epsilon: expected > 0");
  if (!errors.empty()) return coord::InvalidArgument(errors);
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
  if (embedding || head) {
    push("wte", {config.padded_vocab_size(), C}, true, -1, ParamInit::kNormal, TpSplit::kRows, 0);
    tensors_.back().pipeline_copy = !embedding;
  }
  if (embedding) {
    push("wpe", {config.max_position_embeddings, C}, true, -1, ParamInit::kNormal,
         TpSplit::kReplicated, 1);
  }
  for (int l : part.Layers(L)) {
    for (int j = 0; j < kTensorsPerLayer; ++j) {
      const LayerTensorSpec& spec = kLayerSpecs[static_cast<size_t>(j)];
      std::vector<int> shape;
      if (spec.rows_times_c > 0) shape.push_back(spec.rows_times_c * C);
      shape.push_back(spec.cols_times_c * C);
      push("layers." + std::to_string(l) + "." + spec.name, shape, spec.weight_decay, l, spec.init,
           spec.split, layer_tensor_index(l, j));
    }
  }
  if (head) {
    push("lnf_weight", {C}, false, -1, ParamInit::kOne, TpSplit::kReplicated,
         layer_tensor_index(L, 0));
    push("lnf_bias", {C}, false, -1, ParamInit::kZero, TpSplit::kReplicated,
         layer_tensor_index(L, 1));
  }
  num_params_ = offset;
  local_index_.assign(static_cast<size_t>(layer_tensor_index(L, 2)), -1);
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
    case TpSplit::kQkvRows: {  // shard rows [q_r | k_r | v_r], each rows/3 long
      const size_t block_rows = rows / 3, block = row / block_rows, j = row % block_rows;
      const size_t full_block_rows = static_cast<size_t>(t.full_shape[0]) / 3;
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
    case TpSplit::kQkvRows: {
      const size_t block_rows = static_cast<size_t>(t.full_shape[0]) / 3, shard_rows = block_rows / tp;
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
  p.wpe = at(1);
  p.layers.assign(static_cast<size_t>(L), LayerParams{});
  for (int l = 0; l < L; ++l) {
    if (!has_layer(l)) continue;
    for (int j = 0; j < kTensorsPerLayer; ++j) {
      p.layers[static_cast<size_t>(l)].*(kLayerSpecs[static_cast<size_t>(j)].member) =
          at(layer_tensor_index(l, j));
    }
  }
  p.lnfw = at(layer_tensor_index(L, 0));
  p.lnfb = at(layer_tensor_index(L, 1));
  return p;
}

LayerParams GptParamLayout::LayerViews(int l, float* layer_base) const {
  LayerParams p{};
  const size_t begin = layer_begin(l);
  for (int j = 0; j < kTensorsPerLayer; ++j) {
    const ParamTensorInfo& t = tensors_[static_cast<size_t>(LocalIndex(layer_tensor_index(l, j)))];
    p.*(kLayerSpecs[static_cast<size_t>(j)].member) = layer_base + (t.offset - begin);
  }
  return p;
}

// --- activations -------------------------------------------------------------

namespace {

// Walks the activation layout once; with base == nullptr it only counts.
template <typename Fn>
size_t WalkActivations(const GptConfig& c, int B, int T, bool checkpoint, int tp, bool head,
                       Fn take) {
  const size_t BT = static_cast<size_t>(B) * T, C = c.hidden_size, L = c.num_layers;
  // Per tensor-parallel rank: its heads, its slice of the MLP and of the vocab.
  const size_t NH = c.num_attention_heads / tp, Vp = c.padded_vocab_size() / tp;
  const size_t Cl = C / tp;
  size_t total = 0;
  auto alloc = [&](float** slot, size_t n) {
    take(slot, total);
    total += n;
  };
  alloc(take.residual(), (L + 1) * BT * C);
  const size_t nlayers = checkpoint ? 1 : L;
  for (size_t l = 0; l < nlayers; ++l) {
    LayerActivations* la = take.layer(l);
    alloc(&la->ln1, BT * C);
    alloc(&la->ln1_mean, BT);
    alloc(&la->ln1_rstd, BT);
    alloc(&la->qkv, BT * 3 * Cl);
    alloc(&la->att, BT * NH * T);
    alloc(&la->atty, BT * Cl);
    alloc(&la->residual2, BT * C);
    alloc(&la->ln2, BT * C);
    alloc(&la->ln2_mean, BT);
    alloc(&la->ln2_rstd, BT);
    alloc(&la->fch, BT * 4 * Cl);
    alloc(&la->fch_gelu, BT * 4 * Cl);
  }
  GptActivations* top = take.top();
  alloc(&top->scratch, BT * C);
  if (!head) return total;  // a pipeline stage without the LM head: no logits
  alloc(&top->lnf, BT * C);
  alloc(&top->lnf_mean, BT);
  alloc(&top->lnf_rstd, BT);
  alloc(&top->logits, BT * Vp);
  alloc(&top->losses, BT);
  return total;
}

// Assigns pointers (base != nullptr) or just counts.
struct ActivationTaker {
  float* base;
  GptActivations* acts;
  void operator()(float** slot, size_t offset) const {
    if (base != nullptr) *slot = base + offset;
  }
  float** residual() const { return &acts->residual; }
  LayerActivations* layer(size_t l) const { return &acts->layers[l]; }
  GptActivations* top() const { return acts; }
};

}  // namespace

GptActivations ActivationViews(float* base, const GptConfig& c, int B, int T, bool checkpoint,
                               int tp, bool head) {
  GptActivations acts;
  acts.layers.resize(checkpoint ? 1 : c.num_layers);
  WalkActivations(c, B, T, checkpoint, tp, head, ActivationTaker{base, &acts});
  return acts;
}

size_t ActivationFloats(const GptConfig& c, int B, int T, bool checkpoint, int tp, bool head) {
  GptActivations acts;
  acts.layers.resize(checkpoint ? 1 : c.num_layers);
  return WalkActivations(c, B, T, checkpoint, tp, head, ActivationTaker{nullptr, &acts});
}

size_t GradActivationFloats(const GptConfig& c, int B, int T, int tp) {
  const size_t BTC = static_cast<size_t>(B) * T * c.hidden_size, BTCl = BTC / tp;
  return 3 * BTC + 3 * BTCl + 2 * 4 * BTCl;
}

GptGradActivations GradActivationViews(float* base, const GptConfig& c, int B, int T, int tp) {
  const size_t BTC = static_cast<size_t>(B) * T * c.hidden_size, BTCl = BTC / tp;
  GptGradActivations g;
  g.dresidual = base;
  g.dbtc = g.dresidual + BTC;
  g.dbtc2 = g.dbtc + BTC;
  g.dqkv = g.dbtc2 + BTC;
  g.dfch = g.dqkv + 3 * BTCl;
  g.dfch_gelu = g.dfch + 4 * BTCl;
  return g;
}

// --- memory plan -------------------------------------------------------------

size_t MemoryPlan::total_bytes(bool checkpoint_activations) const {
  return param_bytes + grad_bytes + optimizer_bytes +
         (checkpoint_activations ? activation_bytes_checkpointed : activation_bytes) +
         backward_bytes;
}

MemoryPlan PlanMemory(const GptConfig& config, int B, int T, int tp) {
  MemoryPlan plan;
  plan.num_params = GptParamLayout(config, tp).num_params();
  plan.param_bytes = plan.num_params * sizeof(float);
  plan.grad_bytes = plan.param_bytes;
  plan.optimizer_bytes = 2 * plan.param_bytes;
  plan.activation_bytes = ActivationFloats(config, B, T, false, tp) * sizeof(float);
  plan.activation_bytes_checkpointed = ActivationFloats(config, B, T, true, tp) * sizeof(float);
  plan.backward_bytes = GradActivationFloats(config, B, T, tp) * sizeof(float);
  return plan;
}

std::string FormatMemoryPlan(const MemoryPlan& plan, bool checkpoint_activations) {
  auto mib = [](size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); };
  char buf[640];
  std::snprintf(buf, sizeof(buf),
                "parameters            %12zu (%.1f MiB fp32)\n"
                "gradients             %10.1f MiB\n"
                "optimizer (Adam m,v)  %10.1f MiB\n"
                "activations           %10.1f MiB%s\n"
                "activations (ckpt)    %10.1f MiB%s\n"
                "backward buffers      %10.1f MiB\n"
                "total                 %10.1f MiB\n",
                plan.num_params, mib(plan.param_bytes), mib(plan.grad_bytes),
                mib(plan.optimizer_bytes), mib(plan.activation_bytes),
                checkpoint_activations ? "" : "  <- used", mib(plan.activation_bytes_checkpointed),
                checkpoint_activations ? "  <- used" : "", mib(plan.backward_bytes),
                mib(plan.total_bytes(checkpoint_activations)));
  return buf;
}

}  // namespace trainer
