// GPU node checks: driver and device count, nouveau, persistence mode, ECC health and
// recent Xid errors. The driver is asked through NVML, loaded with dlopen through
// System::Symbol and never linked, so the agent runs on nodes without GPUs; when NVML
// is missing, `nvidia-smi` answers instead, and on Moore Threads nodes `mthreads-gmi`.
// The few NVML types and constants used here are declared below with their NVML API
// names (nvml.h is not needed to build).
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "env_check/check.h"
#include "common/strings.h"

namespace coord::env_check {
namespace {

// --- NVML, as declared in nvml.h (C ABI: enums are ints, handles are pointers) ---
using nvmlReturn_t = int;
using nvmlDevice_t = void*;  // struct nvmlDevice_st*
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
constexpr int NVML_FEATURE_ENABLED = 1;                // nvmlEnableState_t
constexpr int NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1;  // nvmlMemoryErrorType_t
constexpr int NVML_VOLATILE_ECC = 0;                   // nvmlEccCounterType_t
constexpr unsigned NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;

using NvmlInitFn = nvmlReturn_t (*)();                           // nvmlInit_v2
using NvmlShutdownFn = nvmlReturn_t (*)();                       // nvmlShutdown
using NvmlErrorStringFn = const char* (*)(nvmlReturn_t);         // nvmlErrorString
using NvmlDriverVersionFn = nvmlReturn_t (*)(char*, unsigned);   // nvmlSystemGetDriverVersion
using NvmlCountFn = nvmlReturn_t (*)(unsigned*);                 // nvmlDeviceGetCount_v2
using NvmlHandleFn = nvmlReturn_t (*)(unsigned, nvmlDevice_t*);  // ..GetHandleByIndex_v2
using NvmlEnableStateFn = nvmlReturn_t (*)(nvmlDevice_t, int*);  // ..GetPersistenceMode,
                                                                 // ..GetRetiredPagesPendingStatus
using NvmlEccFn = nvmlReturn_t (*)(nvmlDevice_t, int, int,
                                   unsigned long long*);  // ..GetTotalEccErrors
using NvmlRemappedRowsFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned*, unsigned*, unsigned*,
                                            unsigned*);  // nvmlDeviceGetRemappedRows

constexpr const char* kNvmlLib = "libnvidia-ml.so.1";

// NVML opened for one check: nvmlInit_v2 in Open, nvmlShutdown in the destructor
// (NVML counts them, so checks running in parallel each hold their own reference).
class Nvml {
 public:
  explicit Nvml(const System& sys) : sys_(sys) {}
  ~Nvml() {
    if (initialized_) {
      if (auto shutdown = Get<NvmlShutdownFn>("nvmlShutdown")) shutdown();
    }
  }
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // False when the library is missing (error() empty) or nvmlInit_v2 failed (error()
  // says why: typically "Driver Not Loaded" or a library/kernel version mismatch).
  bool Open() {
    auto init = Get<NvmlInitFn>("nvmlInit_v2");
    if (init == nullptr) return false;
    nvmlReturn_t rc = init();
    if (rc != NVML_SUCCESS) {
      error_ = "nvmlInit_v2 failed: " + ErrorString(rc);
      return false;
    }
    initialized_ = true;
    return true;
  }
  const std::string& error() const { return error_; }

  template <typename Fn>
  Fn Get(const char* symbol) const {
    return reinterpret_cast<Fn>(sys_.Symbol(kNvmlLib, symbol));
  }

  std::string ErrorString(nvmlReturn_t rc) const {
    std::string s = "NVML error " + std::to_string(rc);
    if (auto fn = Get<NvmlErrorStringFn>("nvmlErrorString")) {
      if (const char* text = fn(rc)) s += " (" + std::string(text) + ")";
    }
    return s;
  }

  // Device handles in index order; empty with error() set when the count fails.
  std::vector<nvmlDevice_t> Devices() {
    std::vector<nvmlDevice_t> out;
    auto count_fn = Get<NvmlCountFn>("nvmlDeviceGetCount_v2");
    auto handle_fn = Get<NvmlHandleFn>("nvmlDeviceGetHandleByIndex_v2");
    unsigned count = 0;
    if (count_fn == nullptr || handle_fn == nullptr) {
      error_ = "NVML lacks nvmlDeviceGetCount_v2/nvmlDeviceGetHandleByIndex_v2";
      return out;
    }
    if (nvmlReturn_t rc = count_fn(&count); rc != NVML_SUCCESS) {
      error_ = "nvmlDeviceGetCount_v2: " + ErrorString(rc);
      return out;
    }
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      handle_fn(i, &dev);  // a failed handle stays null; callers report it per GPU
      out.push_back(dev);
    }
    return out;
  }

