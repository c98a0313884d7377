// The GPT model of gpt.h on one CUDA device, in one of three precisions:
//   fp32  the check mode: fp32 everywhere (no TF32), matches the CPU model to 1e-4;
//   bf16  bf16 weights copy and activations, fp32 master weights, gradients and AdamW;
//   fp16  as bf16 with fp16, and the loss scaled (LossScaler) so gradients stay finite.
// Same parameter layout (gpt_params.h), same Megatron init (done on the host by the
// caller and loaded), same dropout masks (Philox, counter-based) and the same
// checkpoint tensors as the CPU model, so a run can move between CPU and GPU.
//
// Everything is allocated once in Create, from the memory plan (PlanCudaMemory) for
// (max_batch, max_seq): an out-of-memory is reported there, before the first step,
// with the plan's numbers and what to change. Kernels run on the model's own stream;
// Forward returns after the loss is on the host, the rest is asynchronous until a
// call returns a host value. The header is plain C++ (no CUDA types).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt.h"
#include "trainer/model/gpt_config.h"
#include "trainer/model/gpt_params.h"
#include "trainer/optim/adamw.h"

namespace trainer {

enum class Precision { kFp32, kBf16, kFp16 };
// "fp32" / "bf16" / "fp16".
coord::StatusOr<Precision> ParsePrecision(const std::string& name);
const char* PrecisionName(Precision p);

struct CudaDeviceInfo {
  int ordinal = 0;
  std::string name;  // "NVIDIA H100 80GB HBM3"
  int compute_major = 0, compute_minor = 0;
  int multiprocessors = 0;
  size_t total_bytes = 0, free_bytes = 0;
  int driver_version = 0, runtime_version = 0;  // 13000 = 13.0
};
// Selects `ordinal` on the calling thread. FailedPrecondition with what to do when there
// is no CUDA device, the driver is older than the runtime, or the ordinal is not
// visible (CUDA_VISIBLE_DEVICES); Unavailable for other CUDA errors.
coord::StatusOr<CudaDeviceInfo> OpenCudaDevice(int ordinal);
std::string DescribeCudaDevice(const CudaDeviceInfo& d);

// Device bytes of every buffer CudaGptModel allocates for (B, T) at `precision`.
struct CudaMemoryPlan {
  size_t num_params = 0;
  size_t master_bytes = 0;       // fp32 master weights
  size_t params_copy_bytes = 0;  // bf16/fp16 copy used by the kernels (0 in fp32)
  size_t grad_bytes = 0;         // fp32 gradients
  size_t optimizer_bytes = 0;    // AdamW m and v, fp32
  size_t activation_bytes = 0;   // forward activations (per checkpoint_activations)
  size_t backward_bytes = 0;     // backward-only buffers
  size_t workspace_bytes = 0;    // cuBLASLt workspace and kernel scratch
  size_t total() const;
};
CudaMemoryPlan PlanCudaMemory(const GptConfig& config, int B, int T, Precision precision);
std::string FormatCudaMemoryPlan(const CudaMemoryPlan& plan, const GptConfig& config,
                                 Precision precision);

class CudaGptModel {
 public:
  // Opens `device`, checks the plan against its free memory, allocates, zeroes the
  // gradients and the optimizer state. Params are zero until LoadParams.
  static coord::StatusOr<std::unique_ptr<CudaGptModel>> Create(const GptConfig& config,
                                                               int max_batch, int max_seq,
                                                               Precision precision, int device,
                                                               const AdamWConfig& adam);
  virtual ~CudaGptModel() = default;

  virtual const GptConfig& config() const = 0;
  virtual const GptParamLayout& layout() const = 0;
  size_t num_params() const { return layout().num_params(); }
  virtual Precision precision() const = 0;
  virtual const CudaDeviceInfo& device() const = 0;
  virtual const CudaMemoryPlan& plan() const = 0;
  // cudaStream_t of the kernels, as void* to keep this header CUDA-free.
  virtual void* stream() const = 0;

  // fp32 master weights from / to host arrays of num_params() (checkpoints, init).
  virtual coord::Status LoadParams(const float* host) = 0;
  virtual coord::Status StoreParams(float* host) = 0;
  // AdamW m, v (num_params() each) and the update count.
  virtual coord::Status LoadOptimizer(const float* m, const float* v, int64_t step) = 0;
  virtual coord::Status StoreOptimizer(float* m, float* v) = 0;
  virtual int64_t adam_step() const = 0;
  // The fp32 gradients to / from the host (tests, fault injection).
  virtual coord::Status StoreGrads(float* host) = 0;
  virtual coord::Status LoadGrads(const float* host) = 0;

  // As GptModel: inputs, targets (B, T) host token ids; returns the mean loss.
  virtual coord::StatusOr<float> Forward(const int* inputs, const int* targets, int B, int T,
                                         const StepOptions& options) = 0;
  // grads (fp32, device) += d(loss_scale * mean loss)/d(params). grads_ready(from) is
  // called once the kernels producing grads [from, N) are enqueued on stream() (an
  // event recorded on stream() then marks them done), as GptModel::GradsReadyFn.
  virtual coord::Status Backward(float loss_scale,
                                 const GptModel::GradsReadyFn& grads_ready = {}) = 0;
  virtual coord::Status ZeroGrad() = 0;
  virtual float* grad_data() = 0;  // (num_params,) device pointer
  // sum of grad^2 in double (non-finite on overflow); waits for the stream.
  virtual coord::StatusOr<double> GradNormSquared() = 0;
  // One AdamW update at lr of the master weights from grads * grad_scale (1/loss scale
  // times the clip coefficient), then the compute copy; AdamWConfig as the CPU's,
  // weight decay only where the layout says so.
  virtual coord::Status Step(float lr, float grad_scale) = 0;
  // Waits for the stream; errors of earlier asynchronous work surface here.
  virtual coord::Status Synchronize() = 0;
  // Device memory in use (cudaMemGetInfo) at the highest point seen by Synchronize /
  // Forward / Backward sampling, minus what was in use before Create.
  virtual size_t peak_used_bytes() const = 0;
};

}  // namespace trainer
