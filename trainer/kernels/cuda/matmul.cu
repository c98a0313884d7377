// Linear layers through cuBLASLt (see matmul.cuh).
//
// cuBLASLt is column-major, and a row-major (R, K) matrix is the column-major (K, R)
// one with ld = K, so every product is written for the transposes (D = op(A) op(B)):
//   forward  out^T (OC,N): A = weight, col-major (C,OC) ld C, op T; B = inp, (C,N) ld C;
//            m=OC n=N k=C, D ld OC
//   dinp     dinp^T (C,N): A = weight, (C,OC) ld C; B = dout, (OC,N) ld OC;
//            m=C n=N k=OC, D ld C
//   dweight  dW^T (C,OC): A = inp, (C,N) ld C; B = dout, (OC,N) ld OC, op T;
//            m=C n=OC k=N, C = D = the fp32 gradient (ld C), beta 1
// The bias of the forward epilogue runs along D's rows (OC), as cuBLASLt's does.
//
// Types: A/B in floatX, compute CUBLAS_COMPUTE_32F (no TF32 for fp32), scale fp32; D in floatX
// except dweight, whose C/D are fp32 (the 16-bit-in, fp32-out row of cublasLtMatmul's
// type table; it is how TransformerEngine fuses Megatron's main_grad accumulation).
//
// GELU: cuBLASLt's GELU epilogues are the tanh approximation (what torch's
// _addmm_activation relies on for gelu(approximate='tanh')), but the tanh it uses is
// not documented, so the fused epilogues serve the 16-bit types only, where output
// rounding dominates. fp32 (the mode that checks against the CPU) uses this file's
// kernels with tanhf, exactly the CPU formula. The fused GELU epilogues also need the
// aux leading dimension to be a multiple of 8; where that fails, or the heuristic has
// no algorithm for the epilogue and these pointers, the product runs plain and this
// file's kernels apply bias / GELU / GELU' after it.
//
// Alignment: weights live at arbitrary element offsets inside one flat buffer, so each
// matrix's real alignment (base address and column stride together) goes to the
// heuristic as its minimum; cuBLASLt's default assumption is 256 bytes. Bias and aux
// alignment the heuristic reads from the pointers themselves.
//
// Heuristic results are cached per (device, workspace, problem, alignments): the
// same algorithm every call also keeps results reproducible run to run.
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "trainer/kernels/cuda/gelu.cuh"
#include "trainer/kernels/cuda/matmul.cuh"
#include "trainer/kernels/cuda/vec.cuh"

// INTERNAL "file:line: call: CUBLAS_STATUS_...: description", as CUDA_RETURN_IF_ERROR.
#define CUBLAS_RETURN_IF_ERROR(expr)                                      \
  do {                                                                    \
    cublasStatus_t _s = (expr);                                           \
    if (_s != CUBLAS_STATUS_SUCCESS) {                                    \
      return ::kernels::cuda::CublasError(_s, #expr, __FILE__, __LINE__); \
    }                                                                     \
  } while (0)

namespace kernels::cuda {

namespace {

coord::Status CublasError(cublasStatus_t status, const char* expr, const char* file, int line) {
  return coord::Internal(std::string(file) + ":" + std::to_string(line) + ": " + expr + ": " +
                         cublasLtGetStatusName(status) + ": " + cublasLtGetStatusString(status));
}

}  // namespace

// ----------------------------------------------------------------------------
// context

coord::Status MatmulContext::Init(size_t workspace_bytes) {
  if (workspace_ != nullptr) {
    CUDA_RETURN_IF_ERROR(cudaFree(workspace_));
    workspace_ = nullptr;
    workspace_bytes_ = 0;
  }
  if (handle_ == nullptr) CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle_));
  if (workspace_bytes > 0) CUDA_RETURN_IF_ERROR(cudaMalloc(&workspace_, workspace_bytes));
  workspace_bytes_ = workspace_bytes;
  return coord::Status::Ok();
}

