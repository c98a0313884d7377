// Dropout with the CPU twin's Philox masks (kernels/cpu/dropout.cc apply_mask), bit for
// bit. One thread handles one "group": 4 consecutive elements of a row that share one
// Philox block (block k/4 of the row's stream gives words for row indices k..k+3), so
// each block is computed exactly once. Groups are walked (row, block) with a grid-stride
// loop that advances the pair incrementally: two 64-bit divisions per thread, not one
// per group.
#include <cstdint>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/dropout.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

// kVec4: each group's 4 elements are contiguous and 4-element aligned (row_elems % 4 == 0
// or a single row) and every pointer is aligned to 4 elements, so whole groups move as
// one vector; the group holding the end of the tensor goes element by element.
template <typename floatX, bool kVec4>
__global__ void dropout_kernel(floatX* out, const floatX* inp, size_t N, float p, float scale,
                               trainer::RngStream rng, size_t row_elems, size_t rows,
                               size_t groups_per_row) {
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
      const P in = *reinterpret_cast<const P*>(inp + i0);
      P res;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        res.v[j] =
            FromFloat<floatX>(DropoutKeep(r.v[j], p) ? ToFloat<floatX>(in.v[j]) * scale : 0.0f);
      }
      *reinterpret_cast<P*>(out + i0) = res;
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const size_t i = i0 + j;
        if (k0 + j >= row_elems || i >= N) break;
        out[i] = FromFloat<floatX>(DropoutKeep(r.v[j], p) ? ToFloat<floatX>(inp[i]) * scale : 0.0f);
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
coord::Status dropout_forward(floatX* out, const floatX* inp, size_t N, float p,
                              const trainer::RngStream& rng, size_t row_elems,
                              cudaStream_t stream) {
  if (!(p >= 0.0f && p < 1.0f)) {
    return coord::InvalidArgument("dropout_forward: p must be in [0, 1)");
  }
  if (N == 0) return coord::Status::Ok();
  if (p == 0.0f) {  // every uniform is >= 0 and the scale is 1: the identity
    if (out != inp) {
      CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(out, inp, N * sizeof(floatX), cudaMemcpyDeviceToDevice, stream));
    }
    return coord::Status::Ok();
  }
  const float scale = 1.0f / (1.0f - p);
  if (row_elems == 0 || row_elems > N) row_elems = N;
  const size_t rows = CEIL_DIV(N, row_elems);
  const size_t groups_per_row = CEIL_DIV(row_elems, static_cast<size_t>(4));
  const unsigned grid = ElementwiseGrid(rows * groups_per_row);
  const uintptr_t align = 4 * sizeof(floatX);
  const bool vec4 =
      (rows == 1 || row_elems % 4 == 0) && AlignedTo(out, align) && AlignedTo(inp, align);
  if (vec4) {
    dropout_kernel<floatX, true><<<grid, kElementwiseBlock, 0, stream>>>(
        out, inp, N, p, scale, rng, row_elems, rows, groups_per_row);
  } else {
    dropout_kernel<floatX, false><<<grid, kElementwiseBlock, 0, stream>>>(
        out, inp, N, p, scale, rng, row_elems, rows, groups_per_row);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                             \
  template coord::Status dropout_forward<floatX>(floatX*, const floatX*, size_t, float, \
                                                 const trainer::RngStream&, size_t, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
