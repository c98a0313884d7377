// GptModel on CUDA (see gpt_cuda.h). The layer sequence is gpt.cc's, op for op, on the
// kernels of trainer/kernels/cuda; CudaModel<floatX> is instantiated for the three compute
// types and hidden behind CudaGptModel.
#include "trainer/model/gpt_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "common/cuda_version.h"
#include "trainer/core/philox.h"
#include "trainer/kernels/cuda/adamw.cuh"
#include "trainer/kernels/cuda/attention.cuh"
#include "trainer/kernels/cuda/cast.cuh"
#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/dropout.cuh"
#include "trainer/kernels/cuda/encoder.cuh"
#include "trainer/kernels/cuda/layernorm.cuh"
#include "trainer/kernels/cuda/matmul.cuh"
#include "trainer/kernels/cuda/reduce.cuh"
#include "trainer/kernels/cuda/residual.cuh"
#include "trainer/kernels/cuda/softmax_cross_entropy.cuh"

namespace trainer {
namespace {

namespace kc = kernels::cuda;

constexpr size_t kMatmulWorkspaceBytes = 32u << 20;
constexpr size_t kAlign = 256;  // every buffer starts 256-byte aligned (vector loads, cuBLASLt)

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string GiB(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}

// The sizes of every buffer, in elements, for one (B, T): the plan and the allocation
// use this one function, so the printed plan is what is allocated.
struct BufferSizes {
  // Forward, per layer slot (L slots, or 1 with checkpoint_activations).
  size_t ln = 0, stats = 0, qkv = 0, atty = 0, lse = 0, residual2 = 0, fch = 0;
  size_t layer_t = 0, layer_f = 0;  // compute-type / fp32 elements per slot
  int slots = 0;
  // Forward, shared.
  size_t residual = 0, scratch = 0, lnf = 0, logits = 0, losses = 0, tokens = 0;
  // Backward.
  size_t dbtc = 0, dqkv = 0, dfch = 0;
  size_t scratch_floats = 0, encoder_scratch_bytes = 0, reduce_doubles = 0;
};

BufferSizes SizesFor(const GptConfig& c, int B, int T) {
  BufferSizes s;
  const size_t BT = static_cast<size_t>(B) * T, C = c.hidden_size, L = c.num_layers;
  const size_t NH = c.num_attention_heads, Vp = c.padded_vocab_size();
  s.ln = BT * C;
  s.stats = BT;
  s.qkv = BT * 3 * C;
  s.atty = BT * C;
  s.lse = B * NH * T;
  s.residual2 = BT * C;
  s.fch = BT * 4 * C;
  s.layer_t =
      2 * s.ln + s.qkv + s.atty + s.residual2 + 2 * s.fch;  // ln1 ln2 qkv atty res2 fch fchg
  s.layer_f = 4 * s.stats + s.lse;
  s.slots = c.checkpoint_activations ? 1 : static_cast<int>(L);
  s.residual = (L + 1) * BT * C;
  s.scratch = BT * C;
  s.lnf = BT * C;
  s.logits = BT * Vp;
  s.losses = BT;
  s.tokens = BT;
  s.dbtc = BT * C;
  s.dqkv = BT * 3 * C;
  s.dfch = BT * 4 * C;
  const int N = static_cast<int>(BT);
  s.scratch_floats =
      std::max({kc::layernorm_backward_scratch_floats(N, c.hidden_size),
                kc::matmul_backward_scratch_floats(N, 4 * c.hidden_size),
                kc::attention_backward_scratch_floats(B, T, c.hidden_size, c.num_attention_heads)});
  s.encoder_scratch_bytes = kc::encoder_backward_scratch_bytes(B, T);
  s.reduce_doubles = kc::reduce_scratch_doubles() + 1;
  return s;
}

// Bump allocation out of one cudaMalloc: nothing is freed until the model is.
class DeviceArena {
 public:
  ~DeviceArena() {
    if (base_ != nullptr) cudaFree(base_);
  }
  coord::Status Reserve(size_t bytes) {
    cudaError_t e = cudaMalloc(&base_, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state of the failed allocation
      return coord::Status(coord::StatusCode::kResourceExhausted,
                           "cudaMalloc of " + GiB(bytes) + " failed: " + cudaGetErrorString(e));
    }
    capacity_ = bytes;
    return coord::Status::Ok();
  }
  template <typename T>
  T* Take(size_t n) {
    T* p = reinterpret_cast<T*>(static_cast<char*>(base_) + used_);
    used_ += AlignUp(n * sizeof(T));
    return used_ <= capacity_ ? p : nullptr;
  }

