// Fused causal attention (FlashAttention-2 schedule) on CUDA cores in fp32.
//
// Every kernel works on 64 x 64 tiles of the score matrix with 256 threads as a 16 x 16
// grid (tx, ty). A thread owns a 4 x 4 micro-tile of a score tile: rows ty*4 + i and
// columns tx + 16*j. The strided columns make the float4 reads of the 16 column rows
// from shared memory conflict-free (row stride HS + 4 = 4 mod 32 banks); the 4 rows are
// broadcast. Row statistics (max, sum) are reduced over the 16 lanes of a half-warp that
// share ty. Products with an (64, HS) operand give a thread rows ty*4 + i and HS/16
// columns in groups of 2 or 4 contiguous floats (HeadCols).
//
// Forward: one CTA per (q tile, head, sample), online softmax over the k tiles up to the
// diagonal, output and row log-sum-exp written once.
// Backward, deterministic (no atomics): D = rowsum(dout * out) first; then one CTA per
// (k tile, head, sample) walks the q tiles below the diagonal accumulating dK and dV in
// registers, and a second kernel, one CTA per (q tile, head, sample), walks the k tiles
// and accumulates dQ in registers. Both recompute P from lse, which costs two extra
// 64 x 64 x HS products per tile pair against an atomicAdd dQ, and keeps the result
// bitwise reproducible.
//
// Dropout: a tile's keep mask is built cooperatively into shared memory (a row of 64
// consecutive draws spans at most 17 Philox blocks of 4 words) from element
// (h*T + t)*T + t2 of SampleStream(rng, b), as the CPU twin draws it.
#include <cstdint>
#include <cstring>

#include "trainer/kernels/cuda/attention.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {
namespace {

constexpr int kTile = 64;            // Br = Bc
constexpr int kThreads = 256;        // 16 x 16
constexpr int kScoreLd = kTile + 4;  // row stride of the (64, 64) fp32 tiles in shared memory
constexpr int kKeepLd = kTile + 4;   // bytes; 17 words, so the two mask access patterns spread
constexpr int kMaskBlocks = kTile / 4 + 1;  // Philox blocks one row of 64 draws can touch
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Row stride of a (64, HS) fp32 tile: 16-byte rows, and 4 mod 32 banks so the 8 threads
// of a float4 phase reading 8 different rows hit disjoint banks.
template <int HS>
constexpr int HeadLd() {
  return HS + 4;
}

// The HS/16 head columns a thread owns in (64, HS) products: groups of kVec contiguous
// floats at g*16*kVec + tx*kVec.
template <int HS>
struct HeadCols {
  static constexpr int kVec = HS >= 64 ? 4 : 2;
  static constexpr int kGroups = HS / (16 * kVec);
  static constexpr int kCount = HS / 16;
  static_assert(kVec * kGroups * 16 == HS, "HS must be 32, 64 or 128");
  __device__ static int col(int tx, int g) { return g * 16 * kVec + tx * kVec; }
  __device__ static void load(float (&v)[kCount], const float* row, int tx) {
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const float* src = row + col(tx, g);
      if constexpr (kVec == 4) {
        const float4 x = *reinterpret_cast<const float4*>(src);
        v[g * 4 + 0] = x.x, v[g * 4 + 1] = x.y, v[g * 4 + 2] = x.z, v[g * 4 + 3] = x.w;
      } else {
        const float2 x = *reinterpret_cast<const float2*>(src);
        v[g * 2 + 0] = x.x, v[g * 2 + 1] = x.y;
      }
    }
  }
  // Writes v (times mul) to rows that are valid in a global (., HS) slice.
  template <typename floatX>
  __device__ static void store(floatX* row, const float (&v)[kCount], float mul, int tx) {
#pragma unroll
    for (int g = 0; g < kGroups; ++g)
#pragma unroll
      for (int k = 0; k < kVec; ++k) row[col(tx, g) + k] = FromFloat<floatX>(v[g * kVec + k] * mul);
  }
};

