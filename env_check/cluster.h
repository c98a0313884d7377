// Cluster-wide checks: what no single node can tell about itself. The coordinator
// gathers every node's check results (each agent runs the node table), then:
//  - same_*: versions (driver, CUDA, NCCL, Open MPI, the job's program digest) must
//    agree, and the node(s) that differ from the rest are named;
//  - shared_path_same_fs: every node wrote a token into the shared path and read
//    everyone's; a node that reads a different filesystem there (a local directory
//    at the same path, a different export) is named, per node;
//  - clock_offset: each node's clock against the coordinator's.
// Pure functions over results, so every rule is unit-tested without agents; the
// report (table and JSON) is formatted here too, for coordctl check and start.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "env_check/check.h"

namespace coord::env_check {

// One node's answer, or why there was none.
struct NodeReport {
  std::string name;  // how the hosts file names it ("gpu07:7071")
  bool reachable = true;
  std::string error;     // unreachable: the RPC error
  std::string hostname;  // what the node calls itself
  std::vector<CheckResult> results;
  // Node clock minus coordinator clock, and the uncertainty (half the round trip).
  std::optional<int64_t> clock_offset_ms;
  int64_t clock_uncertainty_ms = 0;
};

// Which tokens each node read back from the shared path.
struct TokenExchange {
  std::string shared_path;
  // wrote[i]: node i's token was written ("" = ok, else the error).
  std::vector<std::string> write_error;
  // seen[i][j]: node i read node j's token with the right content.
  std::vector<std::vector<bool>> seen;
  // read_error[i]: why node i could not read at all ("" = it read).
  std::vector<std::string> read_error;
};

// Appends a shared_path_same_fs result to every reachable node: it passes when the
// node sees, and is seen by, the largest group of nodes that all see each other.
void AddSharedPathResults(const TokenExchange& tokens, std::vector<NodeReport>* nodes);

// Version agreement and clock offsets across the reachable nodes.
// max_clock_offset_ms: a larger |offset| (beyond the uncertainty) is a WARN.
std::vector<CheckResult> CompareNodes(const std::vector<NodeReport>& nodes,
                                      int64_t max_clock_offset_ms = 1000);

struct ClusterReport {
  std::vector<NodeReport> nodes;
  std::vector<CheckResult> cluster;  // CompareNodes' rows
};

// 0: everything passed; 1: only WARN/INFO misses; 2: any FAIL or unreachable node.
int ClusterExitCode(const ClusterReport& report);

// A checks x nodes matrix (up to 8 nodes; beyond that one summary column), the
// cluster rows, then every miss with what was expected and how to fix it, identical
// misses on several nodes folded into one entry.
std::string FormatClusterReport(const ClusterReport& report);

// {"nodes": [{"name", "reachable", "error", "hostname", "clock_offset_ms", "checks": [...]}],
//  "cluster": [...], "exit_code": N}
nlohmann::json ClusterReportToJson(const ClusterReport& report);

}  // namespace coord::env_check