 private:
  void* base_ = nullptr;
  size_t capacity_ = 0, used_ = 0;
};

// Pointers into one layer's parameters in the compute type.
template <typename floatX>
struct LayerWeights {
  floatX *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw,
      *fcprojb;
};

template <typename floatX>
struct LayerActs {
  floatX *ln1, *qkv, *atty, *residual2, *ln2, *fch, *fch_gelu;
  float *ln1_mean, *ln1_rstd, *lse, *ln2_mean, *ln2_rstd;
};

template <typename floatX>
class CudaModel final : public CudaGptModel {
 public:
  CudaModel(const GptConfig& config, int max_batch, int max_seq, Precision precision,
            const CudaDeviceInfo& device, const AdamWConfig& adam, const CudaMemoryPlan& plan)
      : config_(config),
        layout_(config),
        max_batch_(max_batch),
        max_seq_(max_seq),
        precision_(precision),
        device_(device),
        adam_(adam),
        plan_(plan) {}

  ~CudaModel() override {
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  coord::Status Init(size_t used_before) {
    used_before_ = used_before;
    CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    RETURN_IF_ERROR(matmul_.Init(kMatmulWorkspaceBytes));
    const size_t N = layout_.num_params();
    const BufferSizes s = SizesFor(config_, max_batch_, max_seq_);
    RETURN_IF_ERROR(arena_.Reserve(plan_.total() - kMatmulWorkspaceBytes));
    bool ok = true;
    auto take_f = [&](size_t n) {
      float* p = arena_.Take<float>(n);
      ok = ok && p != nullptr;
      return p;
    };
    auto take_t = [&](size_t n) {
      floatX* p = arena_.Take<floatX>(n);
      ok = ok && p != nullptr;
      return p;
    };
    master_ = take_f(N);
    params_ = std::is_same<floatX, float>::value ? reinterpret_cast<floatX*>(master_) : take_t(N);
    grads_ = take_f(N);
    m_ = take_f(N);
    v_ = take_f(N);
    slots_.resize(static_cast<size_t>(s.slots));
    for (LayerActs<floatX>& a : slots_) {
      a.ln1 = take_t(s.ln);
      a.qkv = take_t(s.qkv);
      a.atty = take_t(s.atty);
      a.residual2 = take_t(s.residual2);
      a.ln2 = take_t(s.ln);
      a.fch = take_t(s.fch);
      a.fch_gelu = take_t(s.fch);
      a.ln1_mean = take_f(s.stats);
      a.ln1_rstd = take_f(s.stats);
      a.lse = take_f(s.lse);
      a.ln2_mean = take_f(s.stats);
      a.ln2_rstd = take_f(s.stats);
    }
    residual_ = take_t(s.residual);
    scratch_ = take_t(s.scratch);
    lnf_ = take_t(s.lnf);
    lnf_mean_ = take_f(s.stats);
    lnf_rstd_ = take_f(s.stats);
    logits_ = take_t(s.logits);
    losses_ = take_f(s.losses);
    loss_lse_ = take_f(s.losses);
    inputs_ = arena_.Take<int>(s.tokens);
    targets_ = arena_.Take<int>(s.tokens);
    ok = ok && inputs_ != nullptr && targets_ != nullptr;
    dresidual_ = take_t(s.dbtc);
    dbtc_ = take_t(s.dbtc);
    dbtc2_ = take_t(s.dbtc);
    dqkv_ = take_t(s.dqkv);
    dfch_ = take_t(s.dfch);
    kernel_scratch_ = take_f(s.scratch_floats);
    encoder_scratch_ = arena_.Take<char>(s.encoder_scratch_bytes);
    reduce_scratch_ = arena_.Take<double>(s.reduce_doubles);
    ok = ok && encoder_scratch_ != nullptr && reduce_scratch_ != nullptr;
    if (!ok) return coord::Internal("CudaGptModel: the memory plan is smaller than the buffers");
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(grads_, 0, N * sizeof(float), stream_));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(m_, 0, N * sizeof(float), stream_));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(v_, 0, N * sizeof(float), stream_));
    host_losses_.resize(s.losses);
    decay_ranges_ = WeightDecayRanges(layout_, true, 0, N);
    no_decay_ranges_ = WeightDecayRanges(layout_, false, 0, N);
    return Synchronize();
  }

  const GptConfig& config() const override { return config_; }
  const GptParamLayout& layout() const override { return layout_; }
  Precision precision() const override { return precision_; }
  const CudaDeviceInfo& device() const override { return device_; }
  const CudaMemoryPlan& plan() const override { return plan_; }
  void* stream() const override { return stream_; }
  int64_t adam_step() const override { return adam_step_; }
  float* grad_data() override { return grads_; }
  size_t peak_used_bytes() const override {
    return peak_used_ - std::min(peak_used_, used_before_);
  }