__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}
// acc[i][j] += (row ty*4 + i of a_s) . (row tx + 16*j of b_s) over HS: one thread's 4x4
// block of a 64x64 product of two shared-memory tiles (row stride HeadLd<HS>() floats).
template <int HS>
__device__ __forceinline__ void AccumulateTileProducts(float (&acc)[4][4], const float* a_s,
                                                       const float* b_s, int ty, int tx) {
  constexpr int kLd = HeadLd<HS>();
#pragma unroll 4
  for (int d = 0; d < HS; d += 4) {
    float4 av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      av[i] = *reinterpret_cast<const float4*>(a_s + (ty * 4 + i) * kLd + d);
#pragma unroll
    for (int j = 0; j < 4; ++j)
      bv[j] = *reinterpret_cast<const float4*>(b_s + (tx + 16 * j) * kLd + d);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = dot4(av[i], bv[j], acc[i][j]);
  }
}
__device__ __forceinline__ float component(float4 v, int k) {
  return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;
}

__device__ __forceinline__ float half_warp_max(float v) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ float half_warp_sum(float v) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// dst (64, HS) fp32 <- rows [0, rows) of src (row stride `stride` elements); rows past
// `rows` are zero so tails need no special case in the products. vec: src and stride
// allow 16-byte loads.
template <typename floatX, int HS>
__device__ void load_tile(float* dst, const floatX* src, size_t stride, int rows, bool vec) {
  constexpr int kLd = HeadLd<HS>();
  if (vec) {
    constexpr int kVec = 16 / sizeof(floatX);
    constexpr int kChunks = HS / kVec;
    for (int i = threadIdx.x; i < kTile * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * kVec;
      float vals[kVec];
      if (r < rows) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src + r * stride + c));
        floatX elems[kVec];
        memcpy(elems, &raw, sizeof(raw));
#pragma unroll
        for (int k = 0; k < kVec; ++k) vals[k] = ToFloat<floatX>(elems[k]);
      } else {
#pragma unroll
        for (int k = 0; k < kVec; ++k) vals[k] = 0.0f;
      }
#pragma unroll
      for (int k = 0; k < kVec; k += 4)
        *reinterpret_cast<float4*>(dst + r * kLd + c + k) =
            make_float4(vals[k], vals[k + 1], vals[k + 2], vals[k + 3]);
    }
  } else {
    for (int i = threadIdx.x; i < kTile * HS; i += kThreads) {
      const int r = i / HS, c = i % HS;
      dst[r * kLd + c] = r < rows ? ToFloat<floatX>(src[r * stride + c]) : 0.0f;
    }
  }
}

// keep[r * kKeepLd + c] = whether probability (t = q0 + r, t2 = k0 + c) survives dropout,
// for the causal, in-range entries (t < T, t2 <= t); other bytes are left undefined and
// must only be read for entries whose probability is zero.
__device__ void build_keep_mask(uint8_t* keep, const trainer::RngStream& rng_b, int h, int T,
                                int q0, int k0, float p) {
  for (int w = threadIdx.x; w < kTile * kMaskBlocks; w += kThreads) {
    const int r = w / kMaskBlocks, k = w % kMaskBlocks;
    const int t = q0 + r;
    const int last = min(t - k0, kTile - 1);  // last column needed; t < T bounds t2 too
    if (t >= T || last < 0) continue;
    const uint64_t row_start = (static_cast<uint64_t>(h) * T + t) * T + k0;
    const uint64_t block = (row_start >> 2) + k;
    if (block > ((row_start + last) >> 2)) continue;
    const trainer::Philox4x32 words = rng_b.block(block);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint64_t idx = block * 4 + j;
      if (idx < row_start || idx > row_start + last) continue;
      // RngStream::uniform: the top 24 bits, exact in fp32.
      const float u = static_cast<float>(words.v[j] >> 8) * 0x1.0p-24f;
      keep[r * kKeepLd + static_cast<int>(idx - row_start)] = u >= p;
    }
  }
}

template <int HS>
constexpr size_t forward_smem_bytes() {
  return (3 * kTile * HeadLd<HS>() + kTile * kScoreLd) * sizeof(float) + kTile * kKeepLd;
}
template <int HS>
constexpr size_t backward_kv_smem_bytes() {
  return (4 * kTile * HeadLd<HS>() + 2 * kTile * kScoreLd + 2 * kTile) * sizeof(float) +
         kTile * kKeepLd;
}
template <int HS>
constexpr size_t backward_q_smem_bytes() {
  return (4 * kTile * HeadLd<HS>() + kTile * kScoreLd + 2 * kTile) * sizeof(float) +
         kTile * kKeepLd;
}