MatmulContext::~MatmulContext() {
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

namespace {

// ----------------------------------------------------------------------------
// elementwise epilogues for the unfused path

template <typename floatX>
constexpr int kPackOf = 16 / sizeof(floatX);

// x (rows, OC) is `out` (kGelu false) or `pre_gelu` (kGelu true). x += bias (bias may be
// null; the sum is stored back to x), and with kGelu out = gelu(x as stored in floatX).
// kN > 1 only when OC % kN == 0 and every pointer is 16-aligned, so a vector never
// straddles rows and its bias slice is aligned too.
template <typename floatX, bool kGelu, int kN>
__global__ void bias_act_kernel(floatX* out, floatX* pre_gelu, const floatX* bias, int64_t total,
                                int OC) {
  using V = Pack<floatX, kN>;
  floatX* x = kGelu ? pre_gelu : out;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * kN;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * kN; i < total;
       i += stride) {
    V v = *reinterpret_cast<const V*>(x + i);
    if (bias != nullptr) {
      const V b = *reinterpret_cast<const V*>(bias + i % OC);
#pragma unroll
      for (int j = 0; j < kN; ++j) v.v[j] = FromFloat<floatX>(ToFloat(v.v[j]) + ToFloat(b.v[j]));
      *reinterpret_cast<V*>(x + i) = v;
    }
    if constexpr (kGelu) {
      V act;
#pragma unroll
      for (int j = 0; j < kN; ++j) act.v[j] = FromFloat<floatX>(GeluTanh(ToFloat(v.v[j])));
      *reinterpret_cast<V*>(out + i) = act;
    }
  }
}

// dinp *= gelu'(pre_gelu), elementwise over `total` (a multiple of kN).
template <typename floatX, int kN>
__global__ void gelu_grad_scale_kernel(floatX* dinp, const floatX* pre_gelu, int64_t total) {
  using V = Pack<floatX, kN>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * kN;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * kN; i < total;
       i += stride) {
    V d = *reinterpret_cast<const V*>(dinp + i);
    const V p = *reinterpret_cast<const V*>(pre_gelu + i);
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      d.v[j] = FromFloat<floatX>(ToFloat(d.v[j]) * GeluTanhGrad(ToFloat(p.v[j])));
    }
    *reinterpret_cast<V*>(dinp + i) = d;
  }
}

