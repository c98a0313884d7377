// Rotary position embedding (RoPE) on q and k, fp32 CPU reference, with Hugging Face's
// rotate_half pairing (Llama, Qwen2; Megatron's rotary_interleaved=False): element i
// of a head's first half pairs with element i + HS/2,
//   out[i]        = x[i] cos(p f_i) - x[i + HS/2] sin(p f_i)
//   out[i + HS/2] = x[i + HS/2] cos(p f_i) + x[i] sin(p f_i),   f_i = base^(-2i/HS),
// at position p of the token (0..T-1, or given per token). In place on the QKV
// projection's output; v is left alone.
#pragma once

#include "trainer/kernels/cpu/qkv_layout.h"

namespace kernels::cpu {

// cos, sin (P, HS/2) for positions 0..P-1, computed as HF does in fp32 (inv_freq =
// 1 / base^(2i/HS), angle = p * inv_freq, both rounded to fp32).
void rope_table(float* cos, float* sin, int P, int HS, float base);
// qkv (B, T, layout.row()) in place: every query and key head of token (b, t) rotated
// by position pos[b*T + t] (null: t). cos, sin from rope_table, with rows >= every
// position.
void rope_forward(float* qkv, const float* cos, const float* sin, int B, int T,
                  const QkvLayout& layout, const int* pos = nullptr);
// dqkv (B, T, layout.row()) in place: the gradient with respect to the rotated q, k
// becomes that with respect to the unrotated ones (the transposed rotation).
void rope_backward(float* dqkv, const float* cos, const float* sin, int B, int T,
                   const QkvLayout& layout, const int* pos = nullptr);

}  // namespace kernels::cpu
