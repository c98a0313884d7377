// Rotary position embedding on q and k on the GPU, in place on the QKV projection's
// output (HF's rotate_half pairing; both QKV layouts of kernels/cpu/qkv_layout.h).
// CPU twin: kernels/cpu/rope.h. Rotations in fp32 whatever the compute type.
#pragma once

#include "trainer/kernels/cpu/qkv_layout.h"
#include "trainer/kernels/cuda/common.cuh"

namespace kernels::cuda {

using kernels::cpu::QkvLayout;

// qkv (B, T, layout.row()) in floatX, in place; cos, sin (P, HS/2) fp32 device tables
// (kernels::cpu::rope_table, copied up); pos (B*T) device positions or null (t).
template <typename floatX>
coord::Status rope_forward(floatX* qkv, const float* cos, const float* sin, int B, int T,
                           const QkvLayout& layout, const int* pos, cudaStream_t stream);
// dqkv in place: the transposed rotation (overwrites the q and k parts, as the CPU twin).
template <typename floatX>
coord::Status rope_backward(floatX* dqkv, const float* cos, const float* sin, int B, int T,
                            const QkvLayout& layout, const int* pos, cudaStream_t stream);

}  // namespace kernels::cuda