template <typename floatX>
coord::Status launch_bias_act(floatX* out, floatX* pre_gelu, const floatX* bias, int N, int OC,
                              bool gelu, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(N) * OC;
  if (total == 0 || (!gelu && bias == nullptr)) return coord::Status::Ok();
  constexpr int kPack = kPackOf<floatX>;
  const bool vec = OC % kPack == 0 && Aligned16(out) && (!gelu || Aligned16(pre_gelu)) &&
                   (bias == nullptr || Aligned16(bias));
  const int grid = ElementwiseGrid(vec ? total / kPack : total);
  if (gelu && vec) {
    bias_act_kernel<floatX, true, kPack>
        <<<grid, kElementwiseBlock, 0, stream>>>(out, pre_gelu, bias, total, OC);
  } else if (gelu) {
    bias_act_kernel<floatX, true, 1>
        <<<grid, kElementwiseBlock, 0, stream>>>(out, pre_gelu, bias, total, OC);
  } else if (vec) {
    bias_act_kernel<floatX, false, kPack>
        <<<grid, kElementwiseBlock, 0, stream>>>(out, pre_gelu, bias, total, OC);
  } else {
    bias_act_kernel<floatX, false, 1>
        <<<grid, kElementwiseBlock, 0, stream>>>(out, pre_gelu, bias, total, OC);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

template <typename floatX>
coord::Status launch_gelu_grad_scale(floatX* dinp, const floatX* pre_gelu, int64_t total,
                                     cudaStream_t stream) {
  constexpr int kPack = kPackOf<floatX>;
  // Whole vectors where both are 16-aligned, then the tail (or everything) one by one.
  int64_t done = 0;
  if (Aligned16(dinp) && Aligned16(pre_gelu)) {
    done = total / kPack * kPack;
    if (done > 0) {
      gelu_grad_scale_kernel<floatX, kPack>
          <<<ElementwiseGrid(done / kPack), kElementwiseBlock, 0, stream>>>(dinp, pre_gelu, done);
      CUDA_RETURN_IF_ERROR(cudaGetLastError());
    }
  }
  if (done < total) {
    gelu_grad_scale_kernel<floatX, 1>
        <<<ElementwiseGrid(total - done), kElementwiseBlock, 0, stream>>>(
            dinp + done, pre_gelu + done, total - done);
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
  }
  return coord::Status::Ok();
}

// ----------------------------------------------------------------------------
// bias gradient: deterministic column sums of dout (N, OC)

// Rows are cut into fixed chunks (a function of N only, so the scratch size is too);
// block (32, 8) sums 32 columns of one chunk, each warp row reading 32 consecutive
// elements, and the 8 row-thread partials are added in a fixed order.
constexpr int kBiasCols = 32;
constexpr int kBiasRowThreads = 8;
constexpr int kBiasRowsPerChunk = 256;

int BiasChunks(int N) { return CEIL_DIV(std::max(N, 0), kBiasRowsPerChunk); }

// One chunk (N <= kBiasRowsPerChunk): dbias += the sum directly; else partials[chunk][col].
template <typename floatX>
__global__ void bias_grad_partial_kernel(float* partials, float* dbias, const floatX* dout, int N,
                                         int OC) {
  __shared__ float sums[kBiasRowThreads][kBiasCols + 1];
  const int col = blockIdx.x * kBiasCols + threadIdx.x;
  const int row_begin = blockIdx.y * kBiasRowsPerChunk;
  const int row_end = min(N, row_begin + kBiasRowsPerChunk);
  float sum = 0.0f;
  if (col < OC) {
    for (int row = row_begin + threadIdx.y; row < row_end; row += kBiasRowThreads) {
      sum += ToFloat(dout[static_cast<size_t>(row) * OC + col]);
    }
  }
  sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < OC) {
    float total = 0.0f;
#pragma unroll
    for (int j = 0; j < kBiasRowThreads; ++j) total += sums[j][threadIdx.x];
    if (partials == nullptr) {
      dbias[col] += total;
    } else {
      partials[static_cast<size_t>(blockIdx.y) * OC + col] = total;
    }
  }
}

__global__ void bias_grad_final_kernel(float* dbias, const float* partials, int chunks, int OC) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= OC) return;
  float total = 0.0f;
  for (int c = 0; c < chunks; ++c) total += partials[static_cast<size_t>(c) * OC + col];
  dbias[col] += total;
}

template <typename floatX>
coord::Status launch_bias_grad(float* dbias, const floatX* dout, int N, int OC, float* scratch,
                               cudaStream_t stream) {
  const int chunks = BiasChunks(N);
  if (chunks == 0) return coord::Status::Ok();
  if (chunks > 65535) {
    return coord::InvalidArgument("matmul_backward: N = " + std::to_string(N) + " too large");
  }
  if (chunks > 1 && scratch == nullptr) {
    return coord::InvalidArgument(
        "matmul_backward: scratch is null (needs matmul_backward_scratch_floats)");
  }
  const dim3 grid(CEIL_DIV(OC, kBiasCols), chunks);
  const dim3 block(kBiasCols, kBiasRowThreads);
  bias_grad_partial_kernel<floatX>
      <<<grid, block, 0, stream>>>(chunks > 1 ? scratch : nullptr, dbias, dout, N, OC);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  if (chunks > 1) {
    bias_grad_final_kernel<<<CEIL_DIV(OC, 256), 256, 0, stream>>>(dbias, scratch, chunks, OC);
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
  }
  return coord::Status::Ok();
}

