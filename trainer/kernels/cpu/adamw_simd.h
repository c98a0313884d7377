// Vectorised, multi-threaded AdamW for the CPU backend and for optimizer offload
// (DeepSpeed's CPU Adam): same math and operation order as the fp32 reference
// (adamw.h), so every path is bitwise equal to it. Paths: AVX-512F, AVX2 (+FMA, F16C
// for the fp16 copy) and scalar, picked at run time; optional fused copy-out of the
// updated params to bf16 or fp16 (the GPU's compute copy). OpenMP threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kernels::cpu {

// kAuto = GPT_RANK_CPU_ADAM_ISA (scalar|avx2|avx512) when set to a path this CPU runs,
// else the widest path it runs (a bad value is reported once on stderr). An explicit
// path the CPU lacks also runs as the widest path it has (tests ask
// adamw_isa_supported first).
enum class AdamIsa { kAuto, kScalar, kAvx2, kAvx512 };
enum class HalfType { kBf16, kFp16 };

bool adamw_isa_supported(AdamIsa isa);
// The path kAuto resolves to (read once per process); never kAuto.
AdamIsa adamw_default_isa();
const char* adamw_isa_name(AdamIsa isa);
// "scalar", "avx2", "avx512" (or "auto"); false on anything else.
bool adamw_parse_isa(const char* name, AdamIsa* out);

// adamw_update (adamw.h) over params, grads, m, v (N,) with g = grads[i] * grad_scale
// (1/loss_scale times the clip coefficient, so the gradients need no separate pass;
// grad_scale 1 is bitwise the reference). When params_half is non-null the updated
// params are also written to params_half (N,) as half_type bits (bf16: round to
// nearest even, NaN -> 0x7FC0 as c10::BFloat16; fp16: IEEE round to nearest even
// with subnormals, NaN quietened keeping sign and top payload bits, as x86 F16C).
// No alignment needed. Threads: the OpenMP team, static contiguous chunks whose
// borders fall on 64-byte lines of params; one thread below kParallelMinWork.
void adamw_update_simd(float* params, const float* grads, float* m, float* v, size_t N,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       long long step, float grad_scale = 1.0f, uint16_t* params_half = nullptr,
                       HalfType half_type = HalfType::kBf16, AdamIsa isa = AdamIsa::kAuto);

// The portable conversions the scalar path uses (the vector paths match them bitwise).
uint16_t float_to_bf16_bits(float x);
uint16_t float_to_fp16_bits(float x);

}  // namespace kernels::cpu
