// GpuMetrics over NVML (see gpu_metrics.h). The NVML types used are declared here with
// their nvml.h names (C ABI), as env_check/checks/gpu.cc does; nvml.h is not needed.
#include "agent/gpu_metrics.h"

#include "common/logging.h"

namespace coord::agent {
namespace {

// --- NVML, as declared in nvml.h ---------------------------------------------------------
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
using nvmlEventSet_t = void*;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_TIMEOUT = 10;
constexpr int NVML_TEMPERATURE_GPU = 0;  // nvmlTemperatureSensors_t
constexpr int NVML_CLOCK_SM = 1;         // nvmlClockType_t
constexpr int NVML_CLOCK_MEM = 2;
constexpr unsigned long long nvmlEventTypeXidCriticalError = 0x8ULL;
constexpr unsigned kBufferSize = 96;  // NVML_DEVICE_{UUID,NAME}_V2_BUFFER_SIZE
struct nvmlUtilization_t {
  unsigned gpu;
  unsigned memory;
};
struct nvmlMemory_t {
  unsigned long long total, free, used;  // bytes
};
struct nvmlEventData_t {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;  // the Xid
  unsigned gpuInstanceId;
  unsigned computeInstanceId;
};

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using CountFn = nvmlReturn_t (*)(unsigned*);
using HandleFn = nvmlReturn_t (*)(unsigned, nvmlDevice_t*);
using StringFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned);  // GetUUID, GetName
using UintFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned*);          // GetPowerUsage, GetMinorNumber
using UtilizationFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlUtilization_t*);
using MemoryFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using SensorFn = nvmlReturn_t (*)(nvmlDevice_t, int, unsigned*);  // temperature, clocks
using EventSetCreateFn = nvmlReturn_t (*)(nvmlEventSet_t*);
using RegisterEventsFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned long long, nvmlEventSet_t);
using EventSetWaitFn = nvmlReturn_t (*)(nvmlEventSet_t, nvmlEventData_t*, unsigned);
using EventSetFreeFn = nvmlReturn_t (*)(nvmlEventSet_t);

constexpr const char* kLib = "libnvidia-ml.so.1";

}  // namespace

template <typename Fn>
Fn GpuMetrics::Get(const char* symbol) const {
  return reinterpret_cast<Fn>(system_->Symbol(kLib, symbol));
}

GpuMetrics::GpuMetrics(std::shared_ptr<const env_check::System> system, std::string hostname)
    : system_(std::move(system)), hostname_(std::move(hostname)) {}

std::unique_ptr<GpuMetrics> GpuMetrics::Open(std::shared_ptr<const env_check::System> system,
                                             std::string hostname) {
  std::unique_ptr<GpuMetrics> g(new GpuMetrics(std::move(system), std::move(hostname)));
  g->Init();
  return g;
}

void GpuMetrics::Init() {
  auto init = Get<InitFn>("nvmlInit_v2");
  if (init == nullptr) return;  // no driver: no GPU metrics, nothing to say
  if (nvmlReturn_t rc = init(); rc != NVML_SUCCESS) {
    error_ = "nvmlInit_v2 failed (NVML error " + std::to_string(rc) + ")";
    return;
  }
  initialized_ = true;
  auto count_fn = Get<CountFn>("nvmlDeviceGetCount_v2");
  auto handle_fn = Get<HandleFn>("nvmlDeviceGetHandleByIndex_v2");
  unsigned count = 0;
  if (count_fn == nullptr || handle_fn == nullptr || count_fn(&count) != NVML_SUCCESS) {
    error_ = "NVML cannot count the GPUs";
    return;
  }
  auto uuid_fn = Get<StringFn>("nvmlDeviceGetUUID");
  auto name_fn = Get<StringFn>("nvmlDeviceGetName");
  auto minor_fn = Get<UintFn>("nvmlDeviceGetMinorNumber");
  for (unsigned i = 0; i < count; ++i) {
    Gpu gpu;
    gpu.index = static_cast<int>(i);
    if (handle_fn(i, &gpu.handle) != NVML_SUCCESS || gpu.handle == nullptr) continue;
    char buf[kBufferSize] = {};
    if (uuid_fn != nullptr && uuid_fn(gpu.handle, buf, kBufferSize) == NVML_SUCCESS) gpu.uuid = buf;
    buf[0] = '\0';
    if (name_fn != nullptr && name_fn(gpu.handle, buf, kBufferSize) == NVML_SUCCESS) gpu.name = buf;
    unsigned minor = 0;
    gpu.device =
        "nvidia" +
        std::to_string(minor_fn != nullptr && minor_fn(gpu.handle, &minor) == NVML_SUCCESS ? minor
                                                                                           : i);
    gpus_.push_back(gpu);
  }
  // Xid events: optional (some drivers or containers refuse them); without them the
  // metric stays 0.
  auto create = Get<EventSetCreateFn>("nvmlEventSetCreate");
  auto reg = Get<RegisterEventsFn>("nvmlDeviceRegisterEvents");
  if (create != nullptr && reg != nullptr && Get<EventSetWaitFn>("nvmlEventSetWait_v2") &&
      create(&event_set_) == NVML_SUCCESS) {
    int registered = 0;
    for (const Gpu& gpu : gpus_) {
      if (reg(gpu.handle, nvmlEventTypeXidCriticalError, event_set_) == NVML_SUCCESS) ++registered;
    }
    if (registered == 0) {
      if (auto free_fn = Get<EventSetFreeFn>("nvmlEventSetFree")) free_fn(event_set_);
      event_set_ = nullptr;
    }
  }
  LOG_INFO << "GPU metrics: " << gpus_.size() << " GPU(s) through NVML"
           << (event_set_ == nullptr && !gpus_.empty() ? " (Xid events unavailable)" : "");
}

