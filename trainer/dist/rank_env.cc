// Rank environment discovery: one reader per launcher, tried in precedence order.
#include "trainer/dist/rank_env.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>

namespace gpt_rank::dist {
namespace {

using coord::InvalidArgument;
using coord::Status;
using coord::StatusOr;

constexpr char kLocalHost[] = "127.0.0.1";

// Decimal integer, the whole string, no sign games beyond a leading '-'.
std::optional<long long> ParseInteger(const std::string& text) {
  if (text.empty() || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9'))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// The lookup with "" treated as unset, plus typed readers whose errors all read
// `NAME="value": expected <what>` or `NAME is not set: expected <what><why>`.
class Env {
 public:
  explicit Env(const EnvLookup& lookup) : lookup_(lookup) {}

  std::optional<std::string> Get(const char* name) const {
    const char* v = lookup_(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  }
  bool Has(const char* name) const { return Get(name).has_value(); }

  // An integer in [lo, hi]; `expected` describes that range for messages.
  StatusOr<int> RequireInt(const char* name, long long lo, long long hi,
                           const std::string& expected, const std::string& why_required) const {
    std::optional<std::string> text = Get(name);
    if (!text)
      return InvalidArgument(std::string(name) + " is not set: expected " + expected +
                             why_required);
    return ParseInRange(name, *text, lo, hi, expected);
  }

  StatusOr<int> IntOr(const char* name, int fallback, long long lo, long long hi,
                      const std::string& expected) const {
    std::optional<std::string> text = Get(name);
    if (!text) return fallback;
    return ParseInRange(name, *text, lo, hi, expected);
  }

 private:
  static StatusOr<int> ParseInRange(const char* name, const std::string& text, long long lo,
                                    long long hi, const std::string& expected) {
    std::optional<long long> v = ParseInteger(text);
    if (!v || *v < lo || *v > hi) {
      return InvalidArgument(std::string(name) + "=" + Quoted(text) + ": expected " + expected);
    }
    return static_cast<int>(*v);
  }

  const EnvLookup& lookup_;
};

std::string Below(const char* name, int bound) {
  return "an integer in [0, " + std::string(name) + "=" + std::to_string(bound) + ")";
}
std::string UpTo(const char* name, int bound) {
  return "an integer in [1, " + std::string(name) + "=" + std::to_string(bound) + "]";
}
constexpr char kAtLeastOne[] = "an integer >= 1";
constexpr char kPort[] = "a port in [1, 65535]";

StatusOr<int> MasterPortOrDefault(const Env& env) {
  return env.IntOr("MASTER_PORT", kDefaultMasterPort, 1, 65535, kPort);
}

StatusOr<RankEnv> FromTorchEnv(const Env& env) {
  const std::string why = " (RANK or WORLD_SIZE is set, so torch env:// variables are read)";
  RankEnv r;
  r.source = "env://";
  ASSIGN_OR_RETURN(r.world_size, env.RequireInt("WORLD_SIZE", 1, INT_MAX, kAtLeastOne, why));
  ASSIGN_OR_RETURN(
      r.rank, env.RequireInt("RANK", 0, r.world_size - 1, Below("WORLD_SIZE", r.world_size), why));
  ASSIGN_OR_RETURN(r.local_world_size, env.IntOr("LOCAL_WORLD_SIZE", 1, 1, r.world_size,
                                                 UpTo("WORLD_SIZE", r.world_size)));
  ASSIGN_OR_RETURN(r.local_rank, env.IntOr("LOCAL_RANK", 0, 0, r.local_world_size - 1,
                                           Below("LOCAL_WORLD_SIZE", r.local_world_size)));
  ASSIGN_OR_RETURN(r.node_rank, env.IntOr("GROUP_RANK", 0, 0, r.world_size - 1,
                                          Below("WORLD_SIZE", r.world_size)));
  if (r.world_size == 1) {
    // Nobody to meet, but keep what was given (a single-rank job launched by Coord).
    r.master_addr = env.Get("MASTER_ADDR").value_or("");
    ASSIGN_OR_RETURN(r.master_port, MasterPortOrDefault(env));
    return r;
  }
  const std::string multi = " (required when WORLD_SIZE=" + std::to_string(r.world_size) + " > 1)";
  std::optional<std::string> addr = env.Get("MASTER_ADDR");
  if (!addr) return InvalidArgument("MASTER_ADDR is not set: expected the host of rank 0" + multi);
  r.master_addr = *addr;
  ASSIGN_OR_RETURN(r.master_port, env.RequireInt("MASTER_PORT", 1, 65535, kPort, multi));
  return r;
}

StatusOr<RankEnv> FromOpenMpi(const Env& env) {
  const std::string why = " (OMPI_COMM_WORLD_RANK is set, so Open MPI variables are read)";
  RankEnv r;
  r.source = "openmpi";
  ASSIGN_OR_RETURN(r.world_size,
                   env.RequireInt("OMPI_COMM_WORLD_SIZE", 1, INT_MAX, kAtLeastOne, why));
  ASSIGN_OR_RETURN(r.rank, env.RequireInt("OMPI_COMM_WORLD_RANK", 0, r.world_size - 1,
                                          Below("OMPI_COMM_WORLD_SIZE", r.world_size), why));
  ASSIGN_OR_RETURN(r.local_world_size,
                   env.RequireInt("OMPI_COMM_WORLD_LOCAL_SIZE", 1, r.world_size,
                                  UpTo("OMPI_COMM_WORLD_SIZE", r.world_size), why));
  ASSIGN_OR_RETURN(r.local_rank,
                   env.RequireInt("OMPI_COMM_WORLD_LOCAL_RANK", 0, r.local_world_size - 1,
                                  Below("OMPI_COMM_WORLD_LOCAL_SIZE", r.local_world_size), why));
  // See the header: Open MPI exports no node index, so assume by-slot mapping.
  r.node_rank = r.rank / r.local_world_size;
  if (std::optional<std::string> addr = env.Get("MASTER_ADDR")) {
    r.master_addr = *addr;
  } else if (r.local_world_size == r.world_size) {
    r.master_addr = kLocalHost;
  } else {
    return InvalidArgument("MASTER_ADDR is not set and the " + std::to_string(r.world_size) +
                           " ranks span several nodes (OMPI_COMM_WORLD_LOCAL_SIZE=" +
                           std::to_string(r.local_world_size) +
                           " < OMPI_COMM_WORLD_SIZE=" + std::to_string(r.world_size) +
                           "): expected mpirun -x MASTER_ADDR=<host of rank 0>");
  }
  ASSIGN_OR_RETURN(r.master_port, MasterPortOrDefault(env));
  return r;
}

// This node's task count from SLURM_TASKS_PER_NODE, e.g. "4(x2),3": nodes 0-1 run 4, node 2 runs 3.
StatusOr<int> SlurmTasksOnNode(const std::string& text, int node_rank, int world_size) {
  const char* name = "SLURM_TASKS_PER_NODE";
  Status malformed = InvalidArgument(std::string(name) + "=" + Quoted(text) +
                                     ": expected task counts per node like \"4(x2),3\"");
  if (text.empty() || text.back() == ',') return malformed;
  long long first_node = 0;  // index of the first node the current item covers
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    pos = end + 1;
    std::string count_text = item;
    long long repeat = 1;
    size_t paren = item.find('(');
    if (paren != std::string::npos) {
      if (item.size() < paren + 4 || item.compare(paren, 2, "(x") != 0 || item.back() != ')')
        return malformed;
      std::optional<long long> n = ParseInteger(item.substr(paren + 2, item.size() - paren - 3));
      if (!n || *n < 1) return malformed;
      repeat = *n;
      count_text = item.substr(0, paren);
    }
    std::optional<long long> count = ParseInteger(count_text);
    if (!count || *count < 1) return malformed;
    if (node_rank < first_node + repeat) {
      if (*count > world_size) {
        return InvalidArgument(
            std::string(name) + "=" + Quoted(text) + ": node " + std::to_string(node_rank) +
            " runs " + std::to_string(*count) +
            " tasks, expected at most SLURM_NTASKS=" + std::to_string(world_size));
      }
      return static_cast<int>(*count);
    }
    first_node += repeat;
  }
  return InvalidArgument(std::string(name) + "=" + Quoted(text) + ": lists " +
                         std::to_string(first_node) +
                         " nodes, expected an entry for SLURM_NODEID=" + std::to_string(node_rank));
}

StatusOr<RankEnv> FromSlurm(const Env& env) {
  const std::string why = " (SLURM_PROCID is set, so Slurm variables are read)";
  RankEnv r;
  r.source = "slurm";
  ASSIGN_OR_RETURN(r.world_size, env.RequireInt("SLURM_NTASKS", 1, INT_MAX, kAtLeastOne, why));
  ASSIGN_OR_RETURN(r.rank, env.RequireInt("SLURM_PROCID", 0, r.world_size - 1,
                                          Below("SLURM_NTASKS", r.world_size), why));
  ASSIGN_OR_RETURN(r.node_rank, env.IntOr("SLURM_NODEID", 0, 0, r.world_size - 1,
                                          Below("SLURM_NTASKS", r.world_size)));
  const char* local_size_name = "SLURM_NTASKS_PER_NODE";
  if (env.Has("SLURM_NTASKS_PER_NODE")) {
    ASSIGN_OR_RETURN(r.local_world_size, env.RequireInt("SLURM_NTASKS_PER_NODE", 1, r.world_size,
                                                        UpTo("SLURM_NTASKS", r.world_size), why));
  } else if (std::optional<std::string> per_node = env.Get("SLURM_TASKS_PER_NODE")) {
    local_size_name = "SLURM_TASKS_PER_NODE";
    ASSIGN_OR_RETURN(r.local_world_size, SlurmTasksOnNode(*per_node, r.node_rank, r.world_size));
  } else {
    return InvalidArgument(
        "SLURM_NTASKS_PER_NODE and SLURM_TASKS_PER_NODE are not set: expected one of them"
        " to give the number of tasks on this node" +
        why);
  }
  ASSIGN_OR_RETURN(r.local_rank, env.RequireInt("SLURM_LOCALID", 0, r.local_world_size - 1,
                                                Below(local_size_name, r.local_world_size), why));

  if (std::optional<std::string> addr = env.Get("MASTER_ADDR")) {
    r.master_addr = *addr;
  } else {
    const char* list_name = env.Has("SLURM_JOB_NODELIST") ? "SLURM_JOB_NODELIST" : "SLURM_NODELIST";
    if (std::optional<std::string> nodelist = env.Get(list_name)) {
      r.master_addr = FirstSlurmHost(*nodelist);
      if (r.master_addr.empty()) {
        return InvalidArgument(std::string(list_name) + "=" + Quoted(*nodelist) +
                               ": expected a Slurm node list like \"gpu[07-09,12],cpu1\"");
      }
    } else if (r.local_world_size == r.world_size) {
      r.master_addr = kLocalHost;
    } else {
      return InvalidArgument(
          "MASTER_ADDR, SLURM_JOB_NODELIST and SLURM_NODELIST are not set: expected one of"
          " them to name the host of rank 0");
    }
  }
  ASSIGN_OR_RETURN(r.master_port, MasterPortOrDefault(env));
  return r;
}

}  // namespace

StatusOr<RankEnv> DiscoverRankEnv(const EnvLookup& lookup) {
  Env env(lookup);
  RankEnv r;
  if (env.Has("RANK") || env.Has("WORLD_SIZE")) {
    ASSIGN_OR_RETURN(r, FromTorchEnv(env));
  } else if (env.Has("OMPI_COMM_WORLD_RANK")) {
    ASSIGN_OR_RETURN(r, FromOpenMpi(env));
  } else if (env.Has("SLURM_PROCID")) {
    ASSIGN_OR_RETURN(r, FromSlurm(env));
  } else {
    r.source = "single";
  }
  r.run_id = env.Get("TORCHELASTIC_RUN_ID").value_or("");
  ASSIGN_OR_RETURN(r.restart_count,
                   env.IntOr("TORCHELASTIC_RESTART_COUNT", 0, 0, INT_MAX, "an integer >= 0"));
  return r;
}

StatusOr<RankEnv> DiscoverRankEnv() {
  return DiscoverRankEnv([](const char* name) -> const char* { return std::getenv(name); });
}

std::string FirstSlurmHost(const std::string& nodelist) {
  // The first entry ends at the first comma outside brackets.
  std::string entry;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0 || depth > 1) return "";
    if (c == ',' && depth == 0) break;
    entry += c;
  }
  if (depth != 0) return "";
  // Each "[a-b,c]" becomes its first number as written, so "07" keeps its padding.
  std::string host;
  for (size_t i = 0; i < entry.size(); ++i) {
    if (entry[i] != '[') {
      host += entry[i];
      continue;
    }
    size_t close = entry.find(']', i);
    std::string first = entry.substr(i + 1, entry.find_first_of(",-]", i + 1) - i - 1);
    if (first.empty()) return "";
    host += first;
    i = close;
  }
  return host;
}

}  // namespace gpt_rank::dist
