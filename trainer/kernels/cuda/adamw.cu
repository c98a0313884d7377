// Fused AdamW over the fp32 master copy (see adamw.cuh): one pass per element reads
// grad, master, m and v, writes master, m, v and the rounded compute copy.
//
// Bit-compatibility with kernels/cpu/adamw.cc: the bias-correction scalars are computed
// on the host exactly as the CPU does (double pow/sqrt, then rounded to float), and every
// per-element fp32 operation is an explicitly rounded intrinsic in the CPU's order, so
// nvcc cannot contract a multiply-add into an FMA the CPU (x86-64 SSE, no -mfma) does
// not perform. With the CPU fed g * grad_scale the results should be identical bits.
#include <cmath>
#include <cstdint>

#include "trainer/kernels/cuda/adamw.cuh"
#include "trainer/kernels/cuda/common.cuh"
#include "trainer/kernels/cuda/vec.cuh"

namespace kernels::cuda {

namespace {

struct AdamWScalars {
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float eps;
  float decay;         // 1 - lr * weight_decay
  float step_size;     // lr / (1 - beta1^step)
  float inv_bc2_sqrt;  // 1 / sqrt(1 - beta2^step)
  float grad_scale;
};

// One element, in the CPU's order; master, m and v are updated in place.
__device__ __forceinline__ void AdamWElement(float& master, float grad, float& m, float& v,
                                             const AdamWScalars& s) {
  const float g = __fmul_rn(grad, s.grad_scale);
  const float mi = __fadd_rn(__fmul_rn(s.beta1, m), __fmul_rn(s.one_minus_beta1, g));
  const float vi = __fadd_rn(__fmul_rn(s.beta2, v), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
  m = mi;
  v = vi;
  const float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), s.inv_bc2_sqrt), s.eps);
  master = __fsub_rn(__fmul_rn(master, s.decay), __fmul_rn(s.step_size, __fdiv_rn(mi, denom)));
}

// Chunks of 4 elements; kVec4 (every pointer aligned) loads whole chunks as vectors, the
// chunk holding the end of the range goes element by element.
template <typename floatX, bool kVec4>
__global__ void adamw_kernel(float* master, floatX* params_copy, const float* grads, float* m,
                             float* v, size_t N, AdamWScalars s) {
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t chunks = CEIL_DIV(N, static_cast<size_t>(4));
  for (size_t c = first; c < chunks; c += stride) {
    const size_t i0 = 4 * c;
    if (kVec4 && i0 + 4 <= N) {
      float4 p4 = reinterpret_cast<const float4*>(master)[c];
      const float4 g4 = reinterpret_cast<const float4*>(grads)[c];
      float4 m4 = reinterpret_cast<const float4*>(m)[c];
      float4 v4 = reinterpret_cast<const float4*>(v)[c];
      AdamWElement(p4.x, g4.x, m4.x, v4.x, s);
      AdamWElement(p4.y, g4.y, m4.y, v4.y, s);
      AdamWElement(p4.z, g4.z, m4.z, v4.z, s);
      AdamWElement(p4.w, g4.w, m4.w, v4.w, s);
      reinterpret_cast<float4*>(master)[c] = p4;
      reinterpret_cast<float4*>(m)[c] = m4;
      reinterpret_cast<float4*>(v)[c] = v4;
      if (params_copy != nullptr) {
        Pack<floatX, 4> copy;
        copy.v[0] = FromFloat<floatX>(p4.x);
        copy.v[1] = FromFloat<floatX>(p4.y);
        copy.v[2] = FromFloat<floatX>(p4.z);
        copy.v[3] = FromFloat<floatX>(p4.w);
        reinterpret_cast<Pack<floatX, 4>*>(params_copy)[c] = copy;
      }
    } else {
      for (size_t i = i0; i < i0 + 4 && i < N; ++i) {
        float p = master[i], mi = m[i], vi = v[i];
        AdamWElement(p, grads[i], mi, vi, s);
        master[i] = p;
        m[i] = mi;
        v[i] = vi;
        if (params_copy != nullptr) params_copy[i] = FromFloat<floatX>(p);
      }
    }
  }
}

}  // namespace

template <typename floatX>
coord::Status adamw_update(float* master, floatX* params_copy, const float* grads, float* m,
                           float* v, size_t N, float lr, float beta1, float beta2, float eps,
                           float weight_decay, long long step, float grad_scale,
                           cudaStream_t stream) {
  if (step < 1) return coord::InvalidArgument("adamw_update: step must be >= 1");
  if (N == 0) return coord::Status::Ok();
  // The CPU twin's scalars, same expressions and precisions (kernels/cpu/adamw.cc).
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  AdamWScalars s;
  s.beta1 = beta1;
  s.one_minus_beta1 = 1.0f - beta1;
  s.beta2 = beta2;
  s.one_minus_beta2 = 1.0f - beta2;
  s.eps = eps;
  s.decay = 1.0f - lr * weight_decay;
  s.step_size = static_cast<float>(lr / bias_correction1);
  s.inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  s.grad_scale = grad_scale;

  const bool vec4 = AlignedTo(master, 16) && AlignedTo(grads, 16) && AlignedTo(m, 16) &&
                    AlignedTo(v, 16) &&
                    (params_copy == nullptr || AlignedTo(params_copy, 4 * sizeof(floatX)));
  const size_t chunks = CEIL_DIV(N, static_cast<size_t>(4));
  const unsigned grid = ElementwiseGrid(chunks);
  if (vec4) {
    adamw_kernel<floatX, true>
        <<<grid, kElementwiseBlock, 0, stream>>>(master, params_copy, grads, m, v, N, s);
  } else {
    adamw_kernel<floatX, false>
        <<<grid, kElementwiseBlock, 0, stream>>>(master, params_copy, grads, m, v, N, s);
  }
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return coord::Status::Ok();
}

#define INSTANTIATE(floatX)                                                                  \
  template coord::Status adamw_update<floatX>(float*, floatX*, const float*, float*, float*, \
                                              size_t, float, float, float, float, float,     \
                                              long long, float, cudaStream_t);
COORD_INSTANTIATE_FLOAT_TYPES(INSTANTIATE)
#undef INSTANTIATE

}  // namespace kernels::cuda
