// cuda::gelu_* against cpu::gelu_*. Tolerance 1e-5 relative: both use tanhf in
// fp32; the GPU's tanhf differs from glibc's by a few ulp.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "trainer/kernels/cpu/gelu.h"
#include "trainer/kernels/cuda/gelu.cuh"

namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

TEST(GeluGpuTest, ForwardAndBackwardMatchCpuReference) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device visible";
  const int N = 1 << 20;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.f, 2.f);
  std::vector<float> inp(N), dout(N), out_cpu(N), dinp_cpu(N, 0.1f);
  for (int i = 0; i < N; ++i) inp[i] = dist(rng), dout[i] = dist(rng);
  kernels::cpu::gelu_forward(out_cpu.data(), inp.data(), N);
  kernels::cpu::gelu_backward(dinp_cpu.data(), inp.data(), dout.data(), N);

  float *d_inp, *d_out, *d_dout, *d_dinp;
  ASSERT_EQ(cudaMalloc(&d_inp, N * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_out, N * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_dout, N * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_dinp, N * 4), cudaSuccess);
  std::vector<float> init(N, 0.1f);
  cudaMemcpy(d_inp, inp.data(), N * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_dout, dout.data(), N * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_dinp, init.data(), N * 4, cudaMemcpyHostToDevice);
  ASSERT_EQ(kernels::cuda::gelu_forward(d_out, d_inp, N, 0), "");
  ASSERT_EQ(kernels::cuda::gelu_backward(d_dinp, d_inp, d_dout, N, 0), "");
  std::vector<float> out(N), dinp(N);
  cudaMemcpy(out.data(), d_out, N * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(dinp.data(), d_dinp, N * 4, cudaMemcpyDeviceToHost);
  for (int i = 0; i < N; ++i) {
    ASSERT_NEAR(out[i], out_cpu[i], 1e-5f * (1.f + std::fabs(out_cpu[i]))) << i;
    ASSERT_NEAR(dinp[i], dinp_cpu[i], 1e-5f * (1.f + std::fabs(dinp_cpu[i]))) << i;
  }
  cudaFree(d_inp); cudaFree(d_out); cudaFree(d_dout); cudaFree(d_dinp);
}

}  // namespace
