// Token + learned position embedding (GPT-2 / Megatron Embedding), fp32 CPU reference.
#pragma once

namespace kernels::cpu {

// out (B,T,C) = wte[inp[b,t]] + wpe[t]; inp (B,T) token ids in [0, Vp); wte (Vp,C);
// wpe (maxT,C) with T <= maxT, or null (rotary positions: out = wte[inp[b,t]]).
void encoder_forward(float* out, const int* inp, const float* wte, const float* wpe, int B, int T,
                     int C);
// dwte (Vp,C) += scatter of dout (B,T,C) by inp; dwpe (maxT,C) += sum over b of dout
// (skipped when null).
// Parallel over column blocks, rows in fixed order: deterministic, no atomics.
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T,
                      int C);

}  // namespace kernels::cpu
