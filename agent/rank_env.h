// The environment each rank starts with: the agent's own environment, then the
// job's env map, then (overriding both) the torchrun-compatible variables plus
// Coord's own, defined as one table in rank_env.cc. Runs in coord-agent when it
// writes a generation's spec. Pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord::agent {

struct RankEnvInput {
  std::string job_id;
  int generation = 0;
  int node_rank = 0;
  int num_nodes = 1;
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;
  int local_world_size = 1;  // ranks on this node
  std::string master_addr;
  int master_port = 0;
  int max_restarts = 0;
  std::string job_tag;  // COORD_JOB_TAG
  std::string node_name;  // COORD_NODE_NAME: the hosts-file name (log prefixes)
  std::string flight_record;  // COORD_FLIGHT_RECORD: the rank's flight record file
};

struct RankEnvVar {
  const char* name;
  std::string (*value)(const RankEnvInput& in);
};

// The variables Coord sets for every rank, in the order they are appended.
const std::vector<RankEnvVar>& RankEnvTable();

// base ("K=V" entries, e.g. the agent's environ), then job_env, then the table.
// Entries keep the position of their first appearance; later layers override.
std::vector<std::string> BuildRankEnv(const std::vector<std::string>& base,
                                      const std::map<std::string, std::string>& job_env,
                                      const RankEnvInput& in);

// Keys must be non-empty and contain neither '=' nor NUL; values no NUL.
Status ValidateEnvEntry(const std::string& key, const std::string& value);

// This process's environment as "K=V" entries.
std::vector<std::string> CurrentEnviron();

}  // namespace coord::agent
