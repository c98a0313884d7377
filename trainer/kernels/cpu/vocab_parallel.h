// Megatron's vocab-parallel embedding and cross-entropy, fp32 CPU: each
// tensor-parallel rank holds rows [vocab_begin, vocab_begin + Vl) of the (padded)
// embedding, which is also its slice of the tied LM head. These are the local steps;
// the model runs the collectives between them over the tensor-parallel group:
//
//   embedding: lookup (rows of other ranks give 0) -> all-reduce sum -> + positions
//   loss:      row max -> all-gather, max -> exp + sums -> all-reduce sum (sum of exps,
//              target logit) -> normalise; the gradient is softmax minus one-hot on the
//              rank that owns the target, softmax elsewhere.
//
// With one rank (vocab_begin 0, Vl = Vp) every step reduces to encoder.h and
// softmax_cross_entropy.h in the same operation order, so tensor-parallel losses match
// one rank's. Columns at or past the real vocabulary V (padding) never count.
#pragma once

namespace kernels::cpu {

// The columns of this shard inside the real vocabulary: min(Vl, V - vocab_begin) >= 0.
int vocab_shard_valid(int V, int vocab_begin, int Vl);

// out (B,T,C) = wte_shard[inp - vocab_begin] where inp is in this shard, else 0.
void vocab_parallel_embedding_forward(float* out, const int* inp, const float* wte_shard,
                                      int vocab_begin, int Vl, int B, int T, int C);
// out (B,T,C) += wpe[t]: after the all-reduce, so positions are added once.
void position_embedding_add(float* out, const float* wpe, int B, int T, int C);
// dwte_shard += dout scattered to this shard's tokens; dwpe (maxT,C) += sum over b of
// dout (every rank computes the same dwpe; skipped when null: rotary positions).
void vocab_parallel_embedding_backward(float* dwte_shard, float* dwpe, const float* dout,
                                       const int* inp, int vocab_begin, int Vl, int B, int T,
                                       int C);

// row_max (N,) = max over the valid columns of logits (N, Vl) (-inf when none).
void vocab_parallel_ce_max(float* row_max, const float* logits, int N, int Vl, int valid);
// With row_max the max over all ranks: logits := exp(logits - max) on valid columns,
// 0 on padding; sum_exp (N,) = their sum (double, column order); target_logit (N,) =
// the target's logit before exp where this shard holds it, else 0.
void vocab_parallel_ce_exp(double* sum_exp, float* target_logit, float* logits,
                           const float* row_max, const int* targets, int N, int Vl, int valid,
                           int vocab_begin);
// With sum_exp and target_logit summed over ranks: logits := probabilities;
// losses (N,) = log(sum) - (target_logit - max).
void vocab_parallel_ce_finish(float* losses, float* logits, const double* sum_exp,
                              const float* target_logit, const float* row_max, int N, int Vl,
                              int valid);
// probs (N, Vl) := (probs - onehot(target on this shard)) * dloss; padding 0.
void vocab_parallel_ce_backward(float* probs, const int* targets, int N, int Vl, int valid,
                                int vocab_begin, float dloss);

}  // namespace kernels::cpu
