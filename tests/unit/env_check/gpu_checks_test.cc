// GPU and CUDA checks (checks/gpu.cc, checks/cuda.cc) against FakeSystem nodes: NVML,
// the CUDA driver and runtime and NCCL are faked by pointing FakeSystem::symbols at the
// functions below, nvidia-smi, mthreads-gmi, journalctl and dmesg by canned output.
// The last tests run the checks on this machine (no GPU, no driver).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "env_check/check.h"
#include "env_check/report.h"
#include "env_check/system.h"
#include "tests/unit/env_check/fake_system.h"

namespace coord::env_check {
namespace {

using testing::FakeSystem;

// --- A fake NVML: what the node's GPUs report, set per test. ---
struct FakeNvmlState {
  int init_rc = 0;
  std::string driver = "550.54.15";
  unsigned count = 8;
  std::vector<int> persistence;  // per GPU; missing entries are enabled
  int ecc_rc = 0;                // 3 = NVML_ERROR_NOT_SUPPORTED
  std::map<unsigned, unsigned long long> uncorrected;
  int pending_rc = 0;
  std::map<unsigned, int> pages_pending;
  int remap_rc = 0;
  std::map<unsigned, unsigned> rows_pending, rows_failed;
  int inits = 0, shutdowns = 0;
};
FakeNvmlState g_nvml;

unsigned Index(void* dev) { return static_cast<unsigned>(reinterpret_cast<uintptr_t>(dev) - 1); }

int FakeInit() {
  ++g_nvml.inits;
  return g_nvml.init_rc;
}
int FakeShutdown() {
  ++g_nvml.shutdowns;
  return 0;
}
const char* FakeErrorString(int rc) { return rc == 9 ? "Driver Not Loaded" : "Unknown Error"; }
int FakeDriverVersion(char* buf, unsigned len) {
  snprintf(buf, len, "%s", g_nvml.driver.c_str());
  return 0;
}
int FakeCount(unsigned* n) {
  *n = g_nvml.count;
  return 0;
}
int FakeHandle(unsigned i, void** dev) {
  if (i >= g_nvml.count) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *dev = reinterpret_cast<void*>(static_cast<uintptr_t>(i) + 1);
  return 0;
}
int FakePersistence(void* dev, int* mode) {
  unsigned i = Index(dev);
  *mode = i < g_nvml.persistence.size() ? g_nvml.persistence[i] : 1;
  return 0;
}
int FakeEcc(void* dev, int type, int counter, unsigned long long* n) {
  if (g_nvml.ecc_rc != 0) return g_nvml.ecc_rc;
  EXPECT_EQ(type, 1);     // NVML_MEMORY_ERROR_TYPE_UNCORRECTED
  EXPECT_EQ(counter, 0);  // NVML_VOLATILE_ECC
  auto it = g_nvml.uncorrected.find(Index(dev));
  *n = it == g_nvml.uncorrected.end() ? 0 : it->second;
  return 0;
}
int FakePagesPending(void* dev, int* pending) {
  if (g_nvml.pending_rc != 0) return g_nvml.pending_rc;
  *pending = g_nvml.pages_pending.count(Index(dev)) ? g_nvml.pages_pending[Index(dev)] : 0;
  return 0;
}
int FakeRemapped(void* dev, unsigned* corr, unsigned* unc, unsigned* pending, unsigned* failed) {
  if (g_nvml.remap_rc != 0) return g_nvml.remap_rc;
  *corr = *unc = 0;
  *pending = g_nvml.rows_pending.count(Index(dev)) ? g_nvml.rows_pending[Index(dev)] : 0;
  *failed = g_nvml.rows_failed.count(Index(dev)) ? g_nvml.rows_failed[Index(dev)] : 0;
  return 0;
}

// --- CUDA driver / runtime / NCCL: one version each. ---
int g_cuda_driver = 12040, g_cuda_runtime = 12040, g_nccl = 22809;
int FakeCuDriverGetVersion(int* v) {
  *v = g_cuda_driver;
  return 0;
}
int FakeCudaRuntimeGetVersion(int* v) {
  *v = g_cuda_runtime;
  return 0;
}
int FakeNcclGetVersion(int* v) {
  *v = g_nccl;
  return 0;
}

template <typename Fn>
void* Addr(Fn fn) {
  return reinterpret_cast<void*>(fn);
}

void InstallNvml(FakeSystem& fs) {
  const std::string lib = "libnvidia-ml.so.1:";
  fs.symbols[lib + "nvmlInit_v2"] = Addr(&FakeInit);
  fs.symbols[lib + "nvmlShutdown"] = Addr(&FakeShutdown);
  fs.symbols[lib + "nvmlErrorString"] = Addr(&FakeErrorString);
  fs.symbols[lib + "nvmlSystemGetDriverVersion"] = Addr(&FakeDriverVersion);
  fs.symbols[lib + "nvmlDeviceGetCount_v2"] = Addr(&FakeCount);
  fs.symbols[lib + "nvmlDeviceGetHandleByIndex_v2"] = Addr(&FakeHandle);
  fs.symbols[lib + "nvmlDeviceGetPersistenceMode"] = Addr(&FakePersistence);
  fs.symbols[lib + "nvmlDeviceGetTotalEccErrors"] = Addr(&FakeEcc);
  fs.symbols[lib + "nvmlDeviceGetRetiredPagesPendingStatus"] = Addr(&FakePagesPending);
  fs.symbols[lib + "nvmlDeviceGetRemappedRows"] = Addr(&FakeRemapped);
}

CommandResult Output(const std::string& out, int exit_code = 0, const std::string& err = "") {
  CommandResult r;
  r.exit_code = exit_code;
  r.out = out;
  r.err = err;
  return r;
}

std::string Fact(const CheckResult& r, const std::string& key) {
  for (const auto& [k, v] : r.facts) {
    if (k == key) return v;
  }
  return "<no fact " + key + ">";
}

CheckResult RunCheck(const std::vector<Check>& group, const std::string& id,
                     const CheckContext& ctx, const System& sys) {
  for (const Check& c : group) {
    if (id == c.id) {
      CheckResult r = c.run(ctx, sys);
      EXPECT_EQ(r.id, id);
      return r;
    }
  }
  ADD_FAILURE() << "no check " << id;
  return {};
}

class GpuChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_nvml = FakeNvmlState{};
    ctx_.gpus_required = true;
    ctx_.nproc_per_node = 8;
  }
  CheckResult Gpu(const std::string& id) { return RunCheck(GpuChecks(), id, ctx_, fs_); }

