// Fused softmax + cross-entropy over the padded vocabulary on the GPU. CPU twin:
// kernels/cpu/softmax_cross_entropy.h (columns v >= V excluded, zero gradient).
// One block per row; the (N,Vp) logits are read once in forward and once in backward
// and never turned into a separate probability tensor.
#pragma once

#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

// losses (N,) fp32 = logsumexp(logits[n, :V]) - logits[n, target]; lse (N,) fp32
// keeps logsumexp for backward. logits (N,Vp) in floatX are left unchanged.
template <typename floatX>
coord::Status softmax_cross_entropy_forward(float* losses, float* lse, const floatX* logits,
                                            const int* targets, int N, int V, int Vp,
                                            cudaStream_t stream);
// logits (N,Vp) are overwritten with dloss * (softmax - onehot(target)) for v < V and
// 0 for the padding (dloss = loss scale / (B*T)).
template <typename floatX>
coord::Status softmax_cross_entropy_backward(floatX* logits, const float* lse, const int* targets,
                                             int N, int V, int Vp, float dloss,
                                             cudaStream_t stream);

}  // namespace kernels::cuda