// ----------------------------------------------------------------------------
// kernels

// grid (q tiles, NH, B); heaviest (last) q tiles first.
template <typename floatX, int HS>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(floatX* out, float* lse, const floatX* qkv, int T, int C, int NH,
                             float scale_log2, float p, float keep_scale, trainer::RngStream rng,
                             bool vec) {
  using Cols = HeadCols<HS>;
  constexpr int kLd = HeadLd<HS>();
  extern __shared__ float4 smem_f4[];
  float* q_s = reinterpret_cast<float*>(smem_f4);
  float* k_s = q_s + kTile * kLd;
  float* v_s = k_s + kTile * kLd;
  float* p_s = v_s + kTile * kLd;  // (64, 64) dropped probabilities of the tile
  uint8_t* keep = reinterpret_cast<uint8_t*>(p_s + kTile * kScoreLd);

  const int q_tile = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int q0 = q_tile * kTile;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const floatX* base = qkv + static_cast<size_t>(b) * T * C3 + h * HS;  // q of (b, t=0, h)
  const trainer::RngStream rng_b = trainer::SampleStream(rng, b);
  const bool dropout = p > 0.0f;

  load_tile<floatX, HS>(q_s, base + q0 * C3, C3, min(kTile, T - q0), vec);

  float m[4], l[4], o[4][Cols::kCount];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY, l[i] = 0.0f;
#pragma unroll
    for (int k = 0; k < Cols::kCount; ++k) o[i][k] = 0.0f;
  }

  for (int k_tile = 0; k_tile <= q_tile; ++k_tile) {
    const int k0 = k_tile * kTile;
    __syncthreads();  // the previous tile's k_s, v_s, p_s, keep are consumed
    load_tile<floatX, HS>(k_s, base + C + k0 * C3, C3, min(kTile, T - k0), vec);
    load_tile<floatX, HS>(v_s, base + 2 * C + k0 * C3, C3, min(kTile, T - k0), vec);
    if (dropout) build_keep_mask(keep, rng_b, h, T, q0, k0, p);
    __syncthreads();

    float s[4][4] = {};
    AccumulateTileProducts<HS>(s, q_s, k_s, ty, tx);

    // Online softmax in base 2; the first tile holds t2 = 0 for every row, so m is
    // finite from then on and masked entries give exp2(-inf) = 0, never NaN.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = ty * 4 + i, t = q0 + r;
      float row_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int t2 = k0 + tx + 16 * j;
        s[i][j] = (t2 <= t && t2 < T) ? s[i][j] * scale_log2 : -INFINITY;
        row_max = fmaxf(row_max, s[i][j]);
      }
      const float m_new = fmaxf(m[i], half_warp_max(row_max));
      const float alpha = exp2f(m[i] - m_new);
      float row_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = tx + 16 * j;
        float prob = exp2f(s[i][j] - m_new);
        row_sum += prob;
        if (dropout) prob = keep[r * kKeepLd + c] ? prob * keep_scale : 0.0f;
        p_s[r * kScoreLd + c] = prob;
      }
      l[i] = l[i] * alpha + half_warp_sum(row_sum);
      m[i] = m_new;
#pragma unroll
      for (int k = 0; k < Cols::kCount; ++k) o[i][k] *= alpha;
    }
    __syncthreads();

#pragma unroll 2
    for (int c = 0; c < kTile; c += 4) {
      float4 pv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        pv[i] = *reinterpret_cast<const float4*>(p_s + (ty * 4 + i) * kScoreLd + c);
#pragma unroll
      for (int cc = 0; cc < 4; ++cc) {
        float v[Cols::kCount];
        Cols::load(v, v_s + (c + cc) * kLd, tx);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float w = component(pv[i], cc);
#pragma unroll
          for (int k = 0; k < Cols::kCount; ++k) o[i][k] = fmaf(w, v[k], o[i][k]);
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t = q0 + ty * 4 + i;
    if (t >= T) continue;
    Cols::store(out + (static_cast<size_t>(b) * T + t) * C + h * HS, o[i], 1.0f / l[i], tx);
    if (tx == 0) lse[(static_cast<size_t>(b) * NH + h) * T + t] = m[i] * kLn2 + logf(l[i]);
  }
}