  FakeSystem fs_;
  CheckContext ctx_;
};

TEST_F(GpuChecksTest, NvmlReportsDriverAndEnoughGpus) {
  InstallNvml(fs_);
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_TRUE(driver.passed) << driver.found;
  EXPECT_NE(driver.found.find("driver 550.54.15, 8 GPUs (NVML)"), std::string::npos)
      << driver.found;
  EXPECT_EQ(Fact(driver, "driver_version"), "550.54.15");
  EXPECT_EQ(Fact(driver, "gpu_count"), "8");
  EXPECT_EQ(Fact(driver, "gpu_vendor"), "nvidia");
  CheckResult count = Gpu("gpu_count");
  EXPECT_TRUE(count.passed) << count.found;
  // Every nvmlInit_v2 is paired with an nvmlShutdown, and nvidia-smi was not needed.
  EXPECT_EQ(g_nvml.inits, g_nvml.shutdowns);
  EXPECT_TRUE(fs_.runs.empty());
}

TEST_F(GpuChecksTest, FewerGpusThanNprocPerNodeFailsNamingBothCounts) {
  InstallNvml(fs_);
  g_nvml.count = 4;
  CheckResult count = Gpu("gpu_count");
  EXPECT_FALSE(count.passed);
  EXPECT_EQ(count.severity, Severity::kFail);
  EXPECT_NE(count.found.find("4 GPUs"), std::string::npos) << count.found;
  EXPECT_NE(count.expected.find(">= 8"), std::string::npos) << count.expected;
  EXPECT_NE(count.hint.find("nproc_per_node is 8 but the node has 4"), std::string::npos)
      << count.hint;
}

TEST_F(GpuChecksTest, GpuCountNotRequiredIsInfo) {
  ctx_.gpus_required = false;
  CheckResult count = Gpu("gpu_count");
  EXPECT_TRUE(count.passed);
  EXPECT_EQ(count.severity, Severity::kInfo);
  EXPECT_EQ(count.found, "not required");
}