 private:
  const System& sys_;
  bool initialized_ = false;
  std::string error_;
};


std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = Trim(text.substr(start, nl - start));
    if (!line.empty()) lines.push_back(line);
    start = nl + 1;
  }
  return lines;
}

std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> cells;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    cells.push_back(Trim(line.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return cells;
}

std::string FirstLine(const CommandResult& r) {
  auto lines = SplitLines(r.err.empty() ? r.out : r.err);
  if (lines.empty()) return "exit code " + std::to_string(r.exit_code);
  return lines[0];
}

// What the node's GPU stack says, from whichever tool answered first.
struct GpuInventory {
  std::string tool;    // "NVML", "nvidia-smi", "mthreads-gmi"; "" when none is installed
  std::string vendor;  // "nvidia", "mthreads"
  std::string error;   // the tool is installed but failed (driver not loaded, ...)
  std::string driver_version;
  int count = -1;                // -1: unknown
  std::vector<int> persistence;  // per GPU: 1 enabled, 0 disabled, -1 unknown
  std::vector<std::string> names;
};

constexpr const char* kNoDriver =
    "no NVIDIA or Moore Threads driver (libnvidia-ml.so.1, nvidia-smi, mthreads-gmi not found)";
constexpr const char* kNoDriverHint =
    "install the NVIDIA driver (it provides libnvidia-ml.so.1 and nvidia-smi) or the Moore "
    "Threads MUSA driver (mthreads-gmi), then reboot; or run this job on GPU nodes";

GpuInventory FromNvidiaSmi(const CheckContext& ctx, const System& sys, bool* installed) {
  GpuInventory inv;
  CommandResult r = sys.Run(
      {"nvidia-smi", "--query-gpu=driver_version,name,persistence_mode", "--format=csv,noheader"},
      ctx.command_deadline);
  *installed = !r.not_found;
  if (r.not_found) return inv;
  inv.tool = "nvidia-smi";
  inv.vendor = "nvidia";
  if (r.timed_out) {
    inv.error =
        "nvidia-smi did not answer within " + std::to_string(ctx.command_deadline.count()) + " ms";
    return inv;
  }
  if (r.exit_code != 0) {
    inv.error = "nvidia-smi failed: " + FirstLine(r);
    return inv;
  }
  inv.count = 0;
  for (const std::string& line : SplitLines(r.out)) {
    std::vector<std::string> cells = SplitCsv(line);
    if (cells.size() < 3) continue;
    if (inv.driver_version.empty()) inv.driver_version = cells[0];
    inv.names.push_back(cells[1]);
    inv.persistence.push_back(cells[2] == "Enabled" ? 1 : cells[2] == "Disabled" ? 0 : -1);
    ++inv.count;
  }
  return inv;
}

// mthreads-gmi prints a table like nvidia-smi's; its layout changes between releases,
// so only the "Driver Version" field is relied on, and GPUs are counted by the product
// name ("MTT S4000") in their rows when there are any.
GpuInventory FromMthreadsGmi(const CheckContext& ctx, const System& sys, bool* installed) {
  GpuInventory inv;
  CommandResult r = sys.Run({"mthreads-gmi"}, ctx.command_deadline);
  *installed = !r.not_found;
  if (r.not_found) return inv;
  inv.tool = "mthreads-gmi";
  inv.vendor = "mthreads";
  if (r.timed_out) {
    inv.error = "mthreads-gmi did not answer within " +
                std::to_string(ctx.command_deadline.count()) + " ms";
    return inv;
  }
  if (r.exit_code != 0) {
    inv.error = "mthreads-gmi failed: " + FirstLine(r);
    return inv;
  }
  int mtt_rows = 0;
  for (const std::string& line : SplitLines(r.out)) {
    if (line.find("MTT ") != std::string::npos) ++mtt_rows;
    if (!inv.driver_version.empty()) continue;
    size_t at = line.find("Driver Version");
    if (at == std::string::npos) continue;
    size_t colon = line.find(':', at);
    if (colon == std::string::npos) continue;
    size_t b = line.find_first_not_of(" \t", colon + 1);
    if (b == std::string::npos) continue;
    size_t e = line.find_first_of(" \t|", b);
    inv.driver_version = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
  }
  if (mtt_rows > 0) inv.count = mtt_rows;
  if (inv.driver_version.empty()) inv.error = "mthreads-gmi printed no \"Driver Version\"";
  return inv;
}

GpuInventory Inventory(const CheckContext& ctx, const System& sys) {
  Nvml nvml(sys);
  if (nvml.Open()) {
    GpuInventory inv;
    inv.tool = "NVML";
    inv.vendor = "nvidia";
    char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
    if (auto fn = nvml.Get<NvmlDriverVersionFn>("nvmlSystemGetDriverVersion")) {
      if (nvmlReturn_t rc = fn(version, sizeof(version)); rc == NVML_SUCCESS) {
        inv.driver_version = version;
      } else {
        inv.error = "nvmlSystemGetDriverVersion: " + nvml.ErrorString(rc);
      }
    }
    std::vector<nvmlDevice_t> devices = nvml.Devices();
    if (!nvml.error().empty()) {
      inv.error = nvml.error();
      return inv;
    }
    inv.count = static_cast<int>(devices.size());
    auto pm = nvml.Get<NvmlEnableStateFn>("nvmlDeviceGetPersistenceMode");
    for (nvmlDevice_t dev : devices) {
      int mode = 0;
      if (pm == nullptr || dev == nullptr || pm(dev, &mode) != NVML_SUCCESS) {
        inv.persistence.push_back(-1);
      } else {
        inv.persistence.push_back(mode == NVML_FEATURE_ENABLED ? 1 : 0);
      }
    }
    return inv;
  }
  if (!nvml.error().empty()) {
    // The library is there but the kernel driver does not answer: nvidia-smi would
    // say the same, so report NVML's reason.
    GpuInventory inv;
    inv.tool = "NVML";
    inv.vendor = "nvidia";
    inv.error = nvml.error();
    return inv;
  }
  bool installed = false;
  GpuInventory inv = FromNvidiaSmi(ctx, sys, &installed);
  if (installed) return inv;
  inv = FromMthreadsGmi(ctx, sys, &installed);
  if (installed) return inv;
  return GpuInventory{};
}

Severity RequiredSeverity(const CheckContext& ctx) {
  return ctx.gpus_required ? Severity::kFail : Severity::kInfo;
}

CheckResult GpuDriver(const CheckContext& ctx, const System& sys) {
  CheckResult r{"gpu_driver",
                true,
                RequiredSeverity(ctx),
                "",
                ctx.gpus_required ? "a working GPU driver" : "none (the job does not need GPUs)",
                "",
                {}};
  GpuInventory inv = Inventory(ctx, sys);
  if (inv.tool.empty()) {
    // Never a pass: a node without GPUs says so, as INFO when the job needs none.
    r.found = kNoDriver;
    r.passed = false;
    r.hint = kNoDriverHint;
    r.facts = {{"gpu_vendor", "none"}, {"gpu_count", "0"}};
    return r;
  }
  r.facts.push_back({"gpu_vendor", inv.vendor});
  if (!inv.error.empty()) {
    r.found = inv.error;
    r.passed = !ctx.gpus_required;
    r.hint = inv.vendor == "mthreads"
                 ? "check that the MUSA kernel module is loaded (lsmod | grep mtgpu) and "
                   "matches the installed driver; reboot after a driver update"
                 : "the driver is installed but does not answer: check that the nvidia kernel "
                   "module is loaded (lsmod | grep nvidia) and matches the user-space "
                   "libraries (reboot after a driver update)";
    return r;
  }
  r.found = "driver " + (inv.driver_version.empty() ? "unknown" : inv.driver_version) + ", " +
            (inv.count >= 0 ? std::to_string(inv.count) : "an unknown number of") + " GPU" +
            (inv.count == 1 ? "" : "s") + " (" + inv.tool + ")";
  if (inv.count == 0 && ctx.gpus_required) {
    r.passed = false;
    r.hint = "the driver sees no GPU: check lspci, the BIOS and the container's GPU devices";
  }
  r.facts.push_back({"driver_version", inv.driver_version});
  if (inv.count >= 0) r.facts.push_back({"gpu_count", std::to_string(inv.count)});
  return r;
}

CheckResult GpuCount(const CheckContext& ctx, const System& sys) {
  if (!ctx.gpus_required || ctx.nproc_per_node <= 0) {
    return {"gpu_count", true, Severity::kInfo, "not required", "", "", {}};
  }
  CheckResult r{"gpu_count",
                true,
                Severity::kFail,
                "",
                ">= " + std::to_string(ctx.nproc_per_node) + " GPUs (nproc_per_node)",
                "",
                {}};
  GpuInventory inv = Inventory(ctx, sys);
  if (inv.tool.empty() || !inv.error.empty()) {
    r.passed = false;
    r.found = inv.tool.empty() ? kNoDriver : inv.error;
    r.hint = "see gpu_driver";
    return r;
  }
  if (inv.count < 0) {
    r.severity = Severity::kWarn;
    r.passed = false;
    r.found = "GPU count unknown (" + inv.tool + " did not list the devices)";
    r.hint = "check the device count by hand before launching";
    return r;
  }
  r.found =
      std::to_string(inv.count) + " GPU" + (inv.count == 1 ? "" : "s") + " (" + inv.tool + ")";
  r.passed = inv.count >= ctx.nproc_per_node;
  if (!r.passed) {
    r.hint = "nproc_per_node is " + std::to_string(ctx.nproc_per_node) + " but the node has " +
             std::to_string(inv.count) +
             ": lower nproc_per_node, or check CUDA_VISIBLE_DEVICES and the container's GPU "
             "devices, or for a GPU that fell off the bus, look for Xid 79 and reset the node";
  }
  r.facts.push_back({"gpu_count", std::to_string(inv.count)});
  return r;
}

CheckResult Nouveau(const CheckContext& ctx, const System& sys) {
  CheckResult r{"nouveau",
                true,
                ctx.gpus_required ? Severity::kFail : Severity::kWarn,
                "nouveau not loaded",
                "the nouveau driver not loaded",
                "",
                {}};
  if (sys.Exists("/sys/module/nouveau")) {
    r.passed = false;
    r.found = "the open-source nouveau driver is loaded (/sys/module/nouveau)";
    r.hint =
        "nouveau holds the GPUs and the NVIDIA driver cannot bind them: blacklist it (echo "
        "'blacklist nouveau' > /etc/modprobe.d/blacklist-nouveau.conf; options nouveau "
        "modeset=0), run update-initramfs -u (or dracut -f), and reboot";
  }
  return r;
}

CheckResult PersistenceMode(const CheckContext& ctx, const System& sys) {
  CheckResult r{
      "persistence_mode", true, Severity::kWarn, "", "persistence mode on every GPU", "", {}};
  GpuInventory inv = Inventory(ctx, sys);
  if (inv.tool.empty() || !inv.error.empty() || inv.persistence.empty()) {
    r.severity = Severity::kInfo;
    r.found = inv.tool.empty()     ? std::string("not checked: no GPU driver")
              : !inv.error.empty() ? "not checked: " + inv.error
                                   : "not checked: " + inv.tool + " does not report it";
    return r;
  }
  std::string off, unknown;
  auto add = [](std::string& list, size_t i) {
    list += (list.empty() ? "" : ",") + std::to_string(i);
  };
  for (size_t i = 0; i < inv.persistence.size(); ++i) {
    if (inv.persistence[i] == 0) add(off, i);
    if (inv.persistence[i] < 0) add(unknown, i);
  }
  if (off.empty() && unknown.empty()) {
    r.found = "enabled on all " + std::to_string(inv.persistence.size()) + " GPUs";
    return r;
  }
  r.passed = off.empty();
  r.found = off.empty() ? "" : "disabled on GPU " + off;
  if (!unknown.empty()) r.found += (r.found.empty() ? "" : "; ") + ("unknown on GPU " + unknown);
  if (!r.passed) {
    r.hint =
        "without persistence mode the driver tears the GPUs down between jobs and the first "
        "CUDA call of each rank is slow: enable nvidia-persistenced (systemctl enable --now "
        "nvidia-persistenced) or run nvidia-smi -pm 1";
  }
  return r;
}

CheckResult GpuEcc(const CheckContext&, const System& sys) {
  CheckResult r{"gpu_ecc",
                true,
                Severity::kFail,
                "",
                "no uncorrected volatile ECC errors, no pending page retirement or row remapping",
                "",
                {}};
  Nvml nvml(sys);
  if (!nvml.Open()) {
    r.severity = Severity::kInfo;
    r.found = nvml.error().empty() ? "not checked: NVML (libnvidia-ml.so.1) not available"
                                   : "not checked: " + nvml.error();
    return r;
  }
  std::vector<nvmlDevice_t> devices = nvml.Devices();
  if (!nvml.error().empty()) {
    r.severity = Severity::kInfo;
    r.found = "not checked: " + nvml.error();
    return r;
  }
  auto ecc = nvml.Get<NvmlEccFn>("nvmlDeviceGetTotalEccErrors");
  auto pending = nvml.Get<NvmlEnableStateFn>("nvmlDeviceGetRetiredPagesPendingStatus");
  auto remapped = nvml.Get<NvmlRemappedRowsFn>("nvmlDeviceGetRemappedRows");
  std::vector<std::string> problems;
  int checked_parts = 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    nvmlDevice_t dev = devices[i];
    const std::string gpu = "GPU " + std::to_string(i);
    if (dev == nullptr) {
      problems.push_back(gpu + ": no NVML handle");
      continue;
    }
    // Each part is skipped where the GPU does not support it (NVML_ERROR_NOT_SUPPORTED:
    // ECC off or a consumer board; page retirement before Ampere, row remapping since).
    unsigned long long errors = 0;
    if (ecc != nullptr) {
      nvmlReturn_t rc = ecc(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &errors);
      if (rc == NVML_SUCCESS) {
        ++checked_parts;
        if (errors > 0) {
          problems.push_back(gpu + ": " + std::to_string(errors) + " uncorrected ECC error" +
                             (errors == 1 ? "" : "s") + " since the driver loaded");
        }
      } else if (rc != NVML_ERROR_NOT_SUPPORTED) {
        problems.push_back(gpu + ": nvmlDeviceGetTotalEccErrors: " + nvml.ErrorString(rc));
      }
    }
    int is_pending = 0;
    if (pending != nullptr) {
      nvmlReturn_t rc = pending(dev, &is_pending);
      if (rc == NVML_SUCCESS) {
        ++checked_parts;
        if (is_pending == NVML_FEATURE_ENABLED) {
          problems.push_back(gpu + ": page retirement pending (needs a GPU reset)");
        }
      } else if (rc != NVML_ERROR_NOT_SUPPORTED) {
        problems.push_back(gpu +
                           ": nvmlDeviceGetRetiredPagesPendingStatus: " + nvml.ErrorString(rc));
      }
    }
    unsigned corr = 0, unc = 0, rows_pending = 0, failed = 0;
    if (remapped != nullptr) {
      nvmlReturn_t rc = remapped(dev, &corr, &unc, &rows_pending, &failed);
      if (rc == NVML_SUCCESS) {
        ++checked_parts;
        if (failed) problems.push_back(gpu + ": row remapping failed (the GPU needs replacing)");
        if (rows_pending) problems.push_back(gpu + ": row remapping pending (needs a GPU reset)");
      } else if (rc != NVML_ERROR_NOT_SUPPORTED) {
        problems.push_back(gpu + ": nvmlDeviceGetRemappedRows: " + nvml.ErrorString(rc));
      }
    }
  }
  if (problems.empty()) {
    r.found = checked_parts == 0 ? "not supported by the " + std::to_string(devices.size()) +
                                       " GPUs (no ECC reporting)"
                                 : "healthy (" + std::to_string(devices.size()) + " GPUs)";
    if (checked_parts == 0) r.severity = Severity::kInfo;
    return r;
  }
  r.passed = false;
  for (const std::string& p : problems) r.found += (r.found.empty() ? "" : "; ") + p;
  r.hint =
      "drain the node; a pending retirement or remapping clears with a GPU reset (nvidia-smi -r "
      "-i <index> with no processes on it) or a reboot; uncorrected errors that return, or a "
      "failed remapping, mean an RMA";
  return r;
}

