// Fused softmax + cross-entropy over a padded vocabulary, fp32 CPU reference.
// Columns v >= V (the padding up to Vp that makes the LM head's GEMM fast) are left
// out of the softmax and the loss and get zero gradient, so weights imported from
// Hugging Face (unpadded) give Hugging Face's loss exactly.
#pragma once

namespace kernels::cpu {

// logits (N,Vp) are overwritten in place with the probabilities (padded columns 0);
// losses (N,) = -log p[target]; targets (N,) in [0, V). N = B*T.
void softmax_cross_entropy_forward(float* losses, float* logits, const int* targets, int N, int V,
                                   int Vp);
// probs (N,Vp) as left by forward are overwritten with d(loss)/d(logits), where the
// loss is sum_n dloss * losses[n] (dloss = 1/(B*T) for the mean, times any loss scale).
void softmax_cross_entropy_backward(float* probs, const int* targets, int N, int V, int Vp,
                                    float dloss);

}  // namespace kernels::cpu
