// env_check: what a node must have before a job starts on it. A check is a row in a
// table (registry.cc): an id, a one-line description, and a function that inspects
// the node through System (system.h) and says what it found, what was expected, how
// bad a miss is and how to fix it. env-check runs the table on one node; the agent
// runs it for `coordctl check` and before `coordctl start`.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "env_check/system.h"

namespace coord::env_check {

// FAIL blocks a launch, WARN is shown, INFO is recorded.
enum class Severity { kInfo, kWarn, kFail };

struct CheckResult {
  std::string id;
  bool passed = true;
  Severity severity = Severity::kInfo;  // what a miss means
  std::string found;                    // what the node has ("driver 550.54.15, 8 GPUs")
  std::string expected;                 // what the job needs
  std::string hint;                     // how to fix it, for a person
  // Machine-readable facts for cluster-wide comparison ("driver_version" ->
  // "550.54.15"); the coordinator compares them across nodes.
  std::vector<std::pair<std::string, std::string>> facts;
};

// What the job asks of a node (from the job spec; defaults when there is none).
struct CheckContext {
  int nproc_per_node = 0;                  // 0: no GPU count requirement
  bool gpus_required = false;              // the job runs on GPUs (a node without is FAIL)
  std::string shared_path;                 // the CFS mount the job uses ("" = not checked)
  std::vector<std::string> shared_fs_types = {"nfs", "nfs4"};
  std::string checkpoint_dir;              // where checkpoints go ("" = not checked)
  uint64_t min_shm_bytes = 1ull << 30;     // NCCL needs a large /dev/shm
  uint64_t min_free_disk_bytes = 10ull << 30;
  uint64_t checkpoint_bytes = 0;           // one checkpoint of the job's model (0 = unknown)
  int master_port = 0;                     // checked free on the master node (0 = not)
  bool is_master_node = false;
  std::vector<std::string> peer_hosts;     // every peer's name must resolve
  int cuda_runtime_version = 0;            // the job's CUDA runtime (e.g. 12040); 0 = any
  std::chrono::milliseconds probe_deadline{std::chrono::seconds(5)};
  std::chrono::milliseconds command_deadline{std::chrono::seconds(10)};
  // The job's program (launch.command[0]) and the PATH its ranks get ("" = the
  // checking process's); located and digested so nodes with another build stand out.
  std::string program;
  std::string program_search_path;
  std::string workdir;  // the ranks' working directory ("" = the checking process's)
};

struct Check {
  const char* id;
  const char* what;  // one line for --list
  CheckResult (*run)(const CheckContext& ctx, const System& sys);
};

const std::vector<Check>& AllChecks();
// Runs every check, in parallel (each is independent), results in table order.
// Returns within RunDeadline(ctx) even if a check hangs: that check is then a FAIL
// saying so, and its thread is left to finish on its own (it keeps `sys` alive).
std::vector<CheckResult> RunAll(const CheckContext& ctx, std::shared_ptr<const System> sys);
std::chrono::milliseconds RunDeadline(const CheckContext& ctx);
const char* SeverityName(Severity s);

// Node-level checks, one group per file (checks/*.cc); registry.cc concatenates them.
const std::vector<Check>& SystemChecks();  // checks/system.cc: shm, disk, limits, cgroup2
const std::vector<Check>& MountChecks();   // checks/mounts.cc: the shared (CFS) mount
const std::vector<Check>& NetworkChecks(); // checks/network.cc: master port, peer names
const std::vector<Check>& SoftwareChecks();// checks/software.cc: Open MPI, DCGM env vars
const std::vector<Check>& GpuChecks();     // checks/gpu.cc: NVML / nvidia-smi / mthreads-gmi
const std::vector<Check>& CudaChecks();    // checks/cuda.cc: CUDA driver/runtime, NCCL

}  // namespace coord::env_check