// Xid codes from kernel log lines: "NVRM: Xid (PCI:0000:3b:00): 79, pid=..., ...".
std::map<int, int> ParseXids(const std::string& log) {
  std::map<int, int> counts;
  const std::string tag = "NVRM: Xid";
  for (size_t at = log.find(tag); at != std::string::npos; at = log.find(tag, at + 1)) {
    size_t eol = log.find('\n', at);
    std::string line = log.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
    size_t close = line.find("):");
    size_t p = close == std::string::npos ? line.find(':', tag.size()) : close + 1;
    if (p == std::string::npos) continue;
    ++p;
    while (p < line.size() && line[p] == ' ') ++p;
    if (p >= line.size() || !std::isdigit(static_cast<unsigned char>(line[p]))) continue;
    int code = 0;
    while (p < line.size() && std::isdigit(static_cast<unsigned char>(line[p])) && code < 100000) {
      code = code * 10 + (line[p++] - '0');
    }
    ++counts[code];
  }
  return counts;
}

bool PermissionProblem(const CommandResult& r) {
  const std::string text = r.err + r.out;
  return text.find("ermission") != std::string::npos ||
         text.find("not permitted") != std::string::npos;
}

// Present while nvidia.ko is loaded.
constexpr char kNvidiaModuleVersion[] = "/proc/driver/nvidia/version";

