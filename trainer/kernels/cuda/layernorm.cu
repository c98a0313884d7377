// LayerNorm (see layernorm.cuh). One warp per row in both directions, 16-byte vector
// accesses when C and the pointers allow it, statistics in fp32 with the CPU twin's
// formula (two-pass biased variance, rstd = 1/sqrt(var + eps)).
//
// Backward, deterministic without atomics: a block of kBwdWarps warps walks its rows in
// rounds (one row per warp per round). Each warp's dweight/dbias contributions for a
// 32*kVec-column chunk go to its own shared-memory slot; after a barrier the block adds
// the slots in warp order into its per-block totals (each column owned by one thread).
// The per-block totals go to scratch and a second kernel adds them in block order.
#include <algorithm>
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/layernorm.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

__device__ inline float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// 16-byte shared-memory stores when kVec allows: fewer bank conflicts than kVec scalar
// stores at a stride of kVec words.
template <int kVec>
__device__ inline void StoreSlot(float* p, const float (&in)[kVec]) {
  if constexpr (kVec % 4 == 0) {
#pragma unroll
    for (int k = 0; k < kVec; k += 4) {
      *reinterpret_cast<float4*>(p + k) = make_float4(in[k], in[k + 1], in[k + 2], in[k + 3]);
    }
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) p[k] = in[k];
  }
}

constexpr int kWarpSize = 32;
constexpr int kFwdWarps = 8;        // rows per forward block
constexpr int kBwdWarps = 8;        // rows per backward block and round
constexpr int kBwdMaxBlocks = 512;  // bounds the scratch and the final reduction
constexpr int kReduceRows = 8;      // threadIdx.y extent of the final reduction

// Depends on N only, so the scratch size is known before the launch.
int BackwardBlocks(int N) { return std::max(1, std::min(CEIL_DIV(N, kBwdWarps), kBwdMaxBlocks)); }

// ----------------------------------------------------------------------------
// kernels