  coord::Status LoadParams(const float* host) override {
    const size_t N = layout_.num_params();
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(master_, host, N * sizeof(float), cudaMemcpyHostToDevice, stream_));
    RETURN_IF_ERROR(RefreshCopy());
    return Synchronize();
  }
  coord::Status StoreParams(float* host) override { return Download(host, master_); }
  coord::Status StoreGrads(float* host) override { return Download(host, grads_); }
  coord::Status LoadGrads(const float* host) override {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(grads_, host, layout_.num_params() * sizeof(float),
                                         cudaMemcpyHostToDevice, stream_));
    return Synchronize();
  }
  coord::Status LoadOptimizer(const float* m, const float* v, int64_t step) override {
    const size_t bytes = layout_.num_params() * sizeof(float);
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m_, m, bytes, cudaMemcpyHostToDevice, stream_));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(v_, v, bytes, cudaMemcpyHostToDevice, stream_));
    adam_step_ = step;
    return Synchronize();
  }
  coord::Status StoreOptimizer(float* m, float* v) override {
    RETURN_IF_ERROR(Download(m, m_));
    return Download(v, v_);
  }

  coord::Status ZeroGrad() override {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(grads_, 0, layout_.num_params() * sizeof(float), stream_));
    return coord::Status::Ok();
  }

  coord::Status Synchronize() override {
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    SamplePeak();
    return coord::Status::Ok();
  }

  coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                 const StepOptions& options) override;
  coord::Status Backward(float loss_scale, const GptModel::GradsReadyFn& grads_ready) override;

  coord::StatusOr<double> GradNormSquared() override {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(reduce_scratch_, 0, sizeof(double), stream_));
    RETURN_IF_ERROR(kc::sum_of_squares(reduce_scratch_, grads_, layout_.num_params(),
                                       reduce_scratch_ + 1, stream_));
    double total = 0.0;
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(&total, reduce_scratch_, sizeof(double), cudaMemcpyDeviceToHost, stream_));
    RETURN_IF_ERROR(Synchronize());
    return total;
  }

  coord::Status Step(float lr, float grad_scale) override {
    ++adam_step_;
    floatX* copy = std::is_same<floatX, float>::value ? nullptr : params_;
    for (bool decay : {true, false}) {
      const float wd = decay ? adam_.weight_decay : 0.0f;
      for (const auto& [b, e] : decay ? decay_ranges_ : no_decay_ranges_) {
        RETURN_IF_ERROR(kc::adamw_update<floatX>(
            master_ + b, copy == nullptr ? nullptr : copy + b, grads_ + b, m_ + b, v_ + b, e - b,
            lr, adam_.beta1, adam_.beta2, adam_.eps, wd, adam_step_, grad_scale, stream_));
      }
    }
    return coord::Status::Ok();
  }

 private:
  coord::Status Download(float* host, const float* device) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host, device, layout_.num_params() * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
    return Synchronize();
  }
  coord::Status RefreshCopy() {
    if (std::is_same<floatX, float>::value) return coord::Status::Ok();
    RETURN_IF_ERROR(kc::cast_from_float<floatX>(params_, master_, layout_.num_params(), stream_));
    return coord::Status::Ok();
  }
  void SamplePeak() {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
      peak_used_ = std::max(peak_used_, total_bytes - free_bytes);
    }
  }

  // Views of the flat buffers: tensor k of the layout in the compute copy / gradients.
  floatX* P(int k) const { return params_ + layout_.tensors()[static_cast<size_t>(k)].offset; }
  float* G(int k) const { return grads_ + layout_.tensors()[static_cast<size_t>(k)].offset; }
  template <typename U, typename F>
  LayerWeights<U> LayerViews(int l, F ptr) const {
    // GPT-2 only (Create refuses the rest), so all 12 slots are present.
    auto at = [&](int j) { return ptr(layout_.layer_tensor_index(l, static_cast<trainer::LayerSlot>(j))); };
    return {at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10), at(11)};
  }
  LayerWeights<floatX> Weights(int l) const {
    return LayerViews<floatX>(l, [this](int k) { return P(k); });
  }
  LayerWeights<float> Grads(int l) const {
    return LayerViews<float>(l, [this](int k) { return G(k); });
  }
  int lnf_index() const { return layout_.lnf_weight_index(); }

  RngStream DropoutRng(int layer, DropoutSite site) const {
    return DropoutStream(config_.seed, rng_step_, layer, site);
  }
  size_t RowElems() const { return static_cast<size_t>(T_) * config_.hidden_size; }
  floatX* ResidualAt(int l) const {
    return residual_ + static_cast<size_t>(l) * B_ * T_ * config_.hidden_size;
  }

  coord::Status LayerForward(int l, const LayerActs<floatX>& a, const floatX* in, floatX* out);
  coord::Status LayerBackward(int l, const LayerActs<floatX>& a, const floatX* in);

  GptConfig config_;
  GptParamLayout layout_;
  int max_batch_, max_seq_;
  Precision precision_;
  CudaDeviceInfo device_;
  AdamWConfig adam_;
  CudaMemoryPlan plan_;
  cudaStream_t stream_ = nullptr;
  kc::MatmulContext matmul_;
  DeviceArena arena_;
  size_t used_before_ = 0, peak_used_ = 0;
  int64_t adam_step_ = 0;
  std::vector<std::pair<size_t, size_t>> decay_ranges_, no_decay_ranges_;

  float *master_ = nullptr, *grads_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  floatX* params_ = nullptr;
  std::vector<LayerActs<floatX>> slots_;
  floatX *residual_ = nullptr, *scratch_ = nullptr, *lnf_ = nullptr, *logits_ = nullptr;
  float *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr, *losses_ = nullptr, *loss_lse_ = nullptr;
  int *inputs_ = nullptr, *targets_ = nullptr;
  floatX *dresidual_ = nullptr, *dbtc_ = nullptr, *dbtc2_ = nullptr, *dqkv_ = nullptr,
         *dfch_ = nullptr;
  float* kernel_scratch_ = nullptr;
  char* encoder_scratch_ = nullptr;
  double* reduce_scratch_ = nullptr;
  std::vector<float> host_losses_;

  int B_ = 0, T_ = 0;
  bool training_ = false, have_forward_ = false;
  uint64_t rng_step_ = 0;
};