// delta[b, h, t] = sum_i dout[b, t, h*HS + i] * out[b, t, h*HS + i]; one warp per (b, t, h).
template <typename floatX, int HS>
__global__ void attention_delta_kernel(float* delta, const floatX* dout, const floatX* out, int B,
                                       int T, int C, int NH) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= static_cast<int64_t>(B) * T * NH) return;
  const int lane = threadIdx.x % 32;
  const int h = static_cast<int>(row % NH);
  const int64_t bt = row / NH;  // b * T + t
  const floatX* dy = dout + bt * C + h * HS;
  const floatX* y = out + bt * C + h * HS;
  float acc = 0.0f;
#pragma unroll
  for (int i = lane; i < HS; i += 32)
    acc = fmaf(ToFloat<floatX>(dy[i]), ToFloat<floatX>(y[i]), acc);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) {
    const int64_t b = bt / T, t = bt % T;
    delta[(b * NH + h) * T + t] = acc;
  }
}

// Recomputed probability, its dropout factor and dS for one score entry.
struct ScoreGrads {
  float dropped;  // P * Z / (1-p), the weight the forward applied to v
  float ds;       // dL/dS (before the 1/sqrt(HS) of S = q k^T / sqrt(HS))
};
__device__ __forceinline__ ScoreGrads score_grads(bool valid, float s_dot, float scale_log2,
                                                  float lse2, float dp_dropped, float delta,
                                                  bool dropout, const uint8_t* keep_byte,
                                                  float keep_scale) {
  // exp2 of a masked entry may overflow; the select discards it.
  const float prob = valid ? exp2f(s_dot * scale_log2 - lse2) : 0.0f;
  const float z = dropout ? (valid && *keep_byte ? keep_scale : 0.0f) : 1.0f;
  return {prob * z, prob * (dp_dropped * z - delta)};
}