GpuMetrics::~GpuMetrics() {
  if (event_set_ != nullptr) {
    if (auto free_fn = Get<EventSetFreeFn>("nvmlEventSetFree")) free_fn(event_set_);
  }
  if (initialized_) {
    if (auto shutdown = Get<ShutdownFn>("nvmlShutdown")) shutdown();
  }
}

void GpuMetrics::DrainXidEvents() {
  if (event_set_ == nullptr) return;
  auto wait = Get<EventSetWaitFn>("nvmlEventSetWait_v2");
  // Bounded: a storm of events cannot hold the scrape.
  for (int i = 0; i < 1000; ++i) {
    nvmlEventData_t data{};
    nvmlReturn_t rc = wait(event_set_, &data, 0);
    if (rc == NVML_ERROR_TIMEOUT || rc != NVML_SUCCESS) return;
    if ((data.eventType & nvmlEventTypeXidCriticalError) == 0) continue;
    for (Gpu& gpu : gpus_) {
      if (gpu.handle == data.device) gpu.last_xid = data.eventData;
    }
  }
}

void GpuMetrics::Collect(metrics::MetricsPage* page) {
  if (gpus_.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  DrainXidEvents();
  auto util_fn = Get<UtilizationFn>("nvmlDeviceGetUtilizationRates");
  auto mem_fn = Get<MemoryFn>("nvmlDeviceGetMemoryInfo");
  auto power_fn = Get<UintFn>("nvmlDeviceGetPowerUsage");
  auto temp_fn = Get<SensorFn>("nvmlDeviceGetTemperature");
  auto clock_fn = Get<SensorFn>("nvmlDeviceGetClockInfo");
  for (const Gpu& gpu : gpus_) {
    const metrics::Labels l = {{"gpu", std::to_string(gpu.index)},
                               {"UUID", gpu.uuid},
                               {"device", gpu.device},
                               {"modelName", gpu.name},
                               {"Hostname", hostname_}};
    // A query the GPU does not support leaves its metric out, as DCGM does.
    nvmlUtilization_t util{};
    if (util_fn != nullptr && util_fn(gpu.handle, &util) == NVML_SUCCESS) {
      page->Gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", l, util.gpu);
      page->Gauge("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", l, util.memory);
    }
    nvmlMemory_t mem{};
    if (mem_fn != nullptr && mem_fn(gpu.handle, &mem) == NVML_SUCCESS) {
      page->Gauge("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", l,
                  static_cast<double>(mem.free / (1024 * 1024)));
      page->Gauge("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", l,
                  static_cast<double>(mem.used / (1024 * 1024)));
      page->Gauge("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).", l,
                  static_cast<double>(mem.total / (1024 * 1024)));
    }
    unsigned value = 0;
    if (power_fn != nullptr && power_fn(gpu.handle, &value) == NVML_SUCCESS) {
      page->Gauge("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", l, value / 1000.0);  // mW
    }
    if (temp_fn != nullptr && temp_fn(gpu.handle, NVML_TEMPERATURE_GPU, &value) == NVML_SUCCESS) {
      page->Gauge("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", l, value);
    }
    if (clock_fn != nullptr && clock_fn(gpu.handle, NVML_CLOCK_SM, &value) == NVML_SUCCESS) {
      page->Gauge("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", l, value);
    }
    if (clock_fn != nullptr && clock_fn(gpu.handle, NVML_CLOCK_MEM, &value) == NVML_SUCCESS) {
      page->Gauge("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", l, value);
    }
    page->Gauge("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", l,
                static_cast<double>(gpu.last_xid));
  }
}

void GpuMetrics::Sample(NodeUsage* usage) {
  if (gpus_.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto util_fn = Get<UtilizationFn>("nvmlDeviceGetUtilizationRates");
  auto mem_fn = Get<MemoryFn>("nvmlDeviceGetMemoryInfo");
  auto power_fn = Get<UintFn>("nvmlDeviceGetPowerUsage");
  for (const Gpu& gpu : gpus_) {
    GpuUsage* g = usage->add_gpus();
    g->set_index(gpu.index);
    nvmlUtilization_t util{};
    const bool has_util = util_fn != nullptr && util_fn(gpu.handle, &util) == NVML_SUCCESS;
    g->set_util_percent(has_util ? util.gpu : -1);
    nvmlMemory_t mem{};
    if (mem_fn != nullptr && mem_fn(gpu.handle, &mem) == NVML_SUCCESS) {
      g->set_mem_used_mib(static_cast<double>(mem.used) / (1024 * 1024));
      g->set_mem_total_mib(static_cast<double>(mem.total) / (1024 * 1024));
    }
    unsigned mw = 0;
    const bool has_power = power_fn != nullptr && power_fn(gpu.handle, &mw) == NVML_SUCCESS;
    g->set_power_w(has_power ? mw / 1000.0 : -1);
  }
}

}  // namespace coord::agent
