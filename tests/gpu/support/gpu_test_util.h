// Shared by the GPU tests: skip without a device, the compute types every kernel test
// runs and their tolerance tables, launcher statuses as gtest assertions, RAII device
// buffers, copies, and host-side rounding to the compute types so a CPU reference sees
// exactly the inputs the GPU kernel saw.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "trainer/kernels/cuda/common.cuh"

namespace gpu_test {

inline bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU()    \
  if (!::gpu_test::HaveGpu()) \
  GTEST_SKIP() << "no CUDA device visible (GPU tests run on GPU machines: scripts/gpu-check.sh)"

// ---------------------------------------------------------------------------
// compute types and tolerances

// The compute types of the precision modes; typed tests are named by ComputeTypeNames
// ("fp32", "bf16", "fp16"), e.g. LayerNormGpuTest/bf16.ForwardMatchesCpu.
using ComputeTypes = ::testing::Types<float, __nv_bfloat16, __half>;
template <typename floatX>
const char* ComputeTypeName() {
  return kernels::cuda::DTypeName(kernels::cuda::DTypeOf<floatX>());
}
struct ComputeTypeNames {
  template <typename floatX>
  static std::string GetName(int) {
    return ComputeTypeName<floatX>();
  }
};

// Every element must satisfy |got - want| <= atol + rtol * |want| (see CompareClose).
struct Tolerance {
  float atol, rtol;
};

// One entry per compute type: a test's tolerance table, written next to the comment that
// explains it. For<floatX>() picks the entry at compile time.
template <typename V>
struct PerComputeType {
  V fp32, bf16, fp16;
  template <typename floatX>
  constexpr const V& For() const {
    if constexpr (std::is_same_v<floatX, float>) {
      return fp32;
    } else if constexpr (std::is_same_v<floatX, __nv_bfloat16>) {
      return bf16;
    } else {
      static_assert(std::is_same_v<floatX, __half>, "not a compute type");
      return fp16;
    }
  }
};
using ToleranceTable = PerComputeType<Tolerance>;

// EXPECT_TRUE(IsOk(launcher(...))): a failure prints the status (code and message).
inline ::testing::AssertionResult IsOk(const coord::Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status.ToString();
}

// ---------------------------------------------------------------------------
// device buffers and host conversions

// A device array of n elements of T, freed on destruction.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (cudaMalloc(&ptr_, (n == 0 ? 1 : n) * sizeof(T)) != cudaSuccess) ptr_ = nullptr;
  }
  DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { Upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void Upload(const std::vector<T>& host) {
    cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> Download() const {
    std::vector<T> host(n_);
    cudaDeviceSynchronize();
    cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return host;
  }
  void Fill(unsigned char byte) { cudaMemset(ptr_, byte, n_ * sizeof(T)); }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

template <typename floatX>
std::vector<floatX> ToType(const std::vector<float>& x) {
  std::vector<floatX> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = kernels::cuda::FromFloat<floatX>(x[i]);
  return out;
}
template <typename floatX>
std::vector<float> ToFloat(const std::vector<floatX>& x) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = kernels::cuda::ToFloat<floatX>(x[i]);
  return out;
}
// x rounded to floatX and back: what a floatX buffer holds.
template <typename floatX>
std::vector<float> RoundTo(const std::vector<float>& x) {
  return ToFloat<floatX>(ToType<floatX>(x));
}

inline std::vector<float> RandomNormal(size_t n, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Max |a-b| / (atol/rtol style): every i must satisfy |a-b| <= atol + rtol*|b|.
// Returns "" or the first offending index with both values.
inline std::string CompareClose(const std::vector<float>& got, const std::vector<float>& want,
                                float atol, float rtol) {
  if (got.size() != want.size())
    return "size " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const float d = got[i] - want[i];
    const float lim = atol + rtol * (want[i] < 0 ? -want[i] : want[i]);
    if (!(d <= lim && -d <= lim)) {
      return "index " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " +
             std::to_string(want[i]) + " (atol " + std::to_string(atol) + ", rtol " +
             std::to_string(rtol) + ")";
    }
  }
  return "";
}
inline std::string CompareClose(const std::vector<float>& got, const std::vector<float>& want,
                                Tolerance tol) {
  return CompareClose(got, want, tol.atol, tol.rtol);
}

}  // namespace gpu_test