TEST_F(GpuChecksTest, NvmlInitFailureIsReported) {
  InstallNvml(fs_);
  g_nvml.init_rc = 9;  // NVML_ERROR_DRIVER_NOT_LOADED
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_FALSE(driver.passed);
  EXPECT_NE(driver.found.find("nvmlInit_v2 failed"), std::string::npos) << driver.found;
  EXPECT_NE(driver.found.find("Driver Not Loaded"), std::string::npos) << driver.found;
  EXPECT_FALSE(driver.hint.empty());
  EXPECT_EQ(g_nvml.shutdowns, 0);  // no shutdown without a successful init
}

TEST_F(GpuChecksTest, NvidiaSmiAnswersWhenNvmlIsMissing) {
  fs_.commands["nvidia-smi"] = Output(
      "535.104.05, NVIDIA A100-SXM4-80GB, Enabled\n"
      "535.104.05, NVIDIA A100-SXM4-80GB, Disabled\n");
  ctx_.nproc_per_node = 2;
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_TRUE(driver.passed) << driver.found;
  EXPECT_EQ(driver.found, "driver 535.104.05, 2 GPUs (nvidia-smi)");
  EXPECT_EQ(Fact(driver, "driver_version"), "535.104.05");
  ASSERT_FALSE(fs_.runs.empty());
  EXPECT_EQ(fs_.runs[0][1], "--query-gpu=driver_version,name,persistence_mode");
  EXPECT_TRUE(Gpu("gpu_count").passed);

  CheckResult pm = Gpu("persistence_mode");
  EXPECT_FALSE(pm.passed);
  EXPECT_EQ(pm.severity, Severity::kWarn);
  EXPECT_EQ(pm.found, "disabled on GPU 1");
  EXPECT_NE(pm.hint.find("nvidia-smi -pm 1"), std::string::npos);
}

TEST_F(GpuChecksTest, NvidiaSmiFailingSaysWhy) {
  fs_.commands["nvidia-smi"] =
      Output("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9);
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_FALSE(driver.passed);
  EXPECT_NE(driver.found.find("couldn't communicate"), std::string::npos) << driver.found;
}

TEST_F(GpuChecksTest, HungNvidiaSmiIsReportedAtTheDeadline) {
  CommandResult hung;
  hung.timed_out = true;
  fs_.commands["nvidia-smi"] = hung;
  ctx_.command_deadline = std::chrono::milliseconds(2500);
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_FALSE(driver.passed);
  EXPECT_EQ(driver.found, "nvidia-smi did not answer within 2500 ms");
}

TEST_F(GpuChecksTest, MthreadsGmiAnswersOnMooreThreadsNodes) {
  fs_.commands["mthreads-gmi"] = Output(
      "Mon Nov 23 04:00:00 2026\n"
      "---------------------------------------------------------------\n"
      "    mthreads-gmi:1.14.0          Driver Version:2.7.0\n"
      "---------------------------------------------------------------\n"
      "ID   Name           |PCIe                |%GPU  Mem\n"
      "0    MTT S4000      |00000000:1b:00.0    |0%    1MiB(49152MiB)\n"
      "1    MTT S4000      |00000000:3b:00.0    |0%    1MiB(49152MiB)\n");
  ctx_.nproc_per_node = 2;
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_TRUE(driver.passed) << driver.found;
  EXPECT_EQ(driver.found, "driver 2.7.0, 2 GPUs (mthreads-gmi)");
  EXPECT_EQ(Fact(driver, "gpu_vendor"), "mthreads");
  EXPECT_TRUE(Gpu("gpu_count").passed);
}

// Not a pass and not a failure: the node says it has no GPUs, recorded as INFO.
TEST_F(GpuChecksTest, NoGpuStackIsInfoWhenNotRequired) {
  ctx_.gpus_required = false;
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_FALSE(driver.passed);
  EXPECT_EQ(driver.severity, Severity::kInfo);
  EXPECT_EQ(ExitCode({driver}), 0);
  EXPECT_EQ(driver.found,
            "no NVIDIA or Moore Threads driver (libnvidia-ml.so.1, nvidia-smi, mthreads-gmi not "
            "found)");
  EXPECT_EQ(Fact(driver, "gpu_count"), "0");
}

TEST_F(GpuChecksTest, NoGpuStackFailsWhenRequired) {
  CheckResult driver = Gpu("gpu_driver");
  EXPECT_FALSE(driver.passed);
  EXPECT_EQ(driver.severity, Severity::kFail);
  EXPECT_NE(driver.found.find("no NVIDIA or Moore Threads driver"), std::string::npos);
  EXPECT_NE(driver.hint.find("install the NVIDIA driver"), std::string::npos) << driver.hint;
  CheckResult count = Gpu("gpu_count");
  EXPECT_FALSE(count.passed);
  // The checks that need NVML say they did not run rather than pass or fail.
  CheckResult ecc = Gpu("gpu_ecc");
  EXPECT_EQ(ecc.severity, Severity::kInfo);
  EXPECT_NE(ecc.found.find("not checked"), std::string::npos);
  EXPECT_EQ(Gpu("persistence_mode").severity, Severity::kInfo);
}

TEST_F(GpuChecksTest, NouveauLoadedFails) {
  fs_.dirs["/sys/module/nouveau"] = {"initstate", "parameters"};
  CheckResult r = Gpu("nouveau");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kFail);
  EXPECT_NE(r.hint.find("blacklist"), std::string::npos);
  EXPECT_NE(r.hint.find("update-initramfs"), std::string::npos);
  ctx_.gpus_required = false;
  EXPECT_EQ(Gpu("nouveau").severity, Severity::kWarn);
  fs_.dirs.clear();
  EXPECT_TRUE(Gpu("nouveau").passed);
}

