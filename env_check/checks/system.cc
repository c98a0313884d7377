// Node checks that need no GPU: /dev/shm size, free disk where checkpoints go,
// memlock and nofile limits, cgroup v2 (the agent puts each job in a cgroup).
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>

#include "env_check/check.h"
#include "env_check/checks/result.h"

namespace coord::env_check {
namespace {

std::string Bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double b = static_cast<double>(bytes);
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f %s", b, units[u]);
  return buf;
}

std::string LimitText(uint64_t v) { return v == UINT64_MAX ? "unlimited" : std::to_string(v); }

CheckResult ShmSize(const CheckContext& ctx, const System& sys) {
  CheckResult r =
      Result("shm_size", true, Severity::kWarn, "", ">= " + Bytes(ctx.min_shm_bytes),
             "NCCL passes data between local ranks through /dev/shm; remount it larger "
             "(mount -o remount,size=64G /dev/shm) or raise the container's --shm-size");
  StatusOr<FsSpace> space = sys.Space("/dev/shm", ctx.probe_deadline);
  if (!space.ok()) {
    r.passed = false;
    r.found = space.status().message();
    return r;
  }
  r.found = Bytes(space->total);
  r.passed = space->total >= ctx.min_shm_bytes;
  r.facts.push_back({"shm_bytes", std::to_string(space->total)});
  return r;
}

CheckResult CheckpointDisk(const CheckContext& ctx, const System& sys) {
  if (ctx.checkpoint_dir.empty())
    return Result("checkpoint_disk", true, Severity::kInfo, "not configured");
  CheckResult r = Result("checkpoint_disk", true, Severity::kFail, "",
                         ">= " + Bytes(ctx.min_free_disk_bytes) + " free on " + ctx.checkpoint_dir +
                             (ctx.checkpoint_bytes > 0
                                  ? " (room for 2 checkpoints of " + Bytes(ctx.checkpoint_bytes) + ")"
                                  : ""),
                         "free space where checkpoints go, or point training.save elsewhere");
  // The directory is often made by the first save: measure the nearest existing
  // ancestor, which is the filesystem the checkpoints will land on.
  std::string dir = ctx.checkpoint_dir;
  StatusOr<FsSpace> space = sys.Space(dir, ctx.probe_deadline);
  while (!space.ok() && space.status().code() == StatusCode::kNotFound && dir.size() > 1) {
    size_t slash = dir.find_last_of('/', dir.size() - 2);
    if (slash == std::string::npos) break;
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    space = sys.Space(dir, ctx.probe_deadline);
  }
  if (!space.ok()) {
    r.passed = false;
    r.found = space.status().message();
    if (space.status().code() == StatusCode::kNotFound)
      r.hint = "create " + ctx.checkpoint_dir + " (or its parent mount) on this node";
    if (space.status().code() == StatusCode::kDeadlineExceeded)
      r.hint = "the filesystem holding " + ctx.checkpoint_dir +
               " does not answer: a hung NFS mount? (`dmesg | grep -i nfs`)";
    return r;
  }
  r.found = Bytes(space->free) + " free on " + dir;
  r.passed = space->free >= ctx.min_free_disk_bytes;
  return r;
}

CheckResult MemlockLimit(const CheckContext&, const System& sys) {
  ResourceLimit l = sys.Limit(RLIMIT_MEMLOCK);
  CheckResult r = Result("memlock_limit", l.soft == UINT64_MAX, Severity::kWarn,
                         "soft " + LimitText(l.soft) + ", hard " + LimitText(l.hard), "unlimited",
                         "RDMA (InfiniBand/RoCE) pins memory; set 'memlock unlimited' in "
                         "/etc/security/limits.conf or LimitMEMLOCK=infinity for the agent's unit");
  r.facts.push_back({"memlock_soft", LimitText(l.soft)});
  return r;
}

CheckResult NofileLimit(const CheckContext&, const System& sys) {
  constexpr uint64_t kMin = 65536;
  ResourceLimit l = sys.Limit(RLIMIT_NOFILE);
  return Result("nofile_limit", l.soft >= kMin, Severity::kWarn,
                "soft " + LimitText(l.soft) + ", hard " + LimitText(l.hard),
                ">= " + std::to_string(kMin),
                "data loaders and NCCL open many files and sockets; raise nofile in "
                "/etc/security/limits.conf or LimitNOFILE= for the agent's unit");
}

CheckResult Cgroup2(const CheckContext&, const System& sys) {
  CheckResult r =
      Result("cgroup2", false, Severity::kInfo, "", "cgroup2 mounted",
             "the agent confines jobs with cgroup v2; boot with "
             "systemd.unified_cgroup_hierarchy=1 or mount -t cgroup2 none /sys/fs/cgroup");
  StatusOr<std::string> mi = sys.ReadFile("/proc/self/mountinfo");
  if (!mi.ok()) {
    r.found = mi.status().message();
    return r;
  }
  std::istringstream in(*mi);
  std::string line;
  while (std::getline(in, line)) {
    // " - cgroup2 " separates the optional fields from the filesystem type.
    size_t dash = line.find(" - ");
    if (dash != std::string::npos && line.compare(dash + 3, 8, "cgroup2 ") == 0) {
      std::istringstream f(line);
      std::string id, parent, dev, root, mount_point;
      f >> id >> parent >> dev >> root >> mount_point;
      r.passed = true;
      r.found = "cgroup2 on " + mount_point;
      return r;
    }
  }
  r.found = "no cgroup2 mount";
  return r;
}

}  // namespace

const std::vector<Check>& SystemChecks() {
  static const std::vector<Check> k = {
      {"shm_size", "/dev/shm is large enough for NCCL's shared-memory transport", ShmSize},
      {"checkpoint_disk", "free space where checkpoints are written", CheckpointDisk},
      {"memlock_limit", "locked-memory limit is unlimited (RDMA)", MemlockLimit},
      {"nofile_limit", "open-files limit >= 65536", NofileLimit},
      {"cgroup2", "cgroup v2 is mounted (job confinement)", Cgroup2},
  };
  return k;
}

}  // namespace coord::env_check