// ----------------------------------------------------------------------------
// cuBLASLt products

template <typename floatX>
constexpr cudaDataType_t CudaTypeOf() {
  if constexpr (std::is_same_v<floatX, float>) return CUDA_R_32F;
  if constexpr (std::is_same_v<floatX, __nv_bfloat16>) return CUDA_R_16BF;
  return CUDA_R_16F;
}

size_t SizeOf(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

// The alignment a kernel may assume for every column of a matrix: the largest power of
// two dividing both the base address and the column stride in bytes, at most 256.
uint32_t AlignmentOf(const void* p, int64_t ld_bytes) {
  const uint64_t bits = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) |
                        static_cast<uint64_t>(ld_bytes) | 256u;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

// D (m,n) = op(A) @ op(B) [+ beta D] with an epilogue; C is D. Column-major throughout.
struct Gemm {
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  int m = 0, n = 0, k = 0;
  cudaDataType_t ab_type = CUDA_R_32F, d_type = CUDA_R_32F;
  const void* a = nullptr;
  int64_t lda = 0;
  const void* b = nullptr;
  int64_t ldb = 0;
  void* d = nullptr;
  int64_t ldd = 0;
  float beta = 0.0f;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;  // type d_type
  const void* aux = nullptr;   // GELU input, type d_type: written (forward) or read (DGELU)
  int64_t aux_ld = 0;
};

struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* p) const { cublasLtMatmulDescDestroy(p); }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayoutOpaque_t* p) const { cublasLtMatrixLayoutDestroy(p); }
};
struct PreferenceDeleter {
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using DescPtr = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using LayoutPtr = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter>;
using PreferencePtr = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PreferenceDeleter>;

// Everything the heuristic's answer depends on.
using AlgoKey = std::array<int64_t, 20>;
struct AlgoEntry {
  bool found = false;  // false: no algorithm (the caller falls back)
  cublasLtMatmulAlgo_t algo{};
};

class AlgoCache {
 public:
  bool Lookup(const AlgoKey& key, AlgoEntry* entry) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    *entry = it->second;
    return true;
  }
  void Insert(const AlgoKey& key, const AlgoEntry& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    if (map_.size() >= kMaxEntries) map_.clear();  // a bound, never reached in training
    map_[key] = entry;
  }

 private:
  static constexpr size_t kMaxEntries = 4096;
  std::mutex mu_;
  std::map<AlgoKey, AlgoEntry> map_;
};

AlgoCache& Cache() {
  static AlgoCache* cache = new AlgoCache();  // never destroyed: usable at exit
  return *cache;
}

coord::Status MakeLayout(LayoutPtr* out, cudaDataType_t type, uint64_t rows, uint64_t cols,
                         int64_t ld) {
  cublasLtMatrixLayout_t layout = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&layout, type, rows, cols, ld));
  out->reset(layout);
  return coord::Status::Ok();
}