TEST_F(GpuChecksTest, PersistenceModeFromNvml) {
  InstallNvml(fs_);
  EXPECT_TRUE(Gpu("persistence_mode").passed);
  g_nvml.persistence = {1, 1, 0, 1, 1, 1, 1, 0};
  CheckResult pm = Gpu("persistence_mode");
  EXPECT_FALSE(pm.passed);
  EXPECT_EQ(pm.found, "disabled on GPU 2,7");
}

TEST_F(GpuChecksTest, UncorrectedEccErrorsFailNamingTheGpu) {
  InstallNvml(fs_);
  EXPECT_TRUE(Gpu("gpu_ecc").passed);
  g_nvml.uncorrected[3] = 2;
  CheckResult ecc = Gpu("gpu_ecc");
  EXPECT_FALSE(ecc.passed);
  EXPECT_EQ(ecc.severity, Severity::kFail);
  EXPECT_EQ(ecc.found, "GPU 3: 2 uncorrected ECC errors since the driver loaded");
  EXPECT_FALSE(ecc.hint.empty());
}

TEST_F(GpuChecksTest, PendingRetirementAndRemappingFail) {
  InstallNvml(fs_);
  g_nvml.pages_pending[1] = 1;
  g_nvml.rows_pending[5] = 1;
  g_nvml.rows_failed[6] = 1;
  CheckResult ecc = Gpu("gpu_ecc");
  EXPECT_FALSE(ecc.passed);
  EXPECT_NE(ecc.found.find("GPU 1: page retirement pending"), std::string::npos) << ecc.found;
  EXPECT_NE(ecc.found.find("GPU 5: row remapping pending"), std::string::npos) << ecc.found;
  EXPECT_NE(ecc.found.find("GPU 6: row remapping failed"), std::string::npos) << ecc.found;
}

TEST_F(GpuChecksTest, EccPartsNotSupportedAreSkipped) {
  InstallNvml(fs_);
  g_nvml.ecc_rc = 3;  // NVML_ERROR_NOT_SUPPORTED
  g_nvml.pending_rc = 3;
  g_nvml.remap_rc = 3;
  CheckResult ecc = Gpu("gpu_ecc");
  EXPECT_TRUE(ecc.passed) << ecc.found;
  EXPECT_EQ(ecc.severity, Severity::kInfo);
  EXPECT_NE(ecc.found.find("not supported"), std::string::npos) << ecc.found;

  // Row remapping reported while the other two parts are not supported.
  g_nvml.remap_rc = 0;
  g_nvml.rows_pending[5] = 1;
  ecc = Gpu("gpu_ecc");
  EXPECT_FALSE(ecc.passed);
  EXPECT_EQ(ecc.found, "GPU 5: row remapping pending (needs a GPU reset)");

  // Another NVML error is not silently skipped.
  g_nvml.rows_pending.clear();
  g_nvml.ecc_rc = 999;
  ecc = Gpu("gpu_ecc");
  EXPECT_FALSE(ecc.passed);
  EXPECT_NE(ecc.found.find("nvmlDeviceGetTotalEccErrors"), std::string::npos) << ecc.found;
}