// grid (k tiles, NH, B); k tile 0 (the longest walk) first. Writes dK, dV of dqkv.
template <typename floatX, int HS>
__global__ void __launch_bounds__(kThreads)
    attention_backward_kv_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv,
                                 const float* lse, const float* delta, int T, int C, int NH,
                                 float scale, float scale_log2, float p, float keep_scale,
                                 trainer::RngStream rng, bool qkv_vec, bool dout_vec) {
  using Cols = HeadCols<HS>;
  constexpr int kLd = HeadLd<HS>();
  extern __shared__ float4 smem_f4[];
  float* k_s = reinterpret_cast<float*>(smem_f4);
  float* v_s = k_s + kTile * kLd;
  float* q_s = v_s + kTile * kLd;
  float* do_s = q_s + kTile * kLd;
  float* pt_s = do_s + kTile * kLd;        // (k, q): dropped P transposed
  float* dst_s = pt_s + kTile * kScoreLd;  // (k, q): dS transposed
  float* lse2_s = dst_s + kTile * kScoreLd;
  float* delta_s = lse2_s + kTile;
  uint8_t* keep = reinterpret_cast<uint8_t*>(delta_s + kTile);

  const int k_tile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int k0 = k_tile * kTile, num_tiles = gridDim.x;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const floatX* base = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const floatX* dout_base = dout + static_cast<size_t>(b) * T * C + h * HS;
  const float* lse_row = lse + (static_cast<size_t>(b) * NH + h) * T;
  const float* delta_row = delta + (static_cast<size_t>(b) * NH + h) * T;
  const trainer::RngStream rng_b = trainer::SampleStream(rng, b);
  const bool dropout = p > 0.0f;

  load_tile<floatX, HS>(k_s, base + C + k0 * C3, C3, min(kTile, T - k0), qkv_vec);
  load_tile<floatX, HS>(v_s, base + 2 * C + k0 * C3, C3, min(kTile, T - k0), qkv_vec);

  float dk[4][Cols::kCount] = {}, dv[4][Cols::kCount] = {};  // rows k0 + ty*4 + i

  for (int q_tile = k_tile; q_tile < num_tiles; ++q_tile) {
    const int q0 = q_tile * kTile;
    __syncthreads();  // the previous q tile is consumed
    load_tile<floatX, HS>(q_s, base + q0 * C3, C3, min(kTile, T - q0), qkv_vec);
    load_tile<floatX, HS>(do_s, dout_base + q0 * static_cast<size_t>(C), C, min(kTile, T - q0),
                          dout_vec);
    if (threadIdx.x < kTile) {
      const int t = q0 + threadIdx.x;
      lse2_s[threadIdx.x] = t < T ? lse_row[t] * kLog2e : 0.0f;
      delta_s[threadIdx.x] = t < T ? delta_row[t] : 0.0f;
    }
    if (dropout) build_keep_mask(keep, rng_b, h, T, q0, k0, p);
    __syncthreads();

    // Transposed tiles: entry (i, j) is (k row ty*4 + i, q row tx + 16*j).
    float st[4][4] = {}, dpt[4][4] = {};
    AccumulateTileProducts<HS>(st, k_s, q_s, ty, tx);
    AccumulateTileProducts<HS>(dpt, v_s, do_s, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int c = ty * 4 + i, t2 = k0 + c;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int r = tx + 16 * j, t = q0 + r;
        const ScoreGrads g =
            score_grads(t < T && t2 <= t, st[i][j], scale_log2, lse2_s[r], dpt[i][j], delta_s[r],
                        dropout, keep + r * kKeepLd + c, keep_scale);
        pt_s[c * kScoreLd + r] = g.dropped;
        dst_s[c * kScoreLd + r] = g.ds;
      }
    }
    __syncthreads();

    // dV += P_dropped^T dO, dK += dS^T Q (the 1/sqrt(HS) is applied once at the end).
#pragma unroll 2
    for (int r = 0; r < kTile; r += 4) {
      float4 pv[4], dsv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        pv[i] = *reinterpret_cast<const float4*>(pt_s + (ty * 4 + i) * kScoreLd + r);
        dsv[i] = *reinterpret_cast<const float4*>(dst_s + (ty * 4 + i) * kScoreLd + r);
      }
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) {
        float dov[Cols::kCount], qv[Cols::kCount];
        Cols::load(dov, do_s + (r + rr) * kLd, tx);
        Cols::load(qv, q_s + (r + rr) * kLd, tx);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float wp = component(pv[i], rr), ws = component(dsv[i], rr);
#pragma unroll
          for (int k = 0; k < Cols::kCount; ++k) {
            dv[i][k] = fmaf(wp, dov[k], dv[i][k]);
            dk[i][k] = fmaf(ws, qv[k], dk[i][k]);
          }
        }
      }
    }
  }

  floatX* dbase = dqkv + static_cast<size_t>(b) * T * C3 + h * HS;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t2 = k0 + ty * 4 + i;
    if (t2 >= T) continue;
    Cols::store(dbase + t2 * C3 + C, dk[i], scale, tx);
    Cols::store(dbase + t2 * C3 + 2 * C, dv[i], 1.0f, tx);
  }
}

