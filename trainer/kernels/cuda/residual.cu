// Residual add fused with the branch's hidden dropout: out = residual + dropout(x), with
// the CPU twin's Philox masks bit for bit (kernels/cpu/dropout.cc apply_mask; walk and
// vector conditions as in dropout.cu). The sum is fp32 and rounded to floatX once; the
// multiply and add are explicitly rounded (no FMA contraction) so the result equals the
// CPU's dropout_forward then residual_forward, rounded to floatX.
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/dropout.cuh"
#include "trainer/kernels/cuda/residual.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

template <typename floatX>
__device__ __forceinline__ floatX AddDropped(floatX residual, floatX x, bool keep, float scale) {
  return FromFloat<floatX>(
      __fadd_rn(ToFloat<floatX>(residual), keep ? __fmul_rn(ToFloat<floatX>(x), scale) : 0.0f));
}

// p == 0: plain add in kVec-element packs (kVec == 1: unaligned pointers), then the tail.
template <typename floatX, int kVec>
__global__ void residual_kernel(floatX* out, const floatX* residual, const floatX* x, size_t N) {
  using P = Pack<floatX, kVec>;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t packs = N / kVec;
  for (size_t q = first; q < packs; q += stride) {
    const P a = reinterpret_cast<const P*>(residual)[q];
    const P b = reinterpret_cast<const P*>(x)[q];
    P res;
#pragma unroll
    for (int j = 0; j < kVec; ++j) res.v[j] = AddDropped(a.v[j], b.v[j], true, 1.0f);
    reinterpret_cast<P*>(out)[q] = res;
  }
  for (size_t i = packs * kVec + first; i < N; i += stride) {
    out[i] = AddDropped(residual[i], x[i], true, 1.0f);
  }
}

// One thread per group of 4 row elements sharing a Philox block (see dropout.cu).
template <typename floatX, bool kVec4>
__global__ void residual_dropout_kernel(floatX* out, const floatX* residual, const floatX* x,
                                        size_t N, float p, float scale, trainer::RngStream rng,
                                        size_t row_elems, size_t rows, size_t groups_per_row) {
  using P = Pack<floatX, 4>;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t row = first / groups_per_row, blk = first % groups_per_row;
  const size_t row_step = stride / groups_per_row, blk_step = stride % groups_per_row;
  while (row < rows) {
    const trainer::Philox4x32 r = trainer::SampleStream(rng, static_cast<int64_t>(row)).block(blk);
    const size_t k0 = blk * 4;  // index within the row
    const size_t i0 = row * row_elems + k0;
    if (kVec4 && i0 + 4 <= N) {
      const P a = *reinterpret_cast<const P*>(residual + i0);
      const P b = *reinterpret_cast<const P*>(x + i0);
      P res;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        res.v[j] = AddDropped(a.v[j], b.v[j], DropoutKeep(r.v[j], p), scale);
      *reinterpret_cast<P*>(out + i0) = res;
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const size_t i = i0 + j;
        if (k0 + j >= row_elems || i >= N) break;
        out[i] = AddDropped(residual[i], x[i], DropoutKeep(r.v[j], p), scale);
      }
    }
    row += row_step;
    blk += blk_step;
    if (blk >= groups_per_row) {
      blk -= groups_per_row;
      ++row;
    }
  }
}

}  // namespace

template <typename floatX>
coord::Status residual_dropout_forward(floatX* out, const floatX* residual, const floatX* x,
                                       size_t N, float p, const trainer::RngStream& rng,
                                       size_t row_elems, cudaStream_t stream) {
  if (!(p >= 0.0f && p < 1.0f)) {
    return coord::InvalidArgument("residual_dropout_forward: p must be in [0, 1)");
  }
  if (N == 0) return coord::Status::Ok();
  if (p == 0.0f) {
    constexpr int kVec = 16 / sizeof(floatX);
    if (AlignedTo(out, 16) && AlignedTo(residual, 16) && AlignedTo(x, 16)) {
      residual_kernel<floatX, kVec>
          <<<ElementwiseGrid(N / kVec), kElementwiseBlock, 0, stream>>>(out, residual, x, N);
    } else {
      residual_kernel<floatX, 1>
          <<<ElementwiseGrid(N), kElementwiseBlock, 0, stream>>>(out, residual, x, N);
    }
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return coord::Status::Ok();
  }
  const float scale = 1.0f / (1.0f - p);
  if (row_elems == 0 || row_elems > N) row_elems = N;
  const size_t rows = CEIL_DIV(N, row_elems);
  const size_t groups_per_row = CEIL_DIV(row_elems, static_cast<size_t>(4));
  const unsigned grid = ElementwiseGrid(rows * groups_per_row);
  const uintptr_t align = 4 * sizeof(floatX);
  const bool vec4 = (rows == 1 || row_elems % 4 == 0) && AlignedTo(out, align) &&
                    AlignedTo(residual, align) && AlignedTo(x, align);
  if (vec4) {
    residual_dropout_kernel<floatX, true><<<grid, kElementwiseBlock, 0, stream>>>(
        out, residual, x, N, p, scale, rng, row_elems, rows, groups_per_row);
  } else {
    residual_dropout_kernel<floatX, false><<<grid, kElementwiseBlock, 0, stream>>>(
        out, residual, x, N, p, scale, rng, row_elems, rows, groups_per_row);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                    \
  template coord::Status residual_dropout_forward<floatX>(                                     \
      floatX*, const floatX*, const floatX*, size_t, float, const trainer::RngStream&, size_t, \
      cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