constexpr const char* kKernelLog =
    "Nov 23 03:58:01 node0 kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU "
    "has fallen off the bus.\n"
    "Nov 23 03:58:01 node0 kernel: nvidia 0000:3b:00.0: something else\n"
    "Nov 23 03:58:02 node0 kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU "
    "has fallen off the bus.\n"
    "Nov 23 03:59:10 node0 kernel: NVRM: Xid (PCI:0000:86:00): 13, pid=4321, name=python, "
    "Graphics SM Warp Exception\n";

constexpr char kNvrmVersion[] =
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n";

// Without nvidia.ko there can be no Xid: the kernel log is not read (two processes
// fewer per check on CPU nodes), even where it holds an old Xid line.
TEST_F(GpuChecksTest, XidErrorsNeedTheNvidiaKernelModule) {
  fs_.commands["journalctl -k --since -1h --no-pager"] = Output(kKernelLog);
  CheckResult xid = Gpu("xid_errors");
  EXPECT_TRUE(xid.passed);
  EXPECT_EQ(xid.found, "no NVIDIA kernel module loaded (no /proc/driver/nvidia/version)");
  fs_.files["/proc/driver/nvidia/version"] = kNvrmVersion;
  xid = Gpu("xid_errors");
  EXPECT_FALSE(xid.passed);
  EXPECT_EQ(xid.found, "Xid 13, Xid 79 x2 in the last hour");
}

TEST_F(GpuChecksTest, XidErrorsFromJournal) {
  fs_.files["/proc/driver/nvidia/version"] = kNvrmVersion;
  fs_.commands["journalctl -k --since -1h --no-pager"] = Output(kKernelLog);
  CheckResult xid = Gpu("xid_errors");
  EXPECT_FALSE(xid.passed);
  EXPECT_EQ(xid.severity, Severity::kWarn);
  EXPECT_EQ(xid.found, "Xid 13, Xid 79 x2 in the last hour");
  EXPECT_EQ(Fact(xid, "xid_codes"), "Xid 13, Xid 79 x2");

  fs_.commands["journalctl -k --since -1h --no-pager"] = Output("-- No entries --\n");
  xid = Gpu("xid_errors");
  EXPECT_TRUE(xid.passed);
  EXPECT_EQ(xid.found, "none in the last hour");
}

TEST_F(GpuChecksTest, XidErrorsFallBackToDmesg) {
  fs_.files["/proc/driver/nvidia/version"] = kNvrmVersion;
  // No journal on this node (a container): journalctl answers, with nothing in it.
  fs_.commands["journalctl"] = Output("-- No entries --\n", 0, "No journal files were found.\n");
  fs_.commands["dmesg"] = Output("[ 12.3] NVRM: Xid (PCI:0000:3b:00): 48, pid=1, DBE\n");
  CheckResult xid = Gpu("xid_errors");
  EXPECT_FALSE(xid.passed);
  EXPECT_EQ(xid.found, "Xid 48 in the kernel ring buffer");
}

TEST_F(GpuChecksTest, UnreadableKernelLogIsInfo) {
  fs_.files["/proc/driver/nvidia/version"] = kNvrmVersion;
  fs_.commands["journalctl"] =
      Output("", 0, "No journal files were opened due to insufficient permissions.\n");
  fs_.commands["dmesg"] =
      Output("", 1, "dmesg: read kernel buffer failed: Operation not permitted\n");
  CheckResult xid = Gpu("xid_errors");
  EXPECT_EQ(xid.severity, Severity::kInfo);
  EXPECT_NE(xid.found.find("cannot read the kernel log"), std::string::npos) << xid.found;
  EXPECT_NE(xid.found.find("Operation not permitted"), std::string::npos) << xid.found;
}

// --- CUDA ---

class CudaChecksTest : public GpuChecksTest {
 protected:
  CheckResult Cuda(const std::string& id) { return RunCheck(CudaChecks(), id, ctx_, fs_); }
};