// OK with *ran true when D was computed; OK with *ran false when cuBLASLt has no
// algorithm for this problem (nothing was launched); otherwise the error.
coord::Status RunGemm(const MatmulContext& ctx, const Gemm& g, cudaStream_t stream, bool* ran) {
  *ran = false;
  if (ctx.handle() == nullptr) {
    return coord::FailedPrecondition("matmul: MatmulContext not initialized");
  }

  cublasLtMatmulDesc_t raw_desc = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&raw_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  DescPtr desc(raw_desc);
  const int32_t trans_a = g.trans_a, trans_b = g.trans_b;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA,
                                                        &trans_a, sizeof(trans_a)));
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB,
                                                        &trans_b, sizeof(trans_b)));
  const uint32_t epilogue = g.epilogue;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                        &epilogue, sizeof(epilogue)));
  if (g.bias != nullptr) {
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  }
  if (g.aux != nullptr) {
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux, sizeof(g.aux)));
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &g.aux_ld, sizeof(g.aux_ld)));
  }

  const bool ta = g.trans_a == CUBLAS_OP_T, tb = g.trans_b == CUBLAS_OP_T;
  LayoutPtr a_layout, b_layout, d_layout;
  RETURN_IF_ERROR(MakeLayout(&a_layout, g.ab_type, ta ? g.k : g.m, ta ? g.m : g.k, g.lda));
  RETURN_IF_ERROR(MakeLayout(&b_layout, g.ab_type, tb ? g.n : g.k, tb ? g.k : g.n, g.ldb));
  RETURN_IF_ERROR(MakeLayout(&d_layout, g.d_type, g.m, g.n, g.ldd));

  const size_t ab_size = SizeOf(g.ab_type), d_size = SizeOf(g.d_type);
  const uint32_t align_a = AlignmentOf(g.a, g.lda * ab_size);
  const uint32_t align_b = AlignmentOf(g.b, g.ldb * ab_size);
  const uint32_t align_d = AlignmentOf(g.d, g.ldd * d_size);

  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  const AlgoKey key = {device,
                       static_cast<int64_t>(ctx.workspace_bytes()),
                       g.trans_a,
                       g.trans_b,
                       g.m,
                       g.n,
                       g.k,
                       g.ab_type,
                       g.d_type,
                       g.lda,
                       g.ldb,
                       g.ldd,
                       g.beta != 0.0f,
                       g.epilogue,
                       align_a,
                       align_b,
                       align_d,
                       g.bias == nullptr ? 0 : AlignmentOf(g.bias, 0),
                       g.aux == nullptr ? 0 : AlignmentOf(g.aux, g.aux_ld * d_size),
                       g.aux_ld};
  AlgoEntry entry;
  if (!Cache().Lookup(key, &entry)) {
    cublasLtMatmulPreference_t raw_pref = nullptr;
    CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&raw_pref));
    PreferencePtr pref(raw_pref);
    const uint64_t workspace_bytes = ctx.workspace_bytes();
    CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &workspace_bytes, sizeof(workspace_bytes)));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d}};
    for (const auto& [attr, bytes] : alignments) {
      CUBLAS_RETURN_IF_ERROR(
          cublasLtMatmulPreferenceSetAttribute(pref.get(), attr, &bytes, sizeof(bytes)));
    }
    // Split-K partial sums stored in a 16-bit output type (in place or in workspace) would
    // round every partial; ask for fp32 partials first, anything if that finds nothing.
    const bool narrow_output = g.d_type != CUDA_R_32F;
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    cublasStatus_t status = CUBLAS_STATUS_NOT_SUPPORTED;
    for (int attempt = narrow_output ? 0 : 1; attempt < 2 && returned == 0; ++attempt) {
      const uint32_t schemes =
          attempt == 0 ? CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE : CUBLASLT_REDUCTION_SCHEME_MASK;
      CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
          pref.get(), CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes)));
      returned = 0;
      status = cublasLtMatmulAlgoGetHeuristic(ctx.handle(), desc.get(), a_layout.get(),
                                              b_layout.get(), d_layout.get(), d_layout.get(),
                                              pref.get(), 1, &result, &returned);
      if (status != CUBLAS_STATUS_SUCCESS) returned = 0;
    }
    // A plain product must have an algorithm; a fused epilogue that is refused for any
    // reason (types, layout, pointer alignment) only means the unfused path.
    if (status != CUBLAS_STATUS_SUCCESS && status != CUBLAS_STATUS_NOT_SUPPORTED &&
        g.epilogue == CUBLASLT_EPILOGUE_DEFAULT) {
      CUBLAS_RETURN_IF_ERROR(status);
    }
    entry.found =
        status == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (entry.found) entry.algo = result.algo;
    Cache().Insert(key, entry);
  }
  if (!entry.found) return coord::Status::Ok();

  const float alpha = 1.0f;
  CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(ctx.handle(), desc.get(), &alpha, g.a, a_layout.get(), g.b,
                                        b_layout.get(), &g.beta, g.d, d_layout.get(), g.d,
                                        d_layout.get(), &entry.algo, ctx.workspace(),
                                        ctx.workspace_bytes(), stream));
  *ran = true;
  return coord::Status::Ok();
}

