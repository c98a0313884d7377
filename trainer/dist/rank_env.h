// Who this gpt-rank process is within its job, read from the launcher's environment.
// The first launcher whose marker variable is set wins:
//
//   env:// (torch, and Coord's agent, which sets all of these), when RANK or WORLD_SIZE is set:
//     RANK, WORLD_SIZE            required, 0 <= RANK < WORLD_SIZE
//     LOCAL_RANK                  default 0, < LOCAL_WORLD_SIZE
//     LOCAL_WORLD_SIZE            default 1, <= WORLD_SIZE
//     GROUP_RANK                  node index, default 0
//     MASTER_ADDR, MASTER_PORT    required when WORLD_SIZE > 1
//   Open MPI (mpirun), when OMPI_COMM_WORLD_RANK is set:
//     OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE
//     node_rank = RANK / LOCAL_SIZE: OMPI_COMM_WORLD_NODE_RANK is not a node index (it
//       is this process's rank among all jobs' processes on the node), so the node
//       index assumes mpirun's default by-slot mapping with the same count per node.
//     MASTER_ADDR from the environment (mpirun -x MASTER_ADDR=...); else 127.0.0.1
//       when every rank is on this node; else an error.
//     MASTER_PORT from the environment, else kDefaultMasterPort.
//   Slurm (srun), when SLURM_PROCID is set:
//     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID (default 0)
//     local world size: SLURM_NTASKS_PER_NODE, else this node's entry of
//       SLURM_TASKS_PER_NODE ("4(x2),3": nodes 0 and 1 run 4 tasks, node 2 runs 3)
//     MASTER_ADDR from the environment, else the first host of SLURM_JOB_NODELIST
//       (or SLURM_NODELIST); MASTER_PORT from the environment, else the default.
//   Otherwise a single process: rank 0 of 1, source "single".
//
// A variable set to "" counts as unset. Every error is InvalidArgument and names the
// variable, its value and what was expected.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"

namespace gpt_rank::dist {

// torch.distributed's default MASTER_PORT.
inline constexpr int kDefaultMasterPort = 29500;

struct RankEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // index among the ranks on this node
  int local_world_size = 1;  // ranks on this node
  int node_rank = 0;         // index of this node
  // Where rank 0 hosts the rendezvous store. "" and 0 for source "single"; "" also
  // for env:// with WORLD_SIZE=1 and no MASTER_ADDR (nobody to meet).
  std::string master_addr;
  int master_port = 0;
  std::string source;  // "env://", "openmpi", "slurm" or "single"
  // Which run, and which of its restarts, this process belongs to (torchrun's and
  // Coord's TORCHELASTIC_RUN_ID / TORCHELASTIC_RESTART_COUNT, under any launcher; ""
  // and 0 when unset). Checkpoint saves are fenced by them (save_fence.h).
  std::string run_id;
  int restart_count = 0;
};

// Like getenv: nullptr when the variable is unset. Lets tests pass a map.
using EnvLookup = std::function<const char*(const char*)>;

coord::StatusOr<RankEnv> DiscoverRankEnv(const EnvLookup& lookup);
// Reads the process environment.
coord::StatusOr<RankEnv> DiscoverRankEnv();

// The first host of a Slurm node list, keeping zero padding:
// "gpu[07-09,12],cpu1" -> "gpu07", "node3" -> "node3", "a,b" -> "a",
// "r[1-2]-n[01-04]" -> "r1-n01". "" when the list is empty or malformed.
std::string FirstSlurmHost(const std::string& nodelist);

}  // namespace gpt_rank::dist