CheckResult XidErrors(const CheckContext& ctx, const System& sys) {
  CheckResult r{"xid_errors", true, Severity::kWarn, "", "no NVIDIA Xid errors in the kernel log",
                "",           {}};
  // Xids are messages of the NVIDIA kernel module (NVRM): where it is not loaded there
  // are none, and reading the kernel log (one or two processes) is left out.
  if (!sys.Exists(kNvidiaModuleVersion)) {
    r.found = "no NVIDIA kernel module loaded (no " + std::string(kNvidiaModuleVersion) + ")";
    return r;
  }
  // journalctl bounds the window to the last hour; dmesg (the fallback, when there
  // is no journal or it is not readable) has the whole ring buffer. No -q: quiet
  // journalctl prints nothing both for "no kernel messages in the last hour" and for
  // "No journal files were found" (containers, volatile journals), and the second
  // must fall back to dmesg rather than report a clean log.
  std::string window = "in the last hour";
  CommandResult log =
      sys.Run({"journalctl", "-k", "--since", "-1h", "--no-pager"}, ctx.command_deadline);
  bool ok = !log.not_found && !log.timed_out && log.exit_code == 0 && !PermissionProblem(log) &&
            (log.err + log.out).find("No journal files") == std::string::npos;
  std::string why;
  if (!ok) {
    why = log.not_found   ? "journalctl not found"
          : log.timed_out ? "journalctl timed out"
                          : "journalctl: " + FirstLine(log);
    log = sys.Run({"dmesg"}, ctx.command_deadline);
    window = "in the kernel ring buffer";
    ok = !log.not_found && !log.timed_out && log.exit_code == 0;
    if (!ok) {
      why += log.not_found   ? "; dmesg not found"
             : log.timed_out ? "; dmesg timed out"
                             : "; dmesg: " + FirstLine(log);
    }
  }
  if (!ok) {
    r.severity = Severity::kInfo;
    r.passed = false;
    r.found = "cannot read the kernel log (" + why + ")";
    r.hint =
        "run the agent with CAP_SYSLOG or in the systemd-journal group (or sysctl "
        "kernel.dmesg_restrict=0) so Xid errors are seen";
    return r;
  }
  std::map<int, int> xids = ParseXids(log.out);
  if (xids.empty()) {
    r.found = "none " + window;
    return r;
  }
  r.passed = false;
  std::string list;
  for (const auto& [code, n] : xids) {
    list += (list.empty() ? "" : ", ") + ("Xid " + std::to_string(code)) +
            (n > 1 ? " x" + std::to_string(n) : "");
  }
  r.found = list + " " + window;
  r.facts.push_back({"xid_codes", list});
  r.hint =
      "look the codes up in NVIDIA's Xid catalog: 13/31/43 are usually the application, "
      "48/63/64/74/79/92/94/95 hardware, NVLink or a GPU off the bus (drain and reset the "
      "node)";
  return r;
}

}  // namespace

const std::vector<Check>& GpuChecks() {
  static const std::vector<Check> checks = {
      {"gpu_driver", "GPU driver answers (NVML, nvidia-smi or mthreads-gmi) and its version",
       GpuDriver},
      {"gpu_count", "at least nproc_per_node GPUs", GpuCount},
      {"nouveau", "the open-source nouveau driver is not loaded", Nouveau},
      {"persistence_mode", "GPU persistence mode is on", PersistenceMode},
      {"gpu_ecc", "no uncorrected ECC errors, pending page retirement or row remapping", GpuEcc},
      {"xid_errors", "no recent NVIDIA Xid errors in the kernel log", XidErrors},
  };
  return checks;
}

}  // namespace coord::env_check