// grid (q tiles, NH, B); heaviest (last) q tiles first. Writes dQ of dqkv.
template <typename floatX, int HS>
__global__ void __launch_bounds__(kThreads)
    attention_backward_q_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv,
                                const float* lse, const float* delta, int T, int C, int NH,
                                float scale, float scale_log2, float p, float keep_scale,
                                trainer::RngStream rng, bool qkv_vec, bool dout_vec) {
  using Cols = HeadCols<HS>;
  constexpr int kLd = HeadLd<HS>();
  extern __shared__ float4 smem_f4[];
  float* q_s = reinterpret_cast<float*>(smem_f4);
  float* do_s = q_s + kTile * kLd;
  float* k_s = do_s + kTile * kLd;
  float* v_s = k_s + kTile * kLd;
  float* ds_s = v_s + kTile * kLd;  // (q, k)
  float* lse2_s = ds_s + kTile * kScoreLd;
  float* delta_s = lse2_s + kTile;
  uint8_t* keep = reinterpret_cast<uint8_t*>(delta_s + kTile);

  const int q_tile = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int q0 = q_tile * kTile;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const floatX* base = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const floatX* dout_base = dout + static_cast<size_t>(b) * T * C + h * HS;
  const trainer::RngStream rng_b = trainer::SampleStream(rng, b);
  const bool dropout = p > 0.0f;

  load_tile<floatX, HS>(q_s, base + q0 * C3, C3, min(kTile, T - q0), qkv_vec);
  load_tile<floatX, HS>(do_s, dout_base + q0 * static_cast<size_t>(C), C, min(kTile, T - q0),
                        dout_vec);
  if (threadIdx.x < kTile) {
    const int t = q0 + threadIdx.x;
    const size_t row = (static_cast<size_t>(b) * NH + h) * T + t;
    lse2_s[threadIdx.x] = t < T ? lse[row] * kLog2e : 0.0f;
    delta_s[threadIdx.x] = t < T ? delta[row] : 0.0f;
  }
  // The loop's first barrier publishes these.

  float dq[4][Cols::kCount] = {};  // rows q0 + ty*4 + i

  for (int k_tile = 0; k_tile <= q_tile; ++k_tile) {
    const int k0 = k_tile * kTile;
    __syncthreads();  // the previous k tile is consumed
    load_tile<floatX, HS>(k_s, base + C + k0 * C3, C3, min(kTile, T - k0), qkv_vec);
    load_tile<floatX, HS>(v_s, base + 2 * C + k0 * C3, C3, min(kTile, T - k0), qkv_vec);
    if (dropout) build_keep_mask(keep, rng_b, h, T, q0, k0, p);
    __syncthreads();

    // Entry (i, j) is (q row ty*4 + i, k row tx + 16*j).
    float s[4][4] = {}, dp[4][4] = {};
    AccumulateTileProducts<HS>(s, q_s, k_s, ty, tx);
    AccumulateTileProducts<HS>(dp, do_s, v_s, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = ty * 4 + i, t = q0 + r;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = tx + 16 * j, t2 = k0 + c;
        const ScoreGrads g = score_grads(t < T && t2 <= t, s[i][j], scale_log2, lse2_s[r], dp[i][j],
                                         delta_s[r], dropout, keep + r * kKeepLd + c, keep_scale);
        ds_s[r * kScoreLd + c] = g.ds;
      }
    }
    __syncthreads();

    // dQ += dS K.
#pragma unroll 2
    for (int c = 0; c < kTile; c += 4) {
      float4 dsv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        dsv[i] = *reinterpret_cast<const float4*>(ds_s + (ty * 4 + i) * kScoreLd + c);
#pragma unroll
      for (int cc = 0; cc < 4; ++cc) {
        float kv[Cols::kCount];
        Cols::load(kv, k_s + (c + cc) * kLd, tx);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float w = component(dsv[i], cc);
#pragma unroll
          for (int k = 0; k < Cols::kCount; ++k) dq[i][k] = fmaf(w, kv[k], dq[i][k]);
        }
      }
    }
  }

  floatX* dbase = dqkv + static_cast<size_t>(b) * T * C3 + h * HS;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t = q0 + ty * 4 + i;
    if (t >= T) continue;
    Cols::store(dbase + t * C3, dq[i], scale, tx);
  }
}

// ----------------------------------------------------------------------------
// launchers

coord::Status check_shape(int B, int T, int C, int NH, float p) {
  if (B < 0 || T < 0 || C <= 0 || NH <= 0 || C % NH != 0)
    return coord::InvalidArgument("attention: bad shape B=" + std::to_string(B) +
                                  " T=" + std::to_string(T) + " C=" + std::to_string(C) +
                                  " NH=" + std::to_string(NH));
  const int HS = C / NH;
  if (HS != 32 && HS != 64 && HS != 128)
    return coord::InvalidArgument("attention: head size " + std::to_string(HS) +
                                  " unsupported (32, 64 or 128)");
  if (!(p >= 0.0f && p < 1.0f)) {
    return coord::InvalidArgument("attention: dropout p must be in [0, 1)");
  }
  if (B > 65535 || NH > 65535) {
    return coord::InvalidArgument("attention: B and NH must be at most 65535");
  }
  return coord::Status::Ok();
}

template <typename floatX, int HS>
coord::Status forward_impl(floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH,
                           float p, const trainer::RngStream& rng, cudaStream_t stream) {
  constexpr size_t smem = forward_smem_bytes<HS>();
  auto kernel = attention_forward_kernel<floatX, HS>;
  CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(smem)));
  const float scale = 1.0f / sqrtf(static_cast<float>(HS));
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  const dim3 grid(CEIL_DIV(T, kTile), NH, B);
  kernel<<<grid, kThreads, smem, stream>>>(out, lse, qkv, T, C, NH, scale * kLog2e, p, keep_scale,
                                           rng, Aligned16(qkv));
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

