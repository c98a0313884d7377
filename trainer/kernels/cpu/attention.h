// Causal multi-head self-attention core (after the QKV projection, before the output
// projection), fp32 CPU reference: y = dropout(softmax(q k^T / sqrt(HS) + causal)) v,
// with grouped-query attention: query head h reads KV head h / (NH / KV), and
// optionally confined to segments (packed samples: a token sees only its own sample's
// earlier tokens).
// Forward is parallel over (b, h), backward over (b, KV group) (the group's query heads
// accumulate into its dk, dv in head order); each task owns disjoint slices of every
// output, so the kernels are deterministic for any thread count.
#pragma once

#include "trainer/core/philox.h"
#include "trainer/kernels/cpu/qkv_layout.h"

namespace kernels::cpu {

// qkv (B,T,QKV) holds q, k, v as QkvLayout::Make(C, NH, kv_heads) places them: with
// kv_heads 0, [q | k | v], each (NH, HS) head-major inside C = NH*HS (QKV = 3C);
// with kv_heads > 0, Megatron's grouped layout (QKV = (NH + 2 kv_heads) HS).
// out (B,T,C) head-major; att (B,NH,T,T) stores the softmax probabilities before
// dropout (zero above the diagonal). Attention dropout p (0 = off) draws element
// (h*T + t)*T + t2 of sample b's stream SampleStream(rng, b) (philox.h), with h the
// global head index head_offset + local h: a tensor-parallel rank holding heads
// [head_offset, head_offset + NH) draws the masks those heads get on one rank.
// kv_begin (B,T), optional: token (b,t) attends keys kv_begin[b*T+t] .. t only (the
// first token of its segment, <= t; att is zero outside); null: keys 0 .. t.
void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH,
                       float p, const trainer::RngStream& rng, int head_offset = 0,
                       int kv_heads = 0, const int* kv_begin = nullptr);
// dqkv (B,T,QKV) += gradient; dout (B,T,C); qkv, att as saved by forward; same p, rng,
// kv_begin.
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B,
                        int T, int C, int NH, float p, const trainer::RngStream& rng,
                        int head_offset = 0, int kv_heads = 0, const int* kv_begin = nullptr);

}  // namespace kernels::cpu