// --- forward -----------------------------------------------------------------

template <typename floatX>
coord::Status CudaModel<floatX>::LayerForward(int l, const LayerActs<floatX>& a, const floatX* in,
                                              floatX* out) {
  const int B = B_, T = T_, C = config_.hidden_size, NH = config_.num_attention_heads;
  const int BT = B * T;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const LayerWeights<floatX> w = Weights(l);
  const float p_hidden = training_ ? config_.hidden_dropout : 0.0f;
  const float p_attn = training_ ? config_.attention_dropout : 0.0f;
  const float eps = config_.layernorm_epsilon;
  cudaStream_t s = stream_;

  RETURN_IF_ERROR(kc::layernorm_forward<floatX>(a.ln1, a.ln1_mean, a.ln1_rstd, in, w.ln1w, w.ln1b,
                                                BT, C, eps, s));
  RETURN_IF_ERROR(kc::matmul_forward<floatX>(matmul_, a.qkv, nullptr, a.ln1, w.qkvw, w.qkvb, BT, C,
                                             3 * C, kc::MatmulEpilogue::kBias, s));
  RETURN_IF_ERROR(kc::attention_forward<floatX>(a.atty, a.lse, a.qkv, B, T, C, NH, p_attn,
                                                DropoutRng(l, DropoutSite::kAttentionProbs), s));
  RETURN_IF_ERROR(kc::matmul_forward<floatX>(matmul_, scratch_, nullptr, a.atty, w.attprojw,
                                             w.attprojb, BT, C, C, kc::MatmulEpilogue::kBias, s));
  RETURN_IF_ERROR(kc::residual_dropout_forward<floatX>(a.residual2, in, scratch_, BTC, p_hidden,
                                                       DropoutRng(l, DropoutSite::kAttentionOut),
                                                       RowElems(), s));
  RETURN_IF_ERROR(kc::layernorm_forward<floatX>(a.ln2, a.ln2_mean, a.ln2_rstd, a.residual2, w.ln2w,
                                                w.ln2b, BT, C, eps, s));
  RETURN_IF_ERROR(kc::matmul_forward<floatX>(matmul_, a.fch_gelu, a.fch, a.ln2, w.fcw, w.fcb, BT, C,
                                             4 * C, kc::MatmulEpilogue::kBiasGelu, s));
  RETURN_IF_ERROR(kc::matmul_forward<floatX>(matmul_, scratch_, nullptr, a.fch_gelu, w.fcprojw,
                                             w.fcprojb, BT, 4 * C, C, kc::MatmulEpilogue::kBias,
                                             s));
  RETURN_IF_ERROR(kc::residual_dropout_forward<floatX>(out, a.residual2, scratch_, BTC, p_hidden,
                                                       DropoutRng(l, DropoutSite::kMlpOut),
                                                       RowElems(), s));
  return coord::Status::Ok();
}