// A plain product that must run.
coord::Status RunGemmOrFail(const MatmulContext& ctx, const Gemm& g, cudaStream_t stream,
                            const char* what) {
  bool ran = false;
  RETURN_IF_ERROR(RunGemm(ctx, g, stream, &ran));
  if (!ran) {
    return coord::Internal(std::string(what) +
                           ": no cuBLASLt algorithm for m=" + std::to_string(g.m) +
                           " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k));
  }
  return coord::Status::Ok();
}

coord::Status CheckShape(const char* what, int N, int C, int OC) {
  if (N < 0 || C <= 0 || OC <= 0) {
    return coord::InvalidArgument(std::string(what) + ": bad shape N=" + std::to_string(N) +
                                  " C=" + std::to_string(C) + " OC=" + std::to_string(OC));
  }
  return coord::Status::Ok();
}

// cuBLASLt's GELU epilogues: 16-bit types only (see the top of the file), and the aux
// (GELU input) leading dimension must be a multiple of 8.
template <typename floatX>
bool FusedGeluAllowed(int aux_ld) {
  return !std::is_same_v<floatX, float> && aux_ld % 8 == 0;
}

// g with bias added in cuBLASLt's epilogue where it has an algorithm for that, else
// plain; *bias_added says which.
coord::Status GemmWithBias(const MatmulContext& ctx, Gemm g, const void* bias, cudaStream_t stream,
                           bool* bias_added) {
  *bias_added = false;
  if (bias != nullptr) {
    g.epilogue = CUBLASLT_EPILOGUE_BIAS;
    g.bias = bias;
    RETURN_IF_ERROR(RunGemm(ctx, g, stream, bias_added));
    if (*bias_added) return coord::Status::Ok();
    g.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    g.bias = nullptr;
  }
  return RunGemmOrFail(ctx, g, stream, "matmul_forward");
}

}  // namespace

// ----------------------------------------------------------------------------
// launchers

template <typename floatX>
coord::Status matmul_forward(const MatmulContext& ctx, floatX* out, floatX* pre_gelu,
                             const floatX* inp, const floatX* weight, const floatX* bias, int N,
                             int C, int OC, MatmulEpilogue epilogue, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckShape("matmul_forward", N, C, OC));
  if (epilogue == MatmulEpilogue::kBiasGelu && pre_gelu == nullptr) {
    return coord::InvalidArgument("matmul_forward: kBiasGelu needs pre_gelu");
  }
  if (N == 0) return coord::Status::Ok();
  Gemm g;
  g.trans_a = CUBLAS_OP_T;
  g.trans_b = CUBLAS_OP_N;
  g.m = OC;
  g.n = N;
  g.k = C;
  g.ab_type = g.d_type = CudaTypeOf<floatX>();
  g.a = weight;
  g.lda = C;
  g.b = inp;
  g.ldb = C;
  g.ldd = OC;
  if (epilogue == MatmulEpilogue::kNone) bias = nullptr;

  bool bias_added = false;
  if (epilogue == MatmulEpilogue::kBiasGelu) {
    if (FusedGeluAllowed<floatX>(OC)) {
      Gemm fused = g;
      fused.d = out;
      fused.epilogue =
          bias != nullptr ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
      fused.bias = bias;
      fused.aux = pre_gelu;
      fused.aux_ld = OC;
      bool ran = false;
      RETURN_IF_ERROR(RunGemm(ctx, fused, stream, &ran));
      if (ran) return coord::Status::Ok();
    }
    g.d = pre_gelu;
    RETURN_IF_ERROR(GemmWithBias(ctx, g, bias, stream, &bias_added));
    return launch_bias_act(out, pre_gelu, bias_added ? nullptr : bias, N, OC, /*gelu=*/true,
                           stream);
  }
  g.d = out;
  RETURN_IF_ERROR(GemmWithBias(ctx, g, bias, stream, &bias_added));
  if (bias_added || bias == nullptr) return coord::Status::Ok();
  return launch_bias_act(out, static_cast<floatX*>(nullptr), bias, N, OC, /*gelu=*/false, stream);
}

