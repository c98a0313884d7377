// Sum of squares (deterministic, in double) and in-place scaling of the flat fp32
// gradient buffer.
//
// Determinism: the grid is a constant (kPartials blocks of kBlock threads) on every GPU,
// thread t always owns the same 4-element chunks (t, t + stride, ...) whatever the
// buffer's alignment (alignment only picks how a chunk is loaded), each block reduces
// its threads in a fixed tree, and one block adds the kPartials block sums in a fixed
// tree. So a given N gives the same bits on every run and device. Squares of floats are
// exact in double, so contraction into DFMA changes nothing.
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/reduce.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int kPartials = 1024;  // blocks of the first pass; also the final block's size

static_assert(kBlock % 32 == 0 && kPartials % 32 == 0 && kPartials <= 1024, "");

// Sum of v over the block in a fixed order; the result is valid in thread 0.
template <int kThreads>
__device__ double BlockSum(double v) {
  __shared__ double warp_sums[kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : 0.0;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

template <bool kAligned>
__global__ void __launch_bounds__(kBlock)
    sum_of_squares_partials_kernel(double* partials, const float* x, size_t N) {
  const size_t stride = static_cast<size_t>(kPartials) * kBlock;
  const size_t chunks = CEIL_DIV(N, static_cast<size_t>(4));
  double sum = 0.0;
  for (size_t c = static_cast<size_t>(blockIdx.x) * kBlock + threadIdx.x; c < chunks; c += stride) {
    const size_t i0 = 4 * c;
    if (kAligned && i0 + 4 <= N) {
      const float4 q = reinterpret_cast<const float4*>(x)[c];
      sum += static_cast<double>(q.x) * q.x;
      sum += static_cast<double>(q.y) * q.y;
      sum += static_cast<double>(q.z) * q.z;
      sum += static_cast<double>(q.w) * q.w;
    } else {
      for (size_t i = i0; i < i0 + 4 && i < N; ++i) sum += static_cast<double>(x[i]) * x[i];
    }
  }
  sum = BlockSum<kBlock>(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void __launch_bounds__(kPartials)
    sum_of_squares_final_kernel(double* out, const double* partials) {
  const double total = BlockSum<kPartials>(partials[threadIdx.x]);
  if (threadIdx.x == 0) *out += total;
}

template <int kVec>
__global__ void scale_kernel(float* x, size_t N, float coef) {
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t packs = N / kVec;
  if (kVec == 4) {
    for (size_t q = first; q < packs; q += stride) {
      float4 v = reinterpret_cast<float4*>(x)[q];
      v.x *= coef;
      v.y *= coef;
      v.z *= coef;
      v.w *= coef;
      reinterpret_cast<float4*>(x)[q] = v;
    }
  }
  for (size_t i = (kVec == 4 ? packs * kVec : 0) + first; i < N; i += stride) x[i] *= coef;
}

}  // namespace

size_t reduce_scratch_doubles() { return kPartials; }

coord::Status sum_of_squares(double* out, const float* x, size_t N, double* scratch,
                             cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  if (Aligned16(x)) {
    sum_of_squares_partials_kernel<true><<<kPartials, kBlock, 0, stream>>>(scratch, x, N);
  } else {
    sum_of_squares_partials_kernel<false><<<kPartials, kBlock, 0, stream>>>(scratch, x, N);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  sum_of_squares_final_kernel<<<1, kPartials, 0, stream>>>(out, scratch);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

coord::Status scale_in_place(float* x, size_t N, float coef, cudaStream_t stream) {
  if (N == 0) return coord::Status::Ok();
  if (Aligned16(x)) {
    scale_kernel<4><<<ElementwiseGrid(N / 4), kBlock, 0, stream>>>(x, N, coef);
  } else {
    scale_kernel<1><<<ElementwiseGrid(N), kBlock, 0, stream>>>(x, N, coef);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

}  // namespace kernels::cuda