template <typename floatX>
coord::StatusOr<float> CudaModel<floatX>::Forward(const int* inputs, const int* targets, int B,
                                                  int T, const StepOptions& options) {
  if (B <= 0 || T <= 0 || B > max_batch_ || T > max_seq_) {
    return coord::InvalidArgument("CudaGptModel::Forward: batch (B=" + std::to_string(B) +
                                  ", T=" + std::to_string(T) + ") outside the allocated (" +
                                  std::to_string(max_batch_) + ", " + std::to_string(max_seq_) +
                                  ")");
  }
  const int V = config_.vocab_size, BT = B * T;
  for (int i = 0; i < BT; ++i) {
    if (inputs[i] < 0 || inputs[i] >= V || targets[i] < 0 || targets[i] >= V) {
      return coord::InvalidArgument("CudaGptModel::Forward: token " + std::to_string(i) +
                                    " (input " + std::to_string(inputs[i]) + ", target " +
                                    std::to_string(targets[i]) + ") outside the vocabulary [0, " +
                                    std::to_string(V) + ")");
    }
  }
  B_ = B;
  T_ = T;
  training_ = options.training;
  rng_step_ = options.rng_step;
  const int C = config_.hidden_size, L = config_.num_layers, Vp = config_.padded_vocab_size();
  const size_t BTC = static_cast<size_t>(BT) * C;
  cudaStream_t s = stream_;
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(inputs_, inputs, BT * sizeof(int), cudaMemcpyHostToDevice, s));
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(targets_, targets, BT * sizeof(int), cudaMemcpyHostToDevice, s));
  RETURN_IF_ERROR(kc::encoder_forward<floatX>(residual_, inputs_, P(0), P(1), B, T, C, s));
  if (training_ && config_.hidden_dropout > 0.0f) {
    RETURN_IF_ERROR(kc::dropout_forward<floatX>(residual_, residual_, BTC, config_.hidden_dropout,
                                                DropoutRng(-1, DropoutSite::kEmbedding), RowElems(),
                                                s));
  }
  for (int l = 0; l < L; ++l) {
    const LayerActs<floatX>& a =
        slots_[config_.checkpoint_activations ? 0 : static_cast<size_t>(l)];
    RETURN_IF_ERROR(LayerForward(l, a, ResidualAt(l), ResidualAt(l + 1)));
  }
  RETURN_IF_ERROR(kc::layernorm_forward<floatX>(lnf_, lnf_mean_, lnf_rstd_, ResidualAt(L),
                                                P(lnf_index()), P(lnf_index() + 1), BT, C,
                                                config_.layernorm_epsilon, s));
  RETURN_IF_ERROR(kc::matmul_forward<floatX>(matmul_, logits_, nullptr, lnf_, P(0), nullptr, BT, C,
                                             Vp, kc::MatmulEpilogue::kNone, s));
  RETURN_IF_ERROR(kc::softmax_cross_entropy_forward<floatX>(losses_, loss_lse_, logits_, targets_,
                                                            BT, V, Vp, s));
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(host_losses_.data(), losses_, BT * sizeof(float), cudaMemcpyDeviceToHost, s));
  RETURN_IF_ERROR(Synchronize());
  double sum = 0.0;  // in token order, as the CPU model: deterministic
  for (int i = 0; i < BT; ++i) sum += host_losses_[static_cast<size_t>(i)];
  have_forward_ = true;
  return static_cast<float>(sum / BT);
}

// --- backward ----------------------------------------------------------------

// On entry dresidual_ holds d(loss)/d(out of layer l); on exit d/d(in).
template <typename floatX>
coord::Status CudaModel<floatX>::LayerBackward(int l, const LayerActs<floatX>& a,
                                               const floatX* in) {
  const int B = B_, T = T_, C = config_.hidden_size, NH = config_.num_attention_heads;
  const int BT = B * T;
  const size_t BTC = static_cast<size_t>(BT) * C;
  const LayerWeights<floatX> w = Weights(l);
  const LayerWeights<float> g = Grads(l);
  const float p_hidden = training_ ? config_.hidden_dropout : 0.0f;
  const float p_attn = training_ ? config_.attention_dropout : 0.0f;
  cudaStream_t s = stream_;
  float* scratch = kernel_scratch_;

  // out = residual2 + dropout(fc_proj(gelu(fc(ln2)))): dresidual flows to residual2.
  const floatX* dproj = dresidual_;
  if (p_hidden > 0.0f) {
    RETURN_IF_ERROR(kc::dropout_forward<floatX>(
        dbtc_, dresidual_, BTC, p_hidden, DropoutRng(l, DropoutSite::kMlpOut), RowElems(), s));
    dproj = dbtc_;
  }
  // d(fch) = (dproj @ Wfcproj) * gelu'(fch), fused in the matmul's epilogue.
  RETURN_IF_ERROR(kc::matmul_backward<floatX>(matmul_, dfch_, g.fcprojw, g.fcprojb, dproj,
                                              a.fch_gelu, w.fcprojw, a.fch, BT, 4 * C, C, scratch,
                                              s));
  RETURN_IF_ERROR(kc::matmul_backward<floatX>(matmul_, dbtc2_, g.fcw, g.fcb, dfch_, a.ln2, w.fcw,
                                              nullptr, BT, C, 4 * C, scratch, s));
  RETURN_IF_ERROR(kc::layernorm_backward<floatX>(dresidual_, g.ln2w, g.ln2b, dbtc2_, a.residual2,
                                                 w.ln2w, a.ln2_mean, a.ln2_rstd, BT, C, scratch,
                                                 s));

  // residual2 = in + dropout(attn_proj(attention(ln1(in)))).
  dproj = dresidual_;
  if (p_hidden > 0.0f) {
    RETURN_IF_ERROR(kc::dropout_forward<floatX>(dbtc_, dresidual_, BTC, p_hidden,
                                                DropoutRng(l, DropoutSite::kAttentionOut),
                                                RowElems(), s));
    dproj = dbtc_;
  }
  RETURN_IF_ERROR(kc::matmul_backward<floatX>(matmul_, dbtc2_, g.attprojw, g.attprojb, dproj,
                                              a.atty, w.attprojw, nullptr, BT, C, C, scratch, s));
  RETURN_IF_ERROR(
      kc::attention_backward<floatX>(dqkv_, dbtc2_, a.qkv, a.atty, a.lse, B, T, C, NH, p_attn,
                                     DropoutRng(l, DropoutSite::kAttentionProbs), scratch, s));
  RETURN_IF_ERROR(kc::matmul_backward<floatX>(matmul_, dbtc_, g.qkvw, g.qkvb, dqkv_, a.ln1, w.qkvw,
                                              nullptr, BT, C, 3 * C, scratch, s));
  RETURN_IF_ERROR(kc::layernorm_backward<floatX>(dresidual_, g.ln1w, g.ln1b, dbtc_, in, w.ln1w,
                                                 a.ln1_mean, a.ln1_rstd, BT, C, scratch, s));
  return coord::Status::Ok();
}

