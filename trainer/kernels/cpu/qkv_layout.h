// Where each head's q, k and v sit inside one token's row of the fused QKV projection
// output (B, T, QKV): shared by the attention and RoPE kernels (CPU and CUDA).
//   plain   [q (NH HS) | k (KV HS) | v (KV HS)], each block head-major (GPT-2's, HF's
//           c_attn; KV = NH without grouped-query attention)
//   grouped Megatron's GQA layout: per KV group g, [q heads g R .. g R + R - 1 | k_g | v_g]
//           with R = NH / KV query heads per group; a tensor-parallel rank's rows are
//           whole groups.
// Query head h uses KV head (group) h / R in both.
#pragma once

namespace kernels::cpu {

struct QkvLayout {
  int NH = 1;  // query heads (of this rank)
  int KV = 1;  // key/value heads (of this rank)
  int HS = 1;  // head size
  bool grouped = false;

  // kv_heads 0 means NH, the plain layout (GPT-2); > 0 the grouped GQA layout.
  static QkvLayout Make(int C, int NH, int kv_heads) {
    QkvLayout l;
    l.NH = NH;
    l.HS = C / NH;
    l.KV = kv_heads > 0 ? kv_heads : NH;
    l.grouped = kv_heads > 0;
    return l;
  }
  int row() const { return (NH + 2 * KV) * HS; }  // floats per token
  int per_group() const { return NH / KV; }        // R
  int group(int h) const { return h / per_group(); }
  int q(int h) const {
    return grouped ? group(h) * (per_group() + 2) * HS + (h % per_group()) * HS : h * HS;
  }
  int k(int g) const { return grouped ? g * (per_group() + 2) * HS + per_group() * HS : (NH + g) * HS; }
  int v(int g) const { return grouped ? k(g) + HS : (NH + KV + g) * HS; }
};

}  // namespace kernels::cpu
