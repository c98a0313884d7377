// Token + position embedding (see encoder.cuh). Forward is one thread per 16-byte
// vector of the output. Backward is deterministic without atomics, and adds in the
// same order as the CPU twin (so fp32 results match it bit for bit):
//   dwpe: each thread owns (t, column vector) and adds dout over b in order;
//   dwte: the (token, position) pairs are sorted by token (CUB radix sort is stable, so
//         positions stay in (b,t) order within a token); the first sorted slot of each
//         run of equal tokens owns that dwte row and adds the run's dout rows in order.
#include <algorithm>
#include <cstdint>
#include <cub/cub.cuh>

#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/encoder.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

// fp32 gradient rows: float4 accesses when kVec is a multiple of 4 (aligned by the caller).
template <int kVec>
__device__ inline void LoadFloats(const float* p, float (&out)[kVec]) {
  if constexpr (kVec % 4 == 0) {
#pragma unroll
    for (int k = 0; k < kVec; k += 4) {
      const float4 q = *reinterpret_cast<const float4*>(p + k);
      out[k] = q.x, out[k + 1] = q.y, out[k + 2] = q.z, out[k + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = p[k];
  }
}

template <int kVec>
__device__ inline void StoreFloats(float* p, const float (&in)[kVec]) {
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

constexpr int kThreads = 256;
constexpr int kDwteThreads = 128;  // column vectors per dwte block (grid.y covers the rest)
constexpr size_t kScratchAlign = 256;

size_t AlignUp(size_t n) { return (n + kScratchAlign - 1) / kScratchAlign * kScratchAlign; }

// ----------------------------------------------------------------------------
// kernels

template <typename floatX, int kVec>
__global__ void encoder_forward_kernel(floatX* __restrict__ out, const int* __restrict__ inp,
                                       const floatX* __restrict__ wte,
                                       const floatX* __restrict__ wpe, int BT, int T, int C) {
  const int vecs_per_row = C / kVec;
  const size_t total = static_cast<size_t>(BT) * vecs_per_row;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int bt = static_cast<int>(i / vecs_per_row);
    const int c = static_cast<int>(i % vecs_per_row) * kVec;
    const int t = bt % T;
    float tok[kVec], pos[kVec], sum[kVec];
    LoadAsFloat<floatX, kVec>(wte + static_cast<size_t>(inp[bt]) * C + c, tok);
    LoadAsFloat<floatX, kVec>(wpe + static_cast<size_t>(t) * C + c, pos);
#pragma unroll
    for (int k = 0; k < kVec; ++k) sum[k] = tok[k] + pos[k];
    StoreFromFloat<floatX, kVec>(out + static_cast<size_t>(bt) * C + c, sum);
  }
}

// One thread per (t, column vector); b in order, starting from the existing value.
template <typename floatX, int kVec>
__global__ void encoder_backward_dwpe_kernel(float* __restrict__ dwpe,
                                             const floatX* __restrict__ dout, int B, int T, int C) {
  const int vecs_per_row = C / kVec;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= T * vecs_per_row) return;
  const int t = i / vecs_per_row;
  const int c = (i % vecs_per_row) * kVec;
  float acc[kVec];
  LoadFloats<kVec>(dwpe + static_cast<size_t>(t) * C + c, acc);
  for (int b = 0; b < B; ++b) {
    float g[kVec];
    LoadAsFloat<floatX, kVec>(dout + (static_cast<size_t>(b) * T + t) * C + c, g);
#pragma unroll
    for (int k = 0; k < kVec; ++k) acc[k] += g[k];
  }
  StoreFloats<kVec>(dwpe + static_cast<size_t>(t) * C + c, acc);
}

__global__ void iota_kernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i;
}

// grid.x: sorted slots; only the first slot of each run of equal tokens does work.
// grid.y * blockDim.x: column vectors.
template <typename floatX, int kVec>
__global__ void encoder_backward_dwte_kernel(float* __restrict__ dwte,
                                             const floatX* __restrict__ dout,
                                             const int* __restrict__ sorted_tokens,
                                             const int* __restrict__ sorted_positions, int BT,
                                             int C) {
  const int first = blockIdx.x;
  const int token = sorted_tokens[first];
  if (first > 0 && sorted_tokens[first - 1] == token) return;
  const int c = (blockIdx.y * blockDim.x + threadIdx.x) * kVec;
  if (c >= C) return;
  float acc[kVec];
  float* row = dwte + static_cast<size_t>(token) * C + c;
  LoadFloats<kVec>(row, acc);
  for (int j = first; j < BT && sorted_tokens[j] == token; ++j) {
    float g[kVec];
    LoadAsFloat<floatX, kVec>(dout + static_cast<size_t>(sorted_positions[j]) * C + c, g);
#pragma unroll
    for (int k = 0; k < kVec; ++k) acc[k] += g[k];
  }
  StoreFloats<kVec>(row, acc);
}