template <typename floatX>
coord::Status CudaModel<floatX>::Backward(float loss_scale,
                                          const GptModel::GradsReadyFn& grads_ready) {
  if (!have_forward_) {
    return coord::FailedPrecondition("CudaGptModel::Backward without a preceding Forward");
  }
  have_forward_ = false;  // the logits are overwritten with their gradient below
  const int B = B_, T = T_, BT = B * T, C = config_.hidden_size, L = config_.num_layers;
  const int V = config_.vocab_size, Vp = config_.padded_vocab_size();
  const size_t BTC = static_cast<size_t>(BT) * C;
  cudaStream_t s = stream_;
  float* scratch = kernel_scratch_;

  RETURN_IF_ERROR(kc::softmax_cross_entropy_backward<floatX>(logits_, loss_lse_, targets_, BT, V,
                                                             Vp, loss_scale / BT, s));
  // LM head tied to wte: its weight gradient lands in d(wte).
  RETURN_IF_ERROR(kc::matmul_backward<floatX>(matmul_, dbtc_, G(0), nullptr, logits_, lnf_, P(0),
                                              nullptr, BT, C, Vp, scratch, s));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dresidual_, 0, BTC * sizeof(floatX), s));
  RETURN_IF_ERROR(kc::layernorm_backward<floatX>(dresidual_, G(lnf_index()), G(lnf_index() + 1),
                                                 dbtc_, ResidualAt(L), P(lnf_index()), lnf_mean_,
                                                 lnf_rstd_, BT, C, scratch, s));
  if (grads_ready) grads_ready(layout_.layer_end(L - 1));
  for (int l = L - 1; l >= 0; --l) {
    if (config_.checkpoint_activations) {
      // Recompute layer l from its saved input: same kernels, inputs and masks.
      RETURN_IF_ERROR(LayerForward(l, slots_[0], ResidualAt(l), ResidualAt(l + 1)));
      RETURN_IF_ERROR(LayerBackward(l, slots_[0], ResidualAt(l)));
    } else {
      RETURN_IF_ERROR(LayerBackward(l, slots_[static_cast<size_t>(l)], ResidualAt(l)));
    }
    if (grads_ready) grads_ready(layout_.layer_begin(l));
  }
  if (training_ && config_.hidden_dropout > 0.0f) {
    RETURN_IF_ERROR(kc::dropout_forward<floatX>(dresidual_, dresidual_, BTC, config_.hidden_dropout,
                                                DropoutRng(-1, DropoutSite::kEmbedding), RowElems(),
                                                s));
  }
  RETURN_IF_ERROR(
      kc::encoder_backward<floatX>(G(0), G(1), dresidual_, inputs_, B, T, C, encoder_scratch_, s));
  if (grads_ready) grads_ready(0);
  SamplePeak();
  return coord::Status::Ok();
}

}  // namespace

// --- public ------------------------------------------------------------------

coord::StatusOr<Precision> ParsePrecision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  return coord::InvalidArgument("precision: expected fp32, bf16 or fp16, got \"" + name + "\"");
}

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

std::string DescribeCudaDevice(const CudaDeviceInfo& d) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "GPU %d: %s (sm_%d%d, %d SMs, %s total, %s free)", d.ordinal,
                d.name.c_str(), d.compute_major, d.compute_minor, d.multiprocessors,
                GiB(d.total_bytes).c_str(), GiB(d.free_bytes).c_str());
  return std::string(buf) + ", driver supports CUDA " + coord::CudaVersionString(d.driver_version) +
         ", runtime " + coord::CudaVersionString(d.runtime_version);
}

