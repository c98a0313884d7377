// The rank environment table (see rank_env.h). Runs in coord-agent.
#include "agent/rank_env.h"

#include <unordered_map>

#include "agent/state_dir.h"

extern char** environ;

namespace coord::agent {
namespace {

std::string I(int v) { return std::to_string(v); }

}  // namespace

// torchrun's names first (so torch jobs run unchanged), then Coord's.
const std::vector<RankEnvVar>& RankEnvTable() {
  static const std::vector<RankEnvVar> kTable = {
      {"RANK", [](const RankEnvInput& in) { return I(in.rank); }},
      {"LOCAL_RANK", [](const RankEnvInput& in) { return I(in.local_rank); }},
      {"WORLD_SIZE", [](const RankEnvInput& in) { return I(in.world_size); }},
      {"LOCAL_WORLD_SIZE", [](const RankEnvInput& in) { return I(in.local_world_size); }},
      {"NODE_RANK", [](const RankEnvInput& in) { return I(in.node_rank); }},
      {"GROUP_RANK", [](const RankEnvInput& in) { return I(in.node_rank); }},
      {"GROUP_WORLD_SIZE", [](const RankEnvInput& in) { return I(in.num_nodes); }},
      {"ROLE_RANK", [](const RankEnvInput& in) { return I(in.rank); }},
      {"ROLE_WORLD_SIZE", [](const RankEnvInput& in) { return I(in.world_size); }},
      {"ROLE_NAME", [](const RankEnvInput&) { return std::string("default"); }},
      {"MASTER_ADDR", [](const RankEnvInput& in) { return in.master_addr; }},
      {"MASTER_PORT", [](const RankEnvInput& in) { return I(in.master_port); }},
      {"TORCHELASTIC_RESTART_COUNT", [](const RankEnvInput& in) { return I(in.generation); }},
      {"TORCHELASTIC_MAX_RESTARTS", [](const RankEnvInput& in) { return I(in.max_restarts); }},
      {"TORCHELASTIC_RUN_ID", [](const RankEnvInput& in) { return in.job_id; }},
      {"COORD_JOB_ID", [](const RankEnvInput& in) { return in.job_id; }},
      {"COORD_RESTART_COUNT", [](const RankEnvInput& in) { return I(in.generation); }},
      {"COORD_NODE_RANK", [](const RankEnvInput& in) { return I(in.node_rank); }},
      {"COORD_JOB_TAG", [](const RankEnvInput& in) { return in.job_tag; }},
      {"COORD_PROGRESS_FD", [](const RankEnvInput&) { return I(kProgressFd); }},
      {"COORD_NODE_NAME", [](const RankEnvInput& in) { return in.node_name; }},
      {"COORD_FLIGHT_RECORD", [](const RankEnvInput& in) { return in.flight_record; }},
  };
  return kTable;
}

std::vector<std::string> BuildRankEnv(const std::vector<std::string>& base,
                                      const std::map<std::string, std::string>& job_env,
                                      const RankEnvInput& in) {
  std::vector<std::string> out;
  std::unordered_map<std::string, size_t> index;  // key -> position in out
  auto set = [&](const std::string& key, const std::string& value) {
    auto it = index.find(key);
    if (it == index.end()) {
      index.emplace(key, out.size());
      out.push_back(key + "=" + value);
    } else {
      out[it->second] = key + "=" + value;
    }
  };
  for (const auto& kv : base) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    set(kv.substr(0, eq), kv.substr(eq + 1));
  }
  for (const auto& [k, v] : job_env) set(k, v);
  for (const auto& var : RankEnvTable()) set(var.name, var.value(in));
  return out;
}

Status ValidateEnvEntry(const std::string& key, const std::string& value) {
  if (key.empty()) return InvalidArgument("env: empty variable name");
  if (key.find('=') != std::string::npos || key.find('\0') != std::string::npos) {
    return InvalidArgument("env: variable name '" + key + "' contains '=' or NUL");
  }
  if (value.find('\0') != std::string::npos) {
    return InvalidArgument("env: value of " + key + " contains NUL");
  }
  return Status::Ok();
}

std::vector<std::string> CurrentEnviron() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  return out;
}

}  // namespace coord::agent