// Scratch layout (each part 256-byte aligned): sorted tokens, positions (0..BT-1),
// sorted positions, CUB temp storage.
struct BackwardScratch {
  int* sorted_tokens;
  int* positions;
  int* sorted_positions;
  void* cub_temp;
  size_t cub_temp_bytes;
};

cudaError_t SortTempBytes(int BT, size_t* bytes) {
  *bytes = 0;
  return cub::DeviceRadixSort::SortPairs(
      nullptr, *bytes, static_cast<const int*>(nullptr), static_cast<int*>(nullptr),
      static_cast<const int*>(nullptr), static_cast<int*>(nullptr), BT);
}

size_t ScratchLayout(int BT, size_t cub_temp_bytes, void* base, BackwardScratch* s) {
  const size_t ints = AlignUp(static_cast<size_t>(BT) * sizeof(int));
  char* p = static_cast<char*>(base);
  if (s != nullptr) {
    s->sorted_tokens = reinterpret_cast<int*>(p);
    s->positions = reinterpret_cast<int*>(p + ints);
    s->sorted_positions = reinterpret_cast<int*>(p + 2 * ints);
    s->cub_temp = p + 3 * ints;
    s->cub_temp_bytes = cub_temp_bytes;
  }
  return 3 * ints + AlignUp(cub_temp_bytes);
}

template <typename floatX, int kVec>
void LaunchBackward(float* dwte, float* dwpe, const floatX* dout, const BackwardScratch& s, int B,
                    int T, int C, cudaStream_t stream) {
  const int vecs_per_row = C / kVec;
  encoder_backward_dwpe_kernel<floatX, kVec>
      <<<CEIL_DIV(T * vecs_per_row, kThreads), kThreads, 0, stream>>>(dwpe, dout, B, T, C);
  const dim3 grid(B * T, CEIL_DIV(vecs_per_row, kDwteThreads));
  encoder_backward_dwte_kernel<floatX, kVec><<<grid, kDwteThreads, 0, stream>>>(
      dwte, dout, s.sorted_tokens, s.sorted_positions, B * T, C);
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status encoder_forward(floatX* out, const int* inp, const floatX* wte, const floatX* wpe,
                              int B, int T, int C, cudaStream_t stream) {
  const int BT = B * T;
  if (BT == 0 || C == 0) return coord::Status::Ok();
  constexpr int kVec = 16 / sizeof(floatX);
  const bool vectorized = C % kVec == 0 && Aligned16(out) && Aligned16(wte) && Aligned16(wpe);
  const size_t work = static_cast<size_t>(BT) * (vectorized ? C / kVec : C);
  // Grid-stride loop: cap the grid, each thread then handles several vectors.
  const int blocks = static_cast<int>(std::min<size_t>(CEIL_DIV(work, kThreads), 1u << 16));
  if (vectorized) {
    encoder_forward_kernel<floatX, kVec>
        <<<blocks, kThreads, 0, stream>>>(out, inp, wte, wpe, BT, T, C);
  } else {
    encoder_forward_kernel<floatX, 1>
        <<<blocks, kThreads, 0, stream>>>(out, inp, wte, wpe, BT, T, C);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

size_t encoder_backward_scratch_bytes(int B, int T) {
  size_t cub_bytes = 0;
  if (SortTempBytes(B * T, &cub_bytes) != cudaSuccess) cub_bytes = 0;  // reported at launch
  return ScratchLayout(B * T, cub_bytes, nullptr, nullptr);
}

template <typename floatX>
coord::Status encoder_backward(float* dwte, float* dwpe, const floatX* dout, const int* inp, int B,
                               int T, int C, void* scratch, cudaStream_t stream) {
  const int BT = B * T;
  if (BT == 0 || C == 0) return coord::Status::Ok();
  size_t cub_bytes = 0;
  CUDA_RETURN_IF_ERROR(SortTempBytes(BT, &cub_bytes));
  BackwardScratch s;
  ScratchLayout(BT, cub_bytes, scratch, &s);

  iota_kernel<<<CEIL_DIV(BT, kThreads), kThreads, 0, stream>>>(s.positions, BT);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairs(
      s.cub_temp, s.cub_temp_bytes, inp, s.sorted_tokens, s.positions, s.sorted_positions, BT, 0,
      static_cast<int>(sizeof(int) * 8), stream));

  constexpr int kVec = 16 / sizeof(floatX);
  const bool vectorized = C % kVec == 0 && Aligned16(dout) && Aligned16(dwte) && Aligned16(dwpe);
  if (vectorized) {
    LaunchBackward<floatX, kVec>(dwte, dwpe, dout, s, B, T, C, stream);
  } else {
    LaunchBackward<floatX, 1>(dwte, dwpe, dout, s, B, T, C, stream);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                       \
  template coord::Status encoder_forward<floatX>(floatX*, const int*, const floatX*,              \
                                                 const floatX*, int, int, int, cudaStream_t);     \
  template coord::Status encoder_backward<floatX>(float*, float*, const floatX*, const int*, int, \
                                                  int, int, void*, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
