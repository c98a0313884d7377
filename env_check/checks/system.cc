// Node checks that need no GPU: /dev/shm size, free disk, memlock and nofile
// limits, a writable cgroup v2 for job cgroups. GPU, CUDA, NCCL, MPI and CFS
// checks join this table with the env_check issue.
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "env_check/check.h"

namespace coord::env_check {
namespace {

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f %s", b, units[u]);
  return buf;
}

CheckResult SpaceCheck(const char* id, const std::string& path, long min_bytes, Severity sev,
                       const std::string& hint) {
  CheckResult r{id, true, sev, "", ">= " + Bytes(static_cast<double>(min_bytes)) + " free on " + path, hint};
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) {
    r.passed = false;
    r.found = path + ": " + strerror(errno);
    return r;
  }
  double avail = static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
  r.found = Bytes(avail) + " free";
  r.passed = avail >= static_cast<double>(min_bytes);
  return r;
}

CheckResult ShmSize(const CheckContext& ctx) {
  return SpaceCheck("shm_size", "/dev/shm", ctx.min_shm_bytes, Severity::kWarn,
                    "NCCL uses /dev/shm between local ranks; remount it larger "
                    "(mount -o remount,size=64G /dev/shm) or raise the container's --shm-size");
}

CheckResult CheckpointDisk(const CheckContext& ctx) {
  if (ctx.checkpoint_dir.empty()) return {"checkpoint_disk", true, Severity::kInfo, "not configured", "", ""};
  return SpaceCheck("checkpoint_disk", ctx.checkpoint_dir, ctx.min_free_disk_bytes, Severity::kFail,
                    "free space where checkpoints go, or point training.save elsewhere");
}

CheckResult LimitCheck(const char* id, int resource, rlim_t min, const std::string& hint) {
  struct rlimit rl;
  getrlimit(resource, &rl);
  CheckResult r{id, true, Severity::kWarn, "", "", hint};
  auto fmt = [](rlim_t v) { return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v); };
  r.found = fmt(rl.rlim_cur);
  r.expected = min == RLIM_INFINITY ? "unlimited" : ">= " + fmt(min);
  r.passed = rl.rlim_cur == RLIM_INFINITY || (min != RLIM_INFINITY && rl.rlim_cur >= min);
  return r;
}

CheckResult Memlock(const CheckContext&) {
  return LimitCheck("memlock_limit", RLIMIT_MEMLOCK, RLIM_INFINITY,
                    "pinned memory for NCCL/RDMA: LimitMEMLOCK=infinity in the agent's unit, "
                    "or '* - memlock unlimited' in /etc/security/limits.conf");
}

CheckResult Nofile(const CheckContext&) {
  return LimitCheck("nofile_limit", RLIMIT_NOFILE, 65536,
                    "data loaders and NCCL open many files: LimitNOFILE=1048576 in the agent's unit");
}

CheckResult Cgroup2(const CheckContext&) {
  CheckResult r{"cgroup2", false, Severity::kInfo, "no cgroup2 mount", "cgroup2 mounted",
                "without cgroup2 the agent kills by process group and job tag, which a "
                "process can escape only by clearing its environment"};
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash != std::string::npos && line.compare(dash + 3, 8, "cgroup2 ") == 0) {
      r.passed = true;
      r.found = "cgroup2 mounted";
      break;
    }
  }
  return r;
}

}  // namespace

// The table: adding a check is one function and one row.
const std::vector<Check>& AllChecks() {
  static const std::vector<Check> kChecks = {
      {"shm_size", "/dev/shm is large enough for NCCL", ShmSize},
      {"checkpoint_disk", "free space where checkpoints are written", CheckpointDisk},
      {"memlock_limit", "memlock limit is unlimited (pinned memory)", Memlock},
      {"nofile_limit", "open-files limit is high enough", Nofile},
      {"cgroup2", "cgroup v2 is available for per-job cgroups", Cgroup2},
  };
  return kChecks;
}

std::vector<CheckResult> RunAll(const CheckContext& ctx) {
  std::vector<CheckResult> out;
  for (const Check& c : AllChecks()) out.push_back(c.run(ctx));
  return out;
}

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kFail: return "FAIL";
    case Severity::kWarn: return "WARN";
    default: return "INFO";
  }
}

}  // namespace coord::env_check