template <typename floatX, int kVec>
__global__ void __launch_bounds__(kFwdWarps* kWarpSize)
    layernorm_forward_kernel(floatX* __restrict__ out, float* __restrict__ mean,
                             float* __restrict__ rstd, const floatX* __restrict__ inp,
                             const floatX* __restrict__ weight, const floatX* __restrict__ bias,
                             int N, int C, float eps) {
  const int lane = threadIdx.x % kWarpSize;
  const int row = blockIdx.x * kFwdWarps + threadIdx.x / kWarpSize;
  if (row >= N) return;  // whole warp: the shuffles below see all 32 lanes
  constexpr int kStride = kWarpSize * kVec;
  const floatX* x = inp + static_cast<size_t>(row) * C;
  floatX* y = out + static_cast<size_t>(row) * C;

  float sum = 0.0f;
  for (int c = lane * kVec; c < C; c += kStride) {
    float v[kVec];
    LoadAsFloat<floatX, kVec>(x + c, v);
#pragma unroll
    for (int k = 0; k < kVec; ++k) sum += v[k];
  }
  const float m = WarpSum(sum) / C;
  // Second pass over the row (from L1) for the variance: no E[x^2]-m^2 cancellation.
  float sq = 0.0f;
  for (int c = lane * kVec; c < C; c += kStride) {
    float v[kVec];
    LoadAsFloat<floatX, kVec>(x + c, v);
#pragma unroll
    for (int k = 0; k < kVec; ++k) sq += (v[k] - m) * (v[k] - m);
  }
  const float s = 1.0f / sqrtf(WarpSum(sq) / C + eps);
  for (int c = lane * kVec; c < C; c += kStride) {
    float v[kVec], w[kVec], b[kVec], o[kVec];
    LoadAsFloat<floatX, kVec>(x + c, v);
    LoadAsFloat<floatX, kVec>(weight + c, w);
    LoadAsFloat<floatX, kVec>(bias + c, b);
#pragma unroll
    for (int k = 0; k < kVec; ++k) o[k] = (s * (v[k] - m)) * w[k] + b[k];
    StoreFromFloat<floatX, kVec>(y + c, o);
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// Shared memory: block totals dweight (C,), dbias (C,), then per-warp chunk slots
// (kBwdWarps, 2, 32*kVec). partials (gridDim.x, 2, C): this block's totals.
template <typename floatX, int kVec>
__global__ void __launch_bounds__(kBwdWarps* kWarpSize)
    layernorm_backward_kernel(floatX* __restrict__ dinp, float* __restrict__ partials,
                              const floatX* __restrict__ dout, const floatX* __restrict__ inp,
                              const floatX* __restrict__ weight, const float* __restrict__ mean,
                              const float* __restrict__ rstd, int N, int C) {
  constexpr int kChunk = kWarpSize * kVec;  // columns a warp covers per step
  extern __shared__ __align__(16) float smem[];
  float* block_totals = smem;        // dweight (C,) then dbias (C,)
  float* warp_slots = smem + 2 * C;  // (kBwdWarps, 2, kChunk)
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  float* my_slot = warp_slots + warp * 2 * kChunk;

  for (int i = threadIdx.x; i < 2 * C; i += blockDim.x) block_totals[i] = 0.0f;
  __syncthreads();

  const int rows_per_round = gridDim.x * kBwdWarps;
  const int rounds = CEIL_DIV(N, rows_per_round);
  for (int round = 0; round < rounds; ++round) {
    // Every warp runs every round and chunk (rows past N contribute zeros), so the
    // barriers below are reached by the whole block.
    const int row = round * rows_per_round + blockIdx.x * kBwdWarps + warp;
    const bool valid = row < N;
    const size_t offset = static_cast<size_t>(valid ? row : 0) * C;
    const floatX* dy_row = dout + offset;
    const floatX* x_row = inp + offset;
    floatX* dx_row = dinp + offset;
    float m = 0.0f, s = 0.0f, dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    if (valid) {
      m = mean[row];
      s = rstd[row];
      for (int c = lane * kVec; c < C; c += kChunk) {
        float dy[kVec], x[kVec], w[kVec];
        LoadAsFloat<floatX, kVec>(dy_row + c, dy);
        LoadAsFloat<floatX, kVec>(x_row + c, x);
        LoadAsFloat<floatX, kVec>(weight + c, w);
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          const float dnorm = w[k] * dy[k];
          dnorm_mean += dnorm;
          dnorm_norm_mean += dnorm * ((x[k] - m) * s);
        }
      }
      dnorm_mean = WarpSum(dnorm_mean) / C;
      dnorm_norm_mean = WarpSum(dnorm_norm_mean) / C;
    }

    for (int c0 = 0; c0 < C; c0 += kChunk) {
      const int c = c0 + lane * kVec;
      float dw[kVec], db[kVec];
#pragma unroll
      for (int k = 0; k < kVec; ++k) dw[k] = db[k] = 0.0f;
      if (valid && c < C) {
        float dy[kVec], x[kVec], w[kVec], dx[kVec];
        LoadAsFloat<floatX, kVec>(dy_row + c, dy);
        LoadAsFloat<floatX, kVec>(x_row + c, x);
        LoadAsFloat<floatX, kVec>(weight + c, w);
        LoadAsFloat<floatX, kVec>(dx_row + c, dx);
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          const float xhat = (x[k] - m) * s;
          const float dnorm = w[k] * dy[k];
          dx[k] += (dnorm - dnorm_mean - xhat * dnorm_norm_mean) * s;
          dw[k] = xhat * dy[k];
          db[k] = dy[k];
        }
        StoreFromFloat<floatX, kVec>(dx_row + c, dx);
      }
      StoreSlot<kVec>(my_slot + lane * kVec, dw);
      StoreSlot<kVec>(my_slot + kChunk + lane * kVec, db);
      __syncthreads();
      // Slot entry j (dweight for j < kChunk, else dbias) always goes to the same
      // thread, which adds the warps in order: a fixed summation order.
      for (int j = threadIdx.x; j < 2 * kChunk; j += blockDim.x) {
        const int col = c0 + j % kChunk;
        if (col < C) {
          float sum = 0.0f;
#pragma unroll
          for (int w = 0; w < kBwdWarps; ++w) sum += warp_slots[w * 2 * kChunk + j];
          block_totals[(j < kChunk ? 0 : C) + col] += sum;
        }
      }
      __syncthreads();
    }
  }

  float* block_partials = partials + static_cast<size_t>(blockIdx.x) * 2 * C;
  for (int i = threadIdx.x; i < 2 * C; i += blockDim.x) block_partials[i] = block_totals[i];
}

