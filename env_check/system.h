// What env_check reads from a node, behind one interface, so every check can be
// tested against a fake node: files under /proc, /sys and /dev (relative to a root),
// commands run with a deadline (nvidia-smi, mthreads-gmi, ompi_info), symbols from
// shared libraries loaded with dlopen (NVML, the CUDA driver and runtime, NCCL: never
// linked, so the agent runs on nodes without GPUs), the environment, filesystem and
// resource-limit queries, and a directory probe that runs in a child process with a
// deadline (a hung NFS mount blocks a stat forever; the probe must not).
//
// MakeRealSystem() reads this machine. Tests implement System (or wrap the real one
// and override a few methods) to give one node a fake nvidia-smi, another driver
// version, or a missing mount.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord::env_check {

struct CommandResult {
  bool not_found = false;  // the program is not on PATH
  bool timed_out = false;  // killed at the deadline
  int exit_code = -1;      // -1 when killed by a signal or not run
  std::string out, err;    // captured (truncated at 1 MiB each)
};

struct ResourceLimit {
  uint64_t soft = 0, hard = 0;  // UINT64_MAX = unlimited
};

class System {
 public:
  virtual ~System() = default;

  // Files of the node's /proc, /sys, /dev, /etc ("/proc/self/mountinfo",
  // "/sys/module/nouveau/initstate"). NotFound when missing.
  virtual StatusOr<std::string> ReadFile(const std::string& path) const = 0;
  virtual bool Exists(const std::string& path) const = 0;
  virtual StatusOr<std::vector<std::string>> ListDir(const std::string& path) const = 0;

  // Runs argv (argv[0] looked up in PATH) with stdin closed; never longer than
  // `deadline` (the process group is killed then).
  virtual CommandResult Run(const std::vector<std::string>& argv,
                            std::chrono::milliseconds deadline) const = 0;

  // dlopen(library) (kept open) and dlsym(symbol); null when either is missing.
  // Callers cast to the function type they know the symbol has.
  virtual void* Symbol(const std::string& library, const std::string& symbol) const = 0;

  virtual std::string Getenv(const std::string& name) const = 0;
  virtual std::string Hostname() const = 0;

  // Bytes available to unprivileged users on the filesystem holding path.
  virtual StatusOr<uint64_t> FreeBytes(const std::string& path) const = 0;
  // Total size of the filesystem holding path.
  virtual StatusOr<uint64_t> TotalBytes(const std::string& path) const = 0;
  virtual ResourceLimit Limit(int resource) const = 0;  // RLIMIT_*

  // In a child process bounded by `deadline`: stat + readdir of path and, with
  // write, create, fsync, read back and remove a small file in it. DeadlineExceeded
  // names the path and the deadline when the filesystem does not answer.
  virtual Status ProbeDirectory(const std::string& path, bool write,
                                std::chrono::milliseconds deadline) const = 0;

  // Whether a TCP listener could bind port on all addresses right now.
  virtual bool PortFree(int port) const = 0;
  // Resolves a host name (getaddrinfo); the error names the host.
  virtual StatusOr<std::string> Resolve(const std::string& host) const = 0;
};

// This machine. `root` prefixes the paths ReadFile/Exists/ListDir read ("/" normally).
std::unique_ptr<System> MakeRealSystem(const std::string& root = "/");

}  // namespace coord::env_check