template <typename floatX, int HS>
coord::Status backward_impl(floatX* dqkv, const floatX* dout, const floatX* qkv, const floatX* out,
                            const float* lse, int B, int T, int C, int NH, float p,
                            const trainer::RngStream& rng, float* delta, cudaStream_t stream) {
  const float scale = 1.0f / sqrtf(static_cast<float>(HS));
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  const bool qkv_vec = Aligned16(qkv), dout_vec = Aligned16(dout);
  const int64_t rows = static_cast<int64_t>(B) * T * NH;
  constexpr int kWarps = kThreads / 32;
  attention_delta_kernel<floatX, HS>
      <<<static_cast<unsigned>(CEIL_DIV(rows, kWarps)), kThreads, 0, stream>>>(delta, dout, out, B,
                                                                               T, C, NH);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());

  const dim3 grid(CEIL_DIV(T, kTile), NH, B);
  constexpr size_t kv_smem = backward_kv_smem_bytes<HS>();
  auto kv_kernel = attention_backward_kv_kernel<floatX, HS>;
  CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(kv_smem)));
  kv_kernel<<<grid, kThreads, kv_smem, stream>>>(dqkv, dout, qkv, lse, delta, T, C, NH, scale,
                                                 scale * kLog2e, p, keep_scale, rng, qkv_vec,
                                                 dout_vec);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());

  constexpr size_t q_smem = backward_q_smem_bytes<HS>();
  auto q_kernel = attention_backward_q_kernel<floatX, HS>;
  CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(q_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(q_smem)));
  q_kernel<<<grid, kThreads, q_smem, stream>>>(dqkv, dout, qkv, lse, delta, T, C, NH, scale,
                                               scale * kLog2e, p, keep_scale, rng, qkv_vec,
                                               dout_vec);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

}  // namespace

template <typename floatX>
coord::Status attention_forward(floatX* out, float* lse, const floatX* qkv, int B, int T, int C,
                                int NH, float p, const trainer::RngStream& rng,
                                cudaStream_t stream) {
  RETURN_IF_ERROR(check_shape(B, T, C, NH, p));
  if (B == 0 || T == 0) return coord::Status::Ok();
  switch (C / NH) {
    case 32:
      return forward_impl<floatX, 32>(out, lse, qkv, B, T, C, NH, p, rng, stream);
    case 64:
      return forward_impl<floatX, 64>(out, lse, qkv, B, T, C, NH, p, rng, stream);
    default:
      return forward_impl<floatX, 128>(out, lse, qkv, B, T, C, NH, p, rng, stream);
  }
}

size_t attention_backward_scratch_floats(int B, int T, int C, int NH) {
  (void)C;
  return static_cast<size_t>(B) * NH * T;  // delta = rowsum(dout * out)
}

template <typename floatX>
coord::Status attention_backward(floatX* dqkv, const floatX* dout, const floatX* qkv,
                                 const floatX* out, const float* lse, int B, int T, int C, int NH,
                                 float p, const trainer::RngStream& rng, float* scratch,
                                 cudaStream_t stream) {
  RETURN_IF_ERROR(check_shape(B, T, C, NH, p));
  if (B == 0 || T == 0) return coord::Status::Ok();
  switch (C / NH) {
    case 32:
      return backward_impl<floatX, 32>(dqkv, dout, qkv, out, lse, B, T, C, NH, p, rng, scratch,
                                       stream);
    case 64:
      return backward_impl<floatX, 64>(dqkv, dout, qkv, out, lse, B, T, C, NH, p, rng, scratch,
                                       stream);
    default:
      return backward_impl<floatX, 128>(dqkv, dout, qkv, out, lse, B, T, C, NH, p, rng, scratch,
                                        stream);
  }
}

#define INSTANTIATE(floatX)                                                                       \
  template coord::Status attention_forward<floatX>(floatX*, float*, const floatX*, int, int, int, \
                                                   int, float, const trainer::RngStream&,         \
                                                   cudaStream_t);                                 \
  template coord::Status attention_backward<floatX>(                                              \
      floatX*, const floatX*, const floatX*, const floatX*, const float*, int, int, int, int,     \
      float, const trainer::RngStream&, float*, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
