// RMSNorm (see rmsnorm.cuh). One warp per row for the output and dinp, 16-byte vector
// accesses when C and the pointers allow it, the row's mean square in fp32 as the CPU
// twin computes it. The weight gradient: each thread owns (row chunk, column) and
// walks the chunk's rows in order into scratch (chunks, C); a second kernel adds the
// chunks in order. No atomics: the bits do not depend on the launch.
#include <algorithm>
#include <string>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/rmsnorm.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

constexpr int kWarpSize = 32;
constexpr int kRowWarps = 8;  // rows per block (forward, dinp)
constexpr int kColBlock = 256;

// The CPU twin's chunking (kernels/cpu/reduce.h): 32 chunks, or one per row below 32.
int NumChunks(int rows) { return rows < 32 ? std::max(rows, 1) : 32; }
__host__ __device__ inline int ChunkBegin(int rows, int chunks, int chunk) {
  return static_cast<int>(static_cast<long long>(rows) * chunk / chunks);
}

__device__ inline float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// ----------------------------------------------------------------------------
// kernels

template <typename floatX, int kVec>
__global__ void __launch_bounds__(kRowWarps* kWarpSize)
    rmsnorm_forward_kernel(floatX* __restrict__ out, float* __restrict__ rstd,
                           const floatX* __restrict__ inp, const floatX* __restrict__ weight, int N,
                           int C, float eps) {
  const int lane = threadIdx.x % kWarpSize;
  const int row = blockIdx.x * kRowWarps + threadIdx.x / kWarpSize;
  if (row >= N) return;  // whole warp
  constexpr int kStride = kWarpSize * kVec;
  const floatX* x = inp + static_cast<size_t>(row) * C;
  floatX* y = out + static_cast<size_t>(row) * C;
  float ss = 0.0f;
  for (int c = lane * kVec; c < C; c += kStride) {
    float v[kVec];
    LoadAsFloat<floatX, kVec>(x + c, v);
#pragma unroll
    for (int k = 0; k < kVec; ++k) ss += v[k] * v[k];
  }
  const float s = 1.0f / sqrtf(WarpSum(ss) / C + eps);
  for (int c = lane * kVec; c < C; c += kStride) {
    float v[kVec], w[kVec], o[kVec];
    LoadAsFloat<floatX, kVec>(x + c, v);
    LoadAsFloat<floatX, kVec>(weight + c, w);
#pragma unroll
    for (int k = 0; k < kVec; ++k) o[k] = (v[k] * s) * w[k];
    StoreFromFloat<floatX, kVec>(y + c, o);
  }
  if (lane == 0) rstd[row] = s;
}

// dinp += rstd * (w dy - xhat * mean(w dy xhat)), one warp per row.
template <typename floatX, int kVec>
__global__ void __launch_bounds__(kRowWarps* kWarpSize)
    rmsnorm_backward_dinp_kernel(floatX* __restrict__ dinp, const floatX* __restrict__ dout,
                                 const floatX* __restrict__ inp, const floatX* __restrict__ weight,
                                 const float* __restrict__ rstd, int N, int C) {
  const int lane = threadIdx.x % kWarpSize;
  const int row = blockIdx.x * kRowWarps + threadIdx.x / kWarpSize;
  if (row >= N) return;
  constexpr int kStride = kWarpSize * kVec;
  const size_t offset = static_cast<size_t>(row) * C;
  const float s = rstd[row];
  float dot = 0.0f;
  for (int c = lane * kVec; c < C; c += kStride) {
    float dy[kVec], x[kVec], w[kVec];
    LoadAsFloat<floatX, kVec>(dout + offset + c, dy);
    LoadAsFloat<floatX, kVec>(inp + offset + c, x);
    LoadAsFloat<floatX, kVec>(weight + c, w);
#pragma unroll
    for (int k = 0; k < kVec; ++k) dot += w[k] * dy[k] * (x[k] * s);
  }
  const float mean_dot = WarpSum(dot) / C;
  for (int c = lane * kVec; c < C; c += kStride) {
    float dy[kVec], x[kVec], w[kVec], dx[kVec];
    LoadAsFloat<floatX, kVec>(dout + offset + c, dy);
    LoadAsFloat<floatX, kVec>(inp + offset + c, x);
    LoadAsFloat<floatX, kVec>(weight + c, w);
    LoadAsFloat<floatX, kVec>(dinp + offset + c, dx);
#pragma unroll
    for (int k = 0; k < kVec; ++k) dx[k] += (w[k] * dy[k] - (x[k] * s) * mean_dot) * s;
    StoreFromFloat<floatX, kVec>(dinp + offset + c, dx);
  }
}

