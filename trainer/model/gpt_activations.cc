// Activation layouts and the memory plan (declared in gpt_params.h): the per-layer
// buffers a forward keeps for backward, the backward-only buffers, and the bytes of
// both plus the parameters, gradients and Adam state for gpt-rank plan.
#include <cstdio>
#include <string>

#include "trainer/model/gpt_params.h"

namespace trainer {

// --- activations -------------------------------------------------------------

namespace {

// Walks the activation layout once; with base == nullptr it only counts.
template <typename Fn>
size_t WalkActivations(const GptConfig& c, int B, int T, bool checkpoint, int tp, bool head,
                       Fn take) {
  const size_t BT = static_cast<size_t>(B) * T, C = c.hidden_size, L = c.num_layers;
  // Per tensor-parallel rank: its heads, its slice of the MLP and of the vocab.
  const size_t NH = c.num_attention_heads / tp, Vp = c.padded_vocab_size() / tp;
  const size_t QKVl = c.qkv_rows() / tp, ATTl = NH * c.head_size();
  const size_t FCl = c.fc_rows() / tp, Fl = c.ffn_size() / tp;
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
    alloc(&la->qkv, BT * QKVl);
    alloc(&la->att, BT * NH * T);
    alloc(&la->atty, BT * ATTl);
    alloc(&la->residual2, BT * C);
    alloc(&la->ln2, BT * C);
    alloc(&la->ln2_mean, BT);
    alloc(&la->ln2_rstd, BT);
    alloc(&la->fch, BT * FCl);
    alloc(&la->fch_gelu, BT * Fl);
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

namespace {

// (B, T, x/tp) for the rank's share x/tp of a width x.
size_t BTl(const GptConfig& /*c*/, int B, int T, int tp, int width) {
  return static_cast<size_t>(B) * T * static_cast<size_t>(width / tp);
}

}  // namespace

// dbtc2 also holds d(atty), (B, T, NH HS/tp), which is at most (B, T, C).
size_t GradActivationFloats(const GptConfig& c, int B, int T, int tp) {
  const size_t BTC = static_cast<size_t>(B) * T * c.hidden_size;
  return 3 * BTC + BTl(c, B, T, tp, c.qkv_rows()) + BTl(c, B, T, tp, c.fc_rows()) +
         BTl(c, B, T, tp, c.ffn_size());
}

GptGradActivations GradActivationViews(float* base, const GptConfig& c, int B, int T, int tp) {
  const size_t BTC = static_cast<size_t>(B) * T * c.hidden_size;
  GptGradActivations g;
  g.dresidual = base;
  g.dbtc = g.dresidual + BTC;
  g.dbtc2 = g.dbtc + BTC;
  g.dqkv = g.dbtc2 + BTC;
  g.dfch = g.dqkv + BTl(c, B, T, tp, c.qkv_rows());
  g.dfch_gelu = g.dfch + BTl(c, B, T, tp, c.fc_rows());
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