// dweight/dbias (C,) += sum over blocks of partials (num_blocks, 2, C). Block
// (32, kReduceRows): threadIdx.y strides over the blocks, then row 0 adds the
// kReduceRows partial sums in order.
__global__ void layernorm_param_grad_kernel(float* __restrict__ dweight, float* __restrict__ dbias,
                                            const float* __restrict__ partials, int num_blocks,
                                            int C) {
  __shared__ float sums[2][kReduceRows][kWarpSize + 1];
  const int col = blockIdx.x * kWarpSize + threadIdx.x;
  float dw = 0.0f, db = 0.0f;
  if (col < C) {
    for (int b = threadIdx.y; b < num_blocks; b += kReduceRows) {
      dw += partials[static_cast<size_t>(b) * 2 * C + col];
      db += partials[static_cast<size_t>(b) * 2 * C + C + col];
    }
  }
  sums[0][threadIdx.y][threadIdx.x] = dw;
  sums[1][threadIdx.y][threadIdx.x] = db;
  __syncthreads();
  if (threadIdx.y == 0 && col < C) {
    float total_dw = 0.0f, total_db = 0.0f;
#pragma unroll
    for (int r = 0; r < kReduceRows; ++r) {
      total_dw += sums[0][r][threadIdx.x];
      total_db += sums[1][r][threadIdx.x];
    }
    dweight[col] += total_dw;
    dbias[col] += total_db;
  }
}

template <typename floatX, int kVec>
coord::Status LaunchBackward(floatX* dinp, float* partials, const floatX* dout, const floatX* inp,
                             const floatX* weight, const float* mean, const float* rstd, int N,
                             int C, int blocks, cudaStream_t stream) {
  const size_t smem =
      (2 * static_cast<size_t>(C) + kBwdWarps * 2 * kWarpSize * kVec) * sizeof(float);
  auto* kernel = layernorm_backward_kernel<floatX, kVec>;
  if (smem > 48 * 1024) {
    int device = 0, max_smem = 0;
    CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (smem > static_cast<size_t>(max_smem)) {
      return coord::InvalidArgument(
          "layernorm_backward: C = " + std::to_string(C) + " needs " + std::to_string(smem) +
          " bytes of shared memory, the device allows " + std::to_string(max_smem));
    }
    CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(smem)));
  }
  kernel<<<blocks, kBwdWarps * kWarpSize, smem, stream>>>(dinp, partials, dout, inp, weight, mean,
                                                          rstd, N, C);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status layernorm_forward(floatX* out, float* mean, float* rstd, const floatX* inp,
                                const floatX* weight, const floatX* bias, int N, int C, float eps,
                                cudaStream_t stream) {
  if (N == 0 || C == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  const bool vectorized =
      C % kVec == 0 && Aligned16(out) && Aligned16(inp) && Aligned16(weight) && Aligned16(bias);
  const int blocks = CEIL_DIV(N, kFwdWarps);
  if (vectorized) {
    layernorm_forward_kernel<floatX, kVec><<<blocks, kFwdWarps * kWarpSize, 0, stream>>>(
        out, mean, rstd, inp, weight, bias, N, C, eps);
  } else {
    layernorm_forward_kernel<floatX, 1><<<blocks, kFwdWarps * kWarpSize, 0, stream>>>(
        out, mean, rstd, inp, weight, bias, N, C, eps);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

size_t layernorm_backward_scratch_floats(int N, int C) {
  return static_cast<size_t>(BackwardBlocks(N)) * 2 * C;
}

template <typename floatX>
coord::Status layernorm_backward(floatX* dinp, float* dweight, float* dbias, const floatX* dout,
                                 const floatX* inp, const floatX* weight, const float* mean,
                                 const float* rstd, int N, int C, float* scratch,
                                 cudaStream_t stream) {
  if (N == 0 || C == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  const bool vectorized =
      C % kVec == 0 && Aligned16(dinp) && Aligned16(dout) && Aligned16(inp) && Aligned16(weight);
  const int blocks = BackwardBlocks(N);
  if (vectorized) {
    RETURN_IF_ERROR((LaunchBackward<floatX, kVec>(dinp, scratch, dout, inp, weight, mean, rstd, N,
                                                  C, blocks, stream)));
  } else {
    RETURN_IF_ERROR((LaunchBackward<floatX, 1>(dinp, scratch, dout, inp, weight, mean, rstd, N, C,
                                               blocks, stream)));
  }
  layernorm_param_grad_kernel<<<CEIL_DIV(C, kWarpSize), dim3(kWarpSize, kReduceRows), 0, stream>>>(
      dweight, dbias, scratch, blocks, C);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                       \
  template coord::Status layernorm_forward<floatX>(floatX*, float*, float*, const floatX*,        \
                                                   const floatX*, const floatX*, int, int, float, \
                                                   cudaStream_t);                                 \
  template coord::Status layernorm_backward<floatX>(floatX*, float*, float*, const floatX*,       \
                                                    const floatX*, const floatX*, const float*,   \
                                                    const float*, int, int, float*, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