// partials (chunks, C): column c of chunk blockIdx.y, rows in order.
template <typename floatX>
__global__ void rmsnorm_weight_partials_kernel(float* __restrict__ partials,
                                               const floatX* __restrict__ dout,
                                               const floatX* __restrict__ inp,
                                               const float* __restrict__ rstd, int N, int C) {
  const int col = blockIdx.x * kColBlock + threadIdx.x;
  if (col >= C) return;
  const int chunks = gridDim.y, chunk = blockIdx.y;
  float sum = 0.0f;
  for (int n = ChunkBegin(N, chunks, chunk); n < ChunkBegin(N, chunks, chunk + 1); ++n) {
    const size_t i = static_cast<size_t>(n) * C + col;
    sum += (ToFloat<floatX>(inp[i]) * rstd[n]) * ToFloat<floatX>(dout[i]);
  }
  partials[static_cast<size_t>(chunk) * C + col] = sum;
}

__global__ void rmsnorm_weight_reduce_kernel(float* __restrict__ dweight,
                                             const float* __restrict__ partials, int chunks,
                                             int C) {
  const int col = blockIdx.x * kColBlock + threadIdx.x;
  if (col >= C) return;
  float sum = 0.0f;
  for (int chunk = 0; chunk < chunks; ++chunk) sum += partials[static_cast<size_t>(chunk) * C + col];
  dweight[col] += sum;
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status rmsnorm_forward(floatX* out, float* rstd, const floatX* inp, const floatX* weight,
                              int N, int C, float eps, cudaStream_t stream) {
  if (N == 0 || C == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  const int blocks = CEIL_DIV(N, kRowWarps);
  if (C % kVec == 0 && Aligned16(out) && Aligned16(inp) && Aligned16(weight)) {
    rmsnorm_forward_kernel<floatX, kVec>
        <<<blocks, kRowWarps * kWarpSize, 0, stream>>>(out, rstd, inp, weight, N, C, eps);
  } else {
    rmsnorm_forward_kernel<floatX, 1>
        <<<blocks, kRowWarps * kWarpSize, 0, stream>>>(out, rstd, inp, weight, N, C, eps);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

size_t rmsnorm_backward_scratch_floats(int N, int C) {
  return static_cast<size_t>(NumChunks(N)) * static_cast<size_t>(C);
}

template <typename floatX>
coord::Status rmsnorm_backward(floatX* dinp, float* dweight, const floatX* dout, const floatX* inp,
                               const floatX* weight, const float* rstd, int N, int C,
                               float* scratch, cudaStream_t stream) {
  if (N == 0 || C == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  const int blocks = CEIL_DIV(N, kRowWarps);
  if (C % kVec == 0 && Aligned16(dinp) && Aligned16(dout) && Aligned16(inp) && Aligned16(weight)) {
    rmsnorm_backward_dinp_kernel<floatX, kVec>
        <<<blocks, kRowWarps * kWarpSize, 0, stream>>>(dinp, dout, inp, weight, rstd, N, C);
  } else {
    rmsnorm_backward_dinp_kernel<floatX, 1>
        <<<blocks, kRowWarps * kWarpSize, 0, stream>>>(dinp, dout, inp, weight, rstd, N, C);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  const int chunks = NumChunks(N);
  rmsnorm_weight_partials_kernel<floatX>
      <<<dim3(CEIL_DIV(C, kColBlock), chunks), kColBlock, 0, stream>>>(scratch, dout, inp, rstd,
                                                                      N, C);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  rmsnorm_weight_reduce_kernel<<<CEIL_DIV(C, kColBlock), kColBlock, 0, stream>>>(dweight, scratch,
                                                                                 chunks, C);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                      \
  template coord::Status rmsnorm_forward<floatX>(floatX*, float*, const floatX*, const floatX*,  \
                                                 int, int, float, cudaStream_t);                 \
  template coord::Status rmsnorm_backward<floatX>(floatX*, float*, const floatX*, const floatX*, \
                                                  const floatX*, const float*, int, int, float*, \
                                                  cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
