// Per-GPU metrics for the agent's /metrics page, named and labelled as NVIDIA's DCGM
// exporter does (DCGM_FI_DEV_*; labels gpu, UUID, device, modelName, Hostname), so
// the dashboards built for it work unchanged. Read through NVML, loaded with dlopen
// through env_check's System (never linked), as env_check's GPU checks do: on a node
// without the driver there are simply no GPU metrics.
//
// NVML stays initialised for the agent's life (nvmlInit is slow: tens of ms per GPU);
// Xid errors arrive as NVML events, drained at each scrape without waiting, and the
// last one per GPU is kept (DCGM_FI_DEV_XID_ERRORS: "value of the last XID error").
// Thread-safe: Collect runs on the HTTP server's threads, serialised by a mutex.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "env_check/system.h"
#include "proto/agent.pb.h"

namespace coord::agent {

class GpuMetrics {
 public:
  // Opens NVML. Never fails: without a driver, gpu_count() is 0 and error() says why
  // ("" when the library is simply not installed).
  static std::unique_ptr<GpuMetrics> Open(std::shared_ptr<const env_check::System> system,
                                          std::string hostname);
  ~GpuMetrics();  // frees the event set, nvmlShutdown
  GpuMetrics(const GpuMetrics&) = delete;
  GpuMetrics& operator=(const GpuMetrics&) = delete;

  void Collect(metrics::MetricsPage* page);
  // Each GPU's utilisation, memory and power into usage->gpus (node_usage.h).
  void Sample(NodeUsage* usage);
  int gpu_count() const { return static_cast<int>(gpus_.size()); }
  const std::string& error() const { return error_; }

 private:
  struct Gpu {
    void* handle = nullptr;  // nvmlDevice_t
    int index = 0;
    std::string uuid, name, device;  // device: "nvidia<minor>"
    unsigned long long last_xid = 0;
  };
  GpuMetrics(std::shared_ptr<const env_check::System> system, std::string hostname);
  void Init();
  void DrainXidEvents();
  template <typename Fn>
  Fn Get(const char* symbol) const;

  const std::shared_ptr<const env_check::System> system_;
  const std::string hostname_;
  bool initialized_ = false;
  std::string error_;
  std::mutex mu_;              // Collect's NVML calls and last_xid
  std::vector<Gpu> gpus_;      // fixed after Open; last_xid guarded by mu_
  void* event_set_ = nullptr;  // nvmlEventSet_t; null when Xid events are unavailable
};

}  // namespace coord::agent