TEST_F(CudaChecksTest, DriverOlderThanTheJobsRuntimeFails) {
  fs_.symbols["libcuda.so.1:cuDriverGetVersion"] = Addr(&FakeCuDriverGetVersion);
  g_cuda_driver = 12020;
  ctx_.cuda_runtime_version = 12040;
  CheckResult r = Cuda("cuda_driver");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kFail);
  EXPECT_EQ(r.found, "driver supports CUDA 12.2, the job was built for 12.4: update the driver");
  EXPECT_EQ(Fact(r, "cuda_driver_version"), "12.2");

  g_cuda_driver = 12040;
  r = Cuda("cuda_driver");
  EXPECT_TRUE(r.passed) << r.found;
  EXPECT_EQ(r.found, "driver supports CUDA 12.4");
  g_cuda_driver = 13000;
  EXPECT_TRUE(Cuda("cuda_driver").passed);
}

TEST_F(CudaChecksTest, MissingLibcuda) {
  CheckResult r = Cuda("cuda_driver");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kFail);
  EXPECT_NE(r.found.find("libcuda.so.1 not found"), std::string::npos);
  ctx_.gpus_required = false;
  r = Cuda("cuda_driver");
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.severity, Severity::kInfo);
}

TEST_F(CudaChecksTest, RuntimeFromVersionedLibrary) {
  EXPECT_NE(Cuda("cuda_runtime").found.find("libcudart not found"), std::string::npos);
  fs_.symbols["libcudart.so.12:cudaRuntimeGetVersion"] = Addr(&FakeCudaRuntimeGetVersion);
  g_cuda_runtime = 12080;
  CheckResult r = Cuda("cuda_runtime");
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.found, "CUDA runtime 12.8 (libcudart.so.12)");
  EXPECT_EQ(Fact(r, "cuda_runtime_version"), "12.8");
}

TEST_F(CudaChecksTest, NcclVersionFormatting) {
  fs_.symbols["libnccl.so.2:ncclGetVersion"] = Addr(&FakeNcclGetVersion);
  g_nccl = 22809;
  CheckResult r = Cuda("nccl_version");
  EXPECT_EQ(r.found, "NCCL 2.28.9");
  EXPECT_EQ(Fact(r, "nccl_version"), "2.28.9");
  g_nccl = 21803;
  EXPECT_EQ(Cuda("nccl_version").found, "NCCL 2.18.3");
  g_nccl = 2708;  // before 2.9: major*1000 + minor*100 + patch
  EXPECT_EQ(Cuda("nccl_version").found, "NCCL 2.7.8");
}

TEST_F(CudaChecksTest, MissingNcclWarnsOnlyWhenGpusAreRequired) {
  CheckResult r = Cuda("nccl_version");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kWarn);
  ctx_.gpus_required = false;
  r = Cuda("nccl_version");
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.severity, Severity::kInfo);
}

// --- This machine: a CUDA toolkit under /usr/local/cuda but no GPU and no driver. ---

TEST(GpuChecksRealSystemTest, NoDriverIsReportedClearly) {
  std::unique_ptr<System> sys = MakeRealSystem();
  CheckContext ctx;
  ctx.gpus_required = true;
  ctx.nproc_per_node = 8;
  ctx.command_deadline = std::chrono::seconds(5);
  const bool has_nvml = sys->Symbol("libnvidia-ml.so.1", "nvmlInit_v2") != nullptr;
  CheckResult driver = RunCheck(GpuChecks(), "gpu_driver", ctx, *sys);
  std::cout << "gpu_driver on this machine: " << driver.found << "\n";
  EXPECT_FALSE(driver.found.empty());
  if (!has_nvml && sys->Run({"nvidia-smi", "-L"}, ctx.command_deadline).not_found &&
      sys->Run({"mthreads-gmi"}, ctx.command_deadline).not_found) {
    EXPECT_FALSE(driver.passed);
    EXPECT_EQ(driver.severity, Severity::kFail);
    EXPECT_NE(driver.found.find("no NVIDIA or Moore Threads driver"), std::string::npos);
  }
  // Every GPU and CUDA check runs to an answer on this machine.
  for (const auto* group : {&GpuChecks(), &CudaChecks()}) {
    for (const Check& c : *group) {
      CheckResult r = c.run(ctx, *sys);
      EXPECT_EQ(r.id, c.id);
      EXPECT_FALSE(r.found.empty()) << c.id;
      std::cout << "  " << r.id << ": " << (r.passed ? "ok" : "miss") << " ("
                << SeverityName(r.severity) << ") " << r.found << "\n";
    }
  }
}

}  // namespace
}  // namespace coord::env_check