coord::StatusOr<CudaDeviceInfo> OpenCudaDevice(int ordinal) {
  CudaDeviceInfo info;
  info.ordinal = ordinal;
  cudaDriverGetVersion(&info.driver_version);
  cudaRuntimeGetVersion(&info.runtime_version);
  if (info.driver_version == 0) {
    return coord::FailedPrecondition(
        "training.device is \"cuda\" but no NVIDIA driver is loaded on this machine (CUDA "
        "runtime " +
        coord::CudaVersionString(info.runtime_version) +
        "). Install the driver (coordctl check shows it), or train on the CPU with "
        "training.device \"cpu\"");
  }
  if (info.driver_version < info.runtime_version) {
    return coord::FailedPrecondition(
        "the NVIDIA driver supports CUDA " + coord::CudaVersionString(info.driver_version) +
        " but gpt-rank was built with CUDA " + coord::CudaVersionString(info.runtime_version) +
        ": upgrade the driver (or build against the CUDA the driver supports)");
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    return coord::FailedPrecondition(
        std::string("training.device is \"cuda\" but no CUDA device is visible") +
        (visible != nullptr ? std::string(" (CUDA_VISIBLE_DEVICES=\"") + visible + "\")" : "") +
        ". Check nvidia-smi on this node, or train on the CPU with training.device \"cpu\"");
  }
  if (e != cudaSuccess) {
    return coord::Status(
        coord::StatusCode::kUnavailable,
        std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
  }
  if (ordinal < 0 || ordinal >= count) {
    return coord::FailedPrecondition(
        "CUDA device " + std::to_string(ordinal) + " (LOCAL_RANK) is not visible: this node has " +
        std::to_string(count) + "; launch at most " + std::to_string(count) +
        " ranks per node (launch.nproc_per_node)");
  }
  e = cudaSetDevice(ordinal);
  if (e != cudaSuccess) {
    return coord::Status(
        coord::StatusCode::kUnavailable,
        "cudaSetDevice(" + std::to_string(ordinal) + "): " + cudaGetErrorString(e));
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, ordinal);
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  cudaMemGetInfo(&info.free_bytes, &info.total_bytes);
  if (prop.major < 8) {
    return coord::FailedPrecondition(info.name + " has compute capability " +
                                     std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                                     "; gpt-rank's CUDA backend needs 8.0 or newer (A100, H100)");
  }
  return info;
}

size_t CudaMemoryPlan::total() const {
  return master_bytes + params_copy_bytes + grad_bytes + optimizer_bytes + activation_bytes +
         backward_bytes + workspace_bytes;
}

CudaMemoryPlan PlanCudaMemory(const GptConfig& config, int B, int T, Precision precision) {
  const BufferSizes s = SizesFor(config, B, T);
  const size_t t = precision == Precision::kFp32 ? 4 : 2;
  const GptParamLayout layout(config);
  const size_t N = layout.num_params();
  CudaMemoryPlan p;
  p.num_params = N;
  p.master_bytes = AlignUp(N * 4);
  p.params_copy_bytes = precision == Precision::kFp32 ? 0 : AlignUp(N * t);
  p.grad_bytes = AlignUp(N * 4);
  p.optimizer_bytes = 2 * AlignUp(N * 4);
  const size_t slot = 2 * AlignUp(s.ln * t) + AlignUp(s.qkv * t) + AlignUp(s.atty * t) +
                      AlignUp(s.residual2 * t) + 2 * AlignUp(s.fch * t) + 4 * AlignUp(s.stats * 4) +
                      AlignUp(s.lse * 4);
  p.activation_bytes = static_cast<size_t>(s.slots) * slot + AlignUp(s.residual * t) +
                       AlignUp(s.scratch * t) + AlignUp(s.lnf * t) + 2 * AlignUp(s.stats * 4) +
                       AlignUp(s.logits * t) + 2 * AlignUp(s.losses * 4) +
                       2 * AlignUp(s.tokens * 4);
  p.backward_bytes = 3 * AlignUp(s.dbtc * t) + AlignUp(s.dqkv * t) + AlignUp(s.dfch * t);
  p.workspace_bytes = AlignUp(s.scratch_floats * 4) + AlignUp(s.encoder_scratch_bytes) +
                      AlignUp(s.reduce_doubles * 8) + kMatmulWorkspaceBytes;
  return p;
}

std::string FormatCudaMemoryPlan(const CudaMemoryPlan& p, const GptConfig& config,
                                 Precision precision) {
  std::string out;
  auto line = [&out](const char* what, size_t bytes) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "  %-34s %12.1f MiB\n", what,
                  static_cast<double>(bytes) / (1024.0 * 1024.0));
    out += buf;
  };
  line("master weights (fp32)", p.master_bytes);
  if (p.params_copy_bytes > 0) {
    line(precision == Precision::kBf16 ? "weights copy (bf16)" : "weights copy (fp16)",
         p.params_copy_bytes);
  }
  line("gradients (fp32)", p.grad_bytes);
  line("AdamW m, v (fp32)", p.optimizer_bytes);
  line(config.checkpoint_activations ? "activations (checkpointed)" : "activations",
       p.activation_bytes);
  line("backward buffers", p.backward_bytes);
  line("cuBLASLt workspace + scratch", p.workspace_bytes);
  line("total on the GPU", p.total());
  return out;
}