size_t matmul_backward_scratch_floats(int N, int OC) {
  const int chunks = BiasChunks(N);
  return chunks > 1 ? static_cast<size_t>(chunks) * std::max(OC, 0) : 0;
}

template <typename floatX>
coord::Status matmul_backward(const MatmulContext& ctx, floatX* dinp, float* dweight, float* dbias,
                              const floatX* dout, const floatX* inp, const floatX* weight,
                              const floatX* pre_gelu, int N, int C, int OC, float* scratch,
                              cudaStream_t stream) {
  RETURN_IF_ERROR(CheckShape("matmul_backward", N, C, OC));
  if (dinp == nullptr || dweight == nullptr) {
    return coord::InvalidArgument("matmul_backward: dinp and dweight needed");
  }
  if (N == 0) return coord::Status::Ok();

  // dinp^T (C,N) = weight-as-(C,OC) @ dout^T (OC,N), times gelu'(pre_gelu).
  Gemm g;
  g.trans_a = CUBLAS_OP_N;
  g.trans_b = CUBLAS_OP_N;
  g.m = C;
  g.n = N;
  g.k = OC;
  g.ab_type = g.d_type = CudaTypeOf<floatX>();
  g.a = weight;
  g.lda = C;
  g.b = dout;
  g.ldb = OC;
  g.d = dinp;
  g.ldd = C;
  bool dinp_done = false;
  if (pre_gelu != nullptr && FusedGeluAllowed<floatX>(C)) {
    Gemm fused = g;
    fused.epilogue = CUBLASLT_EPILOGUE_DGELU;
    fused.aux = pre_gelu;
    fused.aux_ld = C;
    RETURN_IF_ERROR(RunGemm(ctx, fused, stream, &dinp_done));
  }
  if (!dinp_done) {
    RETURN_IF_ERROR(RunGemmOrFail(ctx, g, stream, "matmul_backward (dinp)"));
    if (pre_gelu != nullptr) {
      RETURN_IF_ERROR(launch_gelu_grad_scale(dinp, pre_gelu, static_cast<int64_t>(N) * C, stream));
    }
  }

  // dweight^T (C,OC) += inp^T (C,N) @ dout (N,OC), accumulated in fp32.
  Gemm w;
  w.trans_a = CUBLAS_OP_N;
  w.trans_b = CUBLAS_OP_T;
  w.m = C;
  w.n = OC;
  w.k = N;
  w.ab_type = CudaTypeOf<floatX>();
  w.d_type = CUDA_R_32F;
  w.a = inp;
  w.lda = C;
  w.b = dout;
  w.ldb = OC;
  w.d = dweight;
  w.ldd = C;
  w.beta = 1.0f;
  RETURN_IF_ERROR(RunGemmOrFail(ctx, w, stream, "matmul_backward (dweight)"));

  if (dbias != nullptr) RETURN_IF_ERROR(launch_bias_grad(dbias, dout, N, OC, scratch, stream));
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                       \
  template coord::Status matmul_forward<floatX>(const MatmulContext&, floatX*, floatX*,           \
                                                const floatX*, const floatX*, const floatX*, int, \
                                                int, int, MatmulEpilogue, cudaStream_t);          \
  template coord::Status matmul_backward<floatX>(                                                 \
      const MatmulContext&, floatX*, float*, float*, const floatX*, const floatX*, const floatX*, \
      const floatX*, int, int, int, float*, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
