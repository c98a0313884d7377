// CUDA node checks: the driver's CUDA version (and that it supports the runtime the
// job was built for), the CUDA runtime and the NCCL version. Each library is opened
// with dlopen through System::Symbol, never linked; the three entry points are plain
// C functions `int f(int*)` returning 0 on success (CUresult CUDA_SUCCESS,
// cudaError_t cudaSuccess, ncclResult_t ncclSuccess), declared here from their APIs.
#include <string>
#include <vector>

#include "common/cuda_version.h"
#include "env_check/check.h"

namespace coord::env_check {
namespace {

using VersionFn = int (*)(int*);  // cuDriverGetVersion, cudaRuntimeGetVersion, ncclGetVersion

// 22809 -> "2.28.9": NCCL_VERSION_CODE is major*10000 + minor*100 + patch since 2.9,
// major*1000 + minor*100 + patch before.
std::string NcclVersionString(int v) {
  if (v >= 20900) {
    return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." +
           std::to_string(v % 100);
  }
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 100) + "." +
         std::to_string(v % 100);
}

// The first of `libraries` that has `symbol`, called; 0 with *where empty when none
// has it, or the error code in *error when the call fails.
int QueryVersion(const System& sys, const std::vector<std::string>& libraries, const char* symbol,
                 std::string* where, int* error) {
  for (const std::string& lib : libraries) {
    auto fn = reinterpret_cast<VersionFn>(sys.Symbol(lib, symbol));
    if (fn == nullptr) continue;
    *where = lib;
    int version = 0;
    *error = fn(&version);
    return *error == 0 ? version : 0;
  }
  where->clear();
  return 0;
}

CheckResult CudaDriver(const CheckContext& ctx, const System& sys) {
  CheckResult r{
      "cuda_driver",
      true,
      ctx.gpus_required ? Severity::kFail : Severity::kInfo,
      "",
      ctx.cuda_runtime_version > 0
          ? "CUDA >= " + CudaVersionString(ctx.cuda_runtime_version) + " (the job's runtime)"
          : (ctx.gpus_required ? "a CUDA driver" : "none (the job does not need GPUs)"),
      "",
      {}};
  std::string lib;
  int error = 0;
  int version = QueryVersion(sys, {"libcuda.so.1"}, "cuDriverGetVersion", &lib, &error);
  if (lib.empty()) {
    r.passed = !ctx.gpus_required;
    r.found = "libcuda.so.1 not found (no NVIDIA driver)";
    r.hint =
        "libcuda.so.1 comes with the NVIDIA driver, not the CUDA toolkit: install the "
        "driver (or mount it into the container with the NVIDIA container toolkit)";
    return r;
  }
  if (error != 0 || version <= 0) {
    r.passed = !ctx.gpus_required;
    r.found = "cuDriverGetVersion failed (CUresult " + std::to_string(error) + ")";
    r.hint =
        "libcuda.so.1 may be the toolkit's stub (lib64/stubs) on the library path: "
        "remove it from LD_LIBRARY_PATH and install the driver";
    return r;
  }
  r.found = "driver supports CUDA " + CudaVersionString(version);
  r.facts.push_back({"cuda_driver_version", CudaVersionString(version)});
  if (ctx.cuda_runtime_version > 0 && version < ctx.cuda_runtime_version) {
    r.passed = false;
    r.severity = Severity::kFail;
    r.found = "driver supports CUDA " + CudaVersionString(version) + ", the job was built for " +
              CudaVersionString(ctx.cuda_runtime_version) + ": update the driver";
    r.hint = "install a driver for CUDA " + CudaVersionString(ctx.cuda_runtime_version) +
             " or newer (see the CUDA toolkit release notes for the minimum), or the "
             "cuda-compat package for this runtime, or rebuild the job for CUDA " +
             CudaVersionString(version);
  }
  return r;
}

CheckResult CudaRuntime(const CheckContext&, const System& sys) {
  CheckResult r{"cuda_runtime", true, Severity::kInfo, "", "", "", {}};
  std::string lib;
  int error = 0;
  int version =
      QueryVersion(sys, {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"},
                   "cudaRuntimeGetVersion", &lib, &error);
  if (lib.empty()) {
    r.found = "libcudart not found on the library path";
    r.hint =
        "jobs usually bring their own runtime; add the toolkit's lib64 to "
        "LD_LIBRARY_PATH (or ldconfig) to report it here";
    return r;
  }
  if (error != 0 || version <= 0) {
    r.found = lib + ": cudaRuntimeGetVersion failed (cudaError_t " + std::to_string(error) + ")";
    return r;
  }
  r.found = "CUDA runtime " + CudaVersionString(version) + " (" + lib + ")";
  r.facts.push_back({"cuda_runtime_version", CudaVersionString(version)});
  return r;
}

CheckResult NcclVersion(const CheckContext& ctx, const System& sys) {
  CheckResult r{"nccl_version", true, Severity::kInfo, "", "", "", {}};
  std::string lib;
  int error = 0;
  int version = QueryVersion(sys, {"libnccl.so.2"}, "ncclGetVersion", &lib, &error);
  if (lib.empty() || error != 0 || version <= 0) {
    r.found = lib.empty() ? "libnccl.so.2 not found on the library path"
                          : "ncclGetVersion failed (ncclResult_t " + std::to_string(error) + ")";
    if (ctx.gpus_required) {
      r.severity = Severity::kWarn;
      r.passed = false;
      r.hint =
          "install NCCL (libnccl2) or add its lib directory to LD_LIBRARY_PATH; a job "
          "that ships its own NCCL (PyTorch wheels do) can ignore this";
    }
    return r;
  }
  r.found = "NCCL " + NcclVersionString(version);
  r.facts.push_back({"nccl_version", NcclVersionString(version)});
  return r;
}

}  // namespace

const std::vector<Check>& CudaChecks() {
  static const std::vector<Check> checks = {
      {"cuda_driver", "CUDA driver version, and that it supports the job's CUDA runtime",
       CudaDriver},
      {"cuda_runtime", "CUDA runtime version (libcudart)", CudaRuntime},
      {"nccl_version", "NCCL version (libnccl.so.2)", NcclVersion},
  };
  return checks;
}

}  // namespace coord::env_check