coord::StatusOr<std::unique_ptr<CudaGptModel>> CudaGptModel::Create(const GptConfig& config,
                                                                    int max_batch, int max_seq,
                                                                    Precision precision, int device,
                                                                    const AdamWConfig& adam) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  if (!config.is_gpt2()) {
    return coord::InvalidArgument(
        "training.device \"cuda\" runs the GPT-2 architecture only: the Llama/Qwen2 options "
        "(model.normalization RMSNorm, position_embedding_type rope, swiglu, "
        "group_query_attention, untie_embeddings_and_output_weights, disable_bias_linear, "
        "ffn_hidden_size other than 4 x hidden_size) run on the CPU (training.device \"cpu\")");
  }
  if (max_batch <= 0 || max_seq <= 0 || max_seq > config.max_position_embeddings) {
    return coord::InvalidArgument(
        "CudaGptModel: need 0 < batch and 0 < seq <= "
        "max_position_embeddings, got B=" +
        std::to_string(max_batch) + " T=" + std::to_string(max_seq));
  }
  const int hs = config.head_size();
  if (hs != 32 && hs != 64 && hs != 128) {
    return coord::InvalidArgument(
        "the CUDA attention kernel needs a head size (hidden_size / "
        "num_attention_heads) of 32, 64 or 128, got " +
        std::to_string(hs));
  }
  ASSIGN_OR_RETURN(CudaDeviceInfo info, OpenCudaDevice(device));
  const CudaMemoryPlan plan = PlanCudaMemory(config, max_batch, max_seq, precision);
  // Leave room for the CUDA context, cuBLASLt's and NCCL's own buffers.
  const size_t headroom = size_t{512} << 20;
  auto oom = [&](const std::string& what) {
    const CudaMemoryPlan ckpt = [&] {
      GptConfig c = config;
      c.checkpoint_activations = true;
      return PlanCudaMemory(c, max_batch, max_seq, precision);
    }();
    std::string advice = "reduce training.micro_batch_size (now " + std::to_string(max_batch) + ")";
    if (!config.checkpoint_activations) {
      advice += ", set model.checkpoint_activations (plan " + GiB(ckpt.total()) + ")";
    }
    advice +=
        ", or shard the optimizer state over data-parallel ranks (zero_optimization."
        "stage 1 saves up to " +
        GiB(plan.optimizer_bytes) + " per GPU)";
    return coord::Status(coord::StatusCode::kResourceExhausted,
                         what + ". The memory plan for micro batch " + std::to_string(max_batch) +
                             ", seq " + std::to_string(max_seq) + " in " +
                             PrecisionName(precision) + ":\n" +
                             FormatCudaMemoryPlan(plan, config, precision) + "To fit: " + advice);
  };
  if (plan.total() + headroom > info.free_bytes) {
    return oom("out of GPU memory before the first step: the plan needs " + GiB(plan.total()) +
               " (+" + GiB(headroom) + " headroom) but " + info.name + " has " +
               GiB(info.free_bytes) + " free of " + GiB(info.total_bytes));
  }
  const size_t used_before = info.total_bytes - info.free_bytes;
  std::unique_ptr<CudaGptModel> model;
  coord::Status init;
  switch (precision) {
    case Precision::kFp32: {
      auto m = std::make_unique<CudaModel<float>>(config, max_batch, max_seq, precision, info, adam,
                                                  plan);
      init = m->Init(used_before);
      model = std::move(m);
      break;
    }
    case Precision::kBf16: {
      auto m = std::make_unique<CudaModel<__nv_bfloat16>>(config, max_batch, max_seq, precision,
                                                          info, adam, plan);
      init = m->Init(used_before);
      model = std::move(m);
      break;
    }
    case Precision::kFp16: {
      auto m = std::make_unique<CudaModel<__half>>(config, max_batch, max_seq, precision, info,
                                                   adam, plan);
      init = m->Init(used_before);
      model = std::move(m);
      break;
    }
  }
  if (init.code() == coord::StatusCode::kResourceExhausted) return oom(init.message());
  RETURN_IF_ERROR(init);
  return model;
}

}  // namespace trainer
