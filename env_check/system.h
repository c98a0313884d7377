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

struct FsSpace {
  uint64_t free = 0;   // bytes available to unprivileged users
  uint64_t total = 0;  // size of the filesystem
};

// The job's program as this node would exec it, and a digest of its bytes, so
// the coordinator can name the node that runs a different build.
struct ProgramInfo {
  std::string path;    // resolved like execvp: PATH unless the name has a '/'
  std::string digest;  // XXH64 of the file, 16 hex digits
  uint64_t size = 0;
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
  // Run for a question only the installed program answers (`ompi_info --version`): a
  // long-lived System (the agent's) may answer again from memory while the program
  // file is unchanged, saving a process per check. By default it just runs.
  virtual CommandResult RunVersionQuery(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds deadline) const {
    return Run(argv, deadline);
  }

  // dlopen(library) (kept open) and dlsym(symbol); null when either is missing.
  // Callers cast to the function type they know the symbol has.
  virtual void* Symbol(const std::string& library, const std::string& symbol) const = 0;

  virtual std::string Getenv(const std::string& name) const = 0;
  virtual std::string Hostname() const = 0;

  // statvfs of the filesystem holding path, in a child bounded by `deadline`
  // (checkpoints usually live on the shared mount, which may hang).
  virtual StatusOr<FsSpace> Space(const std::string& path,
                                  std::chrono::milliseconds deadline) const = 0;
  virtual ResourceLimit Limit(int resource) const = 0;  // RLIMIT_*

  // In a child process bounded by `deadline`: stat + readdir of path and, with
  // write, create, fsync, read back and remove a small file in it. DeadlineExceeded
  // names the path and the deadline when the filesystem does not answer.
  virtual Status ProbeDirectory(const std::string& path, bool write,
                                std::chrono::milliseconds deadline) const = 0;

  // Looks `program` up in `search_path` (a PATH value; "" = this process's PATH)
  // and digests it, in a child bounded by `deadline` (PATH may reach into CFS).
  virtual StatusOr<ProgramInfo> LocateProgram(const std::string& program,
                                              const std::string& search_path,
                                              std::chrono::milliseconds deadline) const = 0;

  // Small files in the shared path, for the cluster-wide check that every node
  // sees every other node's token (one filesystem, not a local directory at the
  // same path). Each runs in a child bounded by `deadline`.
  // Write: creates the missing directories on the way, writes a temporary file,
  // fsyncs and renames it into place; at most 1 KiB, the most a read returns.
  // Remove: unlinks the file, then its parent and grandparent directories if they
  // are now empty (the check's directory and ".coord-check": the last node out
  // leaves nothing).
  virtual Status WriteSmallFile(const std::string& path, const std::string& content,
                                std::chrono::milliseconds deadline) const = 0;
  // Reads every path (at most 1 KiB each) in one child: one fork per node and
  // round, not one per token. Each entry is the file's bytes or why it could not
  // be read; a mount that does not answer fails the whole call (DeadlineExceeded).
  virtual StatusOr<std::vector<StatusOr<std::string>>> ReadSmallFiles(
      const std::vector<std::string>& paths, std::chrono::milliseconds deadline) const = 0;
  virtual Status RemoveSmallFile(const std::string& path,
                                 std::chrono::milliseconds deadline) const = 0;

  // Whether a TCP listener could bind port on all addresses right now.
  virtual bool PortFree(int port) const = 0;
  // Resolves a host name (getaddrinfo); the error names the host.
  virtual StatusOr<std::string> Resolve(const std::string& host) const = 0;
};

// This machine. `root` prefixes the paths ReadFile/Exists/ListDir read ("/" normally).
std::unique_ptr<System> MakeRealSystem(const std::string& root = "/");

}  // namespace coord::env_check
