// Fused softmax + cross-entropy (see softmax_cross_entropy.cuh). One block per row,
// 16-byte vector accesses when Vp and the pointer allow. Forward reads the row once
// with an online (running max, rescaled sum) logsumexp in fp32 and keeps only lse;
// backward recomputes softmax = exp(logit - lse) and writes the gradient in place.
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/softmax_cross_entropy.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

constexpr int kWarpSize = 32;
constexpr int kThreads = 512;
constexpr int kWarps = kThreads / kWarpSize;

// (max, sum of exp(x - max)) pairs merge by rescaling to the larger max. An empty
// pair is (-inf, 0); two empties stay empty instead of producing exp(-inf + inf).
__device__ inline void MergeMaxSum(float& m, float& s, float other_m, float other_s) {
  const float merged = fmaxf(m, other_m);
  if (merged == -INFINITY) return;
  s = s * expf(m - merged) + other_s * expf(other_m - merged);
  m = merged;
}

// Whole-block merge in a fixed tree (deterministic); every thread gets the result.
__device__ inline void BlockMaxSum(float& m, float& s) {
  __shared__ float shared_m[kWarps], shared_s[kWarps];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    MergeMaxSum(m, s, __shfl_xor_sync(0xffffffffu, m, offset),
                __shfl_xor_sync(0xffffffffu, s, offset));
  }
  if (lane == 0) shared_m[warp] = m, shared_s[warp] = s;
  __syncthreads();
  m = lane < kWarps ? shared_m[lane] : -INFINITY;
  s = lane < kWarps ? shared_s[lane] : 0.0f;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    MergeMaxSum(m, s, __shfl_xor_sync(0xffffffffu, m, offset),
                __shfl_xor_sync(0xffffffffu, s, offset));
  }
}

// ----------------------------------------------------------------------------
// kernels

template <typename floatX, int kVec>
__global__ void __launch_bounds__(kThreads)
    softmax_cross_entropy_forward_kernel(float* __restrict__ losses, float* __restrict__ lse,
                                         const floatX* __restrict__ logits,
                                         const int* __restrict__ targets, int V, int Vp) {
  const int n = blockIdx.x;
  const floatX* row = logits + static_cast<size_t>(n) * Vp;
  // Vectors holding at least one column < V; the last may reach into the padding,
  // which exists because the vector path requires Vp % kVec == 0.
  const int num_vecs = CEIL_DIV(V, kVec);
  float m = -INFINITY, s = 0.0f;
  for (int i = threadIdx.x; i < num_vecs; i += kThreads) {
    const int c = i * kVec;
    float x[kVec];
    LoadAsFloat<floatX, kVec>(row + c, x);
    float vec_max = -INFINITY;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (c + k < V) vec_max = fmaxf(vec_max, x[k]);
    }
    if (vec_max == -INFINITY) continue;
    if (vec_max > m) {
      s *= expf(m - vec_max);
      m = vec_max;
    }
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (c + k < V) s += expf(x[k] - m);
    }
  }
  BlockMaxSum(m, s);
  if (threadIdx.x == 0) {
    const float log_sum = logf(s);
    lse[n] = m + log_sum;
    // (max - target) first: exact-ish, where lse - target would lose ulp(lse) when the
    // logits are large.
    losses[n] = (m - ToFloat<floatX>(row[targets[n]])) + log_sum;
  }
}

template <typename floatX, int kVec>
__global__ void __launch_bounds__(kThreads)
    softmax_cross_entropy_backward_kernel(floatX* logits, const float* __restrict__ lse,
                                          const int* __restrict__ targets, int V, int Vp,
                                          float dloss) {
  const int n = blockIdx.x;
  floatX* row = logits + static_cast<size_t>(n) * Vp;
  const float row_lse = lse[n];
  const int target = targets[n];
  const int num_vecs = Vp / kVec;
  for (int i = threadIdx.x; i < num_vecs; i += kThreads) {
    const int c = i * kVec;
    float x[kVec];
    LoadAsFloat<floatX, kVec>(row + c, x);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const int v = c + k;
      const float prob = expf(x[k] - row_lse);
      x[k] = v < V ? dloss * (prob - (v == target ? 1.0f : 0.0f)) : 0.0f;
    }
    StoreFromFloat<floatX, kVec>(row + c, x);
  }
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status softmax_cross_entropy_forward(float* losses, float* lse, const floatX* logits,
                                            const int* targets, int N, int V, int Vp,
                                            cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  if (Vp % kVec == 0 && Aligned16(logits)) {
    softmax_cross_entropy_forward_kernel<floatX, kVec>
        <<<N, kThreads, 0, stream>>>(losses, lse, logits, targets, V, Vp);
  } else {
    softmax_cross_entropy_forward_kernel<floatX, 1>
        <<<N, kThreads, 0, stream>>>(losses, lse, logits, targets, V, Vp);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

template <typename floatX>
coord::Status softmax_cross_entropy_backward(floatX* logits, const float* lse, const int* targets,
                                             int N, int V, int Vp, float dloss,
                                             cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  if (Vp % kVec == 0 && Aligned16(logits)) {
    softmax_cross_entropy_backward_kernel<floatX, kVec>
        <<<N, kThreads, 0, stream>>>(logits, lse, targets, V, Vp, dloss);
  } else {
    softmax_cross_entropy_backward_kernel<floatX, 1>
        <<<N, kThreads, 0, stream>>>(logits, lse, targets, V, Vp, dloss);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                    \
  template coord::Status softmax_cross_entropy_forward<floatX>(                \
      float*, float*, const floatX*, const int*, int, int, int, cudaStream_t); \
  template coord::Status softmax_cross_entropy_backward<floatX>(               \
      floatX*, const float*, const int*, int, int, int, float, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
