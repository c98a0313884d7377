// GpuMetrics against a fake NVML (functions of this file, handed out by a fake
// System's Symbol()): two GPUs, one that cannot report power; an Xid event that
// arrives between two scrapes; and nodes without a driver or with a broken one.
#include "agent/gpu_metrics.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>

#include "tests/unit/env_check/fake_system.h"

namespace coord::agent {
namespace {

// --- the fake driver: two GPUs, handles are the addresses of these structs ---------------
struct FakeGpu {
  const char* uuid;
  const char* name;
  unsigned minor;
  unsigned util_gpu, util_mem;
  unsigned long long total, used;
  int power_rc;  // NVML_SUCCESS or NVML_ERROR_NOT_SUPPORTED (3)
  unsigned power_mw, temp_c, sm_mhz, mem_mhz;
};
FakeGpu gpus[2] = {
    {"GPU-aaaa", "NVIDIA H100 80GB HBM3", 0, 97, 40, 80ull << 30, 60ull << 30, 0, 612345, 66, 1980,
     2619},
    {"GPU-bbbb", "NVIDIA H100 80GB HBM3", 1, 0, 0, 80ull << 30, 1ull << 20, 3, 0, 31, 345, 2619},
};
struct EventData {
  void* device;
  unsigned long long type, data;
  unsigned gi, ci;
};
std::deque<EventData> pending_events;
int init_rc = 0;
int shutdowns = 0;

int Init() { return init_rc; }
int Shutdown() {
  ++shutdowns;
  return 0;
}
int Count(unsigned* n) {
  *n = 2;
  return 0;
}
int Handle(unsigned i, void** dev) {
  *dev = &gpus[i];
  return 0;
}
int Uuid(void* dev, char* buf, unsigned len) {
  std::strncpy(buf, static_cast<FakeGpu*>(dev)->uuid, len);
  return 0;
}
int Name(void* dev, char* buf, unsigned len) {
  std::strncpy(buf, static_cast<FakeGpu*>(dev)->name, len);
  return 0;
}
int Minor(void* dev, unsigned* m) {
  *m = static_cast<FakeGpu*>(dev)->minor;
  return 0;
}
int Util(void* dev, unsigned* u) {
  u[0] = static_cast<FakeGpu*>(dev)->util_gpu;
  u[1] = static_cast<FakeGpu*>(dev)->util_mem;
  return 0;
}
int Mem(void* dev, unsigned long long* m) {
  const FakeGpu* g = static_cast<FakeGpu*>(dev);
  m[0] = g->total;
  m[1] = g->total - g->used;
  m[2] = g->used;
  return 0;
}
int Power(void* dev, unsigned* mw) {
  *mw = static_cast<FakeGpu*>(dev)->power_mw;
  return static_cast<FakeGpu*>(dev)->power_rc;
}
int Temp(void* dev, int sensor, unsigned* c) {
  *c = static_cast<FakeGpu*>(dev)->temp_c;
  return sensor == 0 ? 0 : 2;
}
int Clock(void* dev, int type, unsigned* mhz) {
  *mhz = type == 1 ? static_cast<FakeGpu*>(dev)->sm_mhz : static_cast<FakeGpu*>(dev)->mem_mhz;
  return 0;
}
int set_token = 0;
int EventSetCreate(void** set) {
  *set = &set_token;
  return 0;
}
int Register(void*, unsigned long long types, void* set) {
  return set == &set_token && types == 0x8 ? 0 : 2;
}
int Wait(void* set, EventData* out, unsigned timeout_ms) {
  EXPECT_EQ(timeout_ms, 0u) << "a scrape must never wait for events";
  if (set != &set_token || pending_events.empty()) return 10;  // NVML_ERROR_TIMEOUT
  *out = pending_events.front();
  pending_events.pop_front();
  return 0;
}
int EventSetFree(void*) { return 0; }

std::shared_ptr<env_check::testing::FakeSystem> NodeWithNvml() {
  auto sys = std::make_shared<env_check::testing::FakeSystem>();
  auto add = [&](const char* name, void* fn) {
    sys->symbols[std::string("libnvidia-ml.so.1:") + name] = fn;
  };
  add("nvmlInit_v2", reinterpret_cast<void*>(&Init));
  add("nvmlShutdown", reinterpret_cast<void*>(&Shutdown));
  add("nvmlDeviceGetCount_v2", reinterpret_cast<void*>(&Count));
  add("nvmlDeviceGetHandleByIndex_v2", reinterpret_cast<void*>(&Handle));
  add("nvmlDeviceGetUUID", reinterpret_cast<void*>(&Uuid));
  add("nvmlDeviceGetName", reinterpret_cast<void*>(&Name));
  add("nvmlDeviceGetMinorNumber", reinterpret_cast<void*>(&Minor));
  add("nvmlDeviceGetUtilizationRates", reinterpret_cast<void*>(&Util));
  add("nvmlDeviceGetMemoryInfo", reinterpret_cast<void*>(&Mem));
  add("nvmlDeviceGetPowerUsage", reinterpret_cast<void*>(&Power));
  add("nvmlDeviceGetTemperature", reinterpret_cast<void*>(&Temp));
  add("nvmlDeviceGetClockInfo", reinterpret_cast<void*>(&Clock));
  add("nvmlEventSetCreate", reinterpret_cast<void*>(&EventSetCreate));
  add("nvmlDeviceRegisterEvents", reinterpret_cast<void*>(&Register));
  add("nvmlEventSetWait_v2", reinterpret_cast<void*>(&Wait));
  add("nvmlEventSetFree", reinterpret_cast<void*>(&EventSetFree));
  return sys;
}

std::string Scrape(GpuMetrics& g) {
  metrics::MetricsPage page;
  g.Collect(&page);
  return page.Text();
}

TEST(GpuMetricsTest, DcgmNamesAndLabelsPerGpu) {
  init_rc = 0;
  shutdowns = 0;
  pending_events.clear();
  {
    auto g = GpuMetrics::Open(NodeWithNvml(), "node-07");
    EXPECT_EQ(g->gpu_count(), 2);
    EXPECT_EQ(g->error(), "");
    const std::string text = Scrape(*g);
    const std::string l0 =
        "{gpu=\"0\",UUID=\"GPU-aaaa\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\","
        "Hostname=\"node-07\"}";
    const std::string l1 =
        "{gpu=\"1\",UUID=\"GPU-bbbb\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\","
        "Hostname=\"node-07\"}";
    for (const std::string& line : std::vector<std::string>{
             "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n",
             "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n", "DCGM_FI_DEV_GPU_UTIL" + l0 + " 97\n",
             "DCGM_FI_DEV_MEM_COPY_UTIL" + l0 + " 40\n", "DCGM_FI_DEV_FB_USED" + l0 + " 61440\n",
             "DCGM_FI_DEV_FB_FREE" + l0 + " 20480\n", "DCGM_FI_DEV_FB_TOTAL" + l0 + " 81920\n",
             "DCGM_FI_DEV_POWER_USAGE" + l0 + " 612.345\n", "DCGM_FI_DEV_GPU_TEMP" + l0 + " 66\n",
             "DCGM_FI_DEV_SM_CLOCK" + l0 + " 1980\n", "DCGM_FI_DEV_MEM_CLOCK" + l0 + " 2619\n",
             "DCGM_FI_DEV_XID_ERRORS" + l0 + " 0\n", "DCGM_FI_DEV_GPU_UTIL" + l1 + " 0\n",
             "DCGM_FI_DEV_FB_USED" + l1 + " 1\n", "DCGM_FI_DEV_SM_CLOCK" + l1 + " 345\n"}) {
      EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
    }
    // GPU 1 cannot report power: left out, as DCGM leaves out a field it cannot read.
    EXPECT_EQ(text.find("DCGM_FI_DEV_POWER_USAGE" + l1), std::string::npos) << text;

    // An Xid 79 (fell off the bus) on GPU 1 arrives; the next scrape shows it, and keeps
    // showing it (the last Xid), with another event type ignored.
    pending_events.push_back({&gpus[1], 0x8, 79, 0, 0});
    pending_events.push_back({&gpus[0], 0x1, 5, 0, 0});  // not an Xid
    EXPECT_NE(Scrape(*g).find("DCGM_FI_DEV_XID_ERRORS" + l1 + " 79\n"), std::string::npos);
    const std::string again = Scrape(*g);
    EXPECT_NE(again.find("DCGM_FI_DEV_XID_ERRORS" + l1 + " 79\n"), std::string::npos);
    EXPECT_NE(again.find("DCGM_FI_DEV_XID_ERRORS" + l0 + " 0\n"), std::string::npos);
  }
  EXPECT_EQ(shutdowns, 1) << "NVML is shut down with the GpuMetrics";
}

TEST(GpuMetricsTest, NoDriverMeansNoGpuMetrics) {
  auto bare = std::make_shared<env_check::testing::FakeSystem>();
  auto g = GpuMetrics::Open(bare, "node-01");
  EXPECT_EQ(g->gpu_count(), 0);
  EXPECT_EQ(g->error(), "");
  EXPECT_EQ(Scrape(*g), "");
}

TEST(GpuMetricsTest, ABrokenDriverSaysWhyAndShowsNothing) {
  init_rc = 9;  // NVML_ERROR_DRIVER_NOT_LOADED
  shutdowns = 0;
  {
    auto g = GpuMetrics::Open(NodeWithNvml(), "node-01");
    EXPECT_EQ(g->gpu_count(), 0);
    EXPECT_EQ(g->error(), "nvmlInit_v2 failed (NVML error 9)");
    EXPECT_EQ(Scrape(*g), "");
  }
  EXPECT_EQ(shutdowns, 0) << "no nvmlShutdown without a successful nvmlInit";
  init_rc = 0;
}

}  // namespace
}  // namespace coord::agent
