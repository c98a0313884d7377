// Causal attention over a KV cache (generation), fp32 CPU: n new tokens at positions
// pos0 .. pos0+n-1 attend to the cached keys and values of positions 0 .. their own
// (the new tokens' K/V appended first). n = the prompt (or a chunk of it) for the
// prefill, 1 per decode step. The cache keeps KV heads, not query heads: query head h
// reads KV head h / (NH / KV) (grouped-query attention), so a Qwen2 cache is NH / KV
// times smaller than the queries.
// Same arithmetic, in the same order, as attention_forward (attention.h) without
// dropout, so given the same q, k, v rows it gives the same bits.
#pragma once

#include "trainer/kernels/cpu/qkv_layout.h"

namespace kernels::cpu {

// One layer's cache: k_cache, v_cache (KV, S, HS), S = capacity in positions.
// Copies the k and v heads of n tokens (rows of qkv (n, layout.row()), placed as
// layout says) to cache positions pos0 .. pos0+n-1 (pos0 + n <= S).
void kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int n, int pos0, int S,
                     const QkvLayout& layout);
// out (n, NH HS) head-major: token i (position pos0 + i) attends to cache positions
// 0 .. pos0 + i with its query heads from qkv (n, layout.row()). Parallel over
// (token, head); each task owns its output slice: deterministic for any thread count.
void attention_decode_forward(float* out, const float* qkv, const float* k_cache,
                              const float* v_cache, int n, int pos0, int S,
                              const QkvLayout& layout);

}  // namespace kernels::cpu
