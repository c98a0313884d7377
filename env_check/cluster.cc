#include "env_check/cluster.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "env_check/checks/result.h"
#include "env_check/report.h"

namespace coord::env_check {
namespace {

// Facts that must be the same on every node, one row each.
struct SameFact {
  const char* fact;  // as the node checks record it
  const char* id;    // the cluster row
  const char* what;
  Severity severity;
  const char* hint;
};

constexpr SameFact kSameFacts[] = {
    {"program_digest", "same_job_program", "the job's program (digest)", Severity::kFail,
     "ranks built differently disagree on tensor layouts and collectives; install one build "
     "everywhere (or run it from the shared mount)"},
    {"driver_version", "same_gpu_driver", "GPU driver version", Severity::kWarn,
     "mixed drivers cause NCCL hangs and uneven speed; install the same driver on every node"},
    {"cuda_driver_version", "same_cuda_driver", "CUDA driver API version", Severity::kWarn,
     "upgrade the odd node's driver package to the cluster's"},
    {"cuda_runtime_version", "same_cuda_runtime", "CUDA runtime version", Severity::kFail,
     "install the same CUDA toolkit on every node"},
    {"nccl_version", "same_nccl", "NCCL version", Severity::kFail,
     "NCCL's wire protocol changes between versions; install the same libnccl2 everywhere"},
    {"openmpi_version", "same_openmpi", "Open MPI version", Severity::kFail,
     "mpirun across versions fails at wire-up; install the same openmpi-bin everywhere"},
};

std::string Fact(const NodeReport& n, const std::string& key) {
  for (const CheckResult& r : n.results) {
    for (const auto& [k, v] : r.facts) {
      if (k == key) return v;
    }
  }
  return "";
}

// "a, b, c" (at most `limit` names, then "and N more").
std::string NameList(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += " and " + std::to_string(names.size() - limit) + " more";
  return out;
}

std::string Nodes(size_t n) { return std::to_string(n) + (n == 1 ? " node" : " nodes"); }

CheckResult CompareFact(const SameFact& f, const std::vector<const NodeReport*>& nodes) {
  // value -> nodes having it; nodes without the fact count only when some have it.
  std::map<std::string, std::vector<std::string>> by_value;
  for (const NodeReport* n : nodes) by_value[Fact(*n, f.fact)].push_back(n->name);
  CheckResult r = Result(f.id, true, f.severity, "", std::string("the same ") + f.what + " on every node",
                         f.hint);
  if (by_value.empty() || (by_value.size() == 1 && by_value.begin()->first.empty())) {
    r.severity = Severity::kInfo;
    r.found = "not reported by any node";
    return r;
  }
  // The majority value is the cluster's; ties go to the value that sorts first, so
  // the answer does not depend on node order.
  auto majority = by_value.begin();
  for (auto it = by_value.begin(); it != by_value.end(); ++it) {
    if (it->second.size() > majority->second.size() ||
        (it->second.size() == majority->second.size() && majority->first.empty()))
      majority = it;
  }
  auto shown = [](const std::string& v) { return v.empty() ? std::string("(none)") : v; };
  if (by_value.size() == 1) {
    const size_t k = majority->second.size();
    r.found = shown(majority->first) +
              (k == 1 ? " on the only node" : k == 2 ? " on both nodes" : " on all " + Nodes(k));
    return r;
  }
  r.passed = false;
  std::vector<std::string> odd;
  for (const auto& [value, names] : by_value) {
    if (&names == &majority->second) continue;
    r.found += (r.found.empty() ? "" : "; ") + shown(value) + " on " + NameList(names);
    odd.insert(odd.end(), names.begin(), names.end());
  }
  r.found += "; " + shown(majority->first) + " on the other " + Nodes(majority->second.size());
  r.facts.push_back({"odd_nodes", NameList(odd, odd.size())});
  r.facts.push_back({"cluster_value", majority->first});
  return r;
}

CheckResult ClockOffsets(const std::vector<const NodeReport*>& nodes, int64_t max_offset_ms) {
  CheckResult r = Result("clock_offset", true, Severity::kWarn, "",
                         "every node within " + std::to_string(max_offset_ms) +
                             " ms of the coordinator",
                         "logs, checkpoint times and certificate validity need agreeing clocks; "
                         "run chrony or systemd-timesyncd on every node");
  int64_t worst = 0;
  std::vector<std::string> off;
  int measured = 0;
  for (const NodeReport* n : nodes) {
    if (!n->clock_offset_ms) continue;
    ++measured;
    int64_t o = *n->clock_offset_ms;
    worst = std::max<int64_t>(worst, std::llabs(o));
    if (std::llabs(o) - n->clock_uncertainty_ms > max_offset_ms)
      off.push_back(n->name + " (" + (o > 0 ? "+" : "") + std::to_string(o) + " ms)");
  }
  if (measured == 0) {
    r.severity = Severity::kInfo;
    r.found = "not measured";
    return r;
  }
  r.passed = off.empty();
  r.found = off.empty() ? "largest offset " + std::to_string(worst) + " ms over " + Nodes(measured)
                        : "off by more than " + std::to_string(max_offset_ms) + " ms: " +
                              NameList(off);
  if (!off.empty()) r.facts.push_back({"odd_nodes", NameList(off, off.size())});
  return r;
}

std::string Pad(std::string s, size_t w) {
  s.resize(std::max(s.size(), w), ' ');
  return s;
}

std::string Cell(const CheckResult* r) {
  if (!r) return "-";
  return r->passed ? "ok" : SeverityName(r->severity);
}

const CheckResult* FindResult(const NodeReport& n, const std::string& id) {
  for (const CheckResult& r : n.results) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

}  // namespace

void AddSharedPathResults(const TokenExchange& t, std::vector<NodeReport>* nodes) {
  const size_t n = nodes->size();
  // Two nodes share the filesystem when each reads the other's token. The largest
  // group of nodes that all share it with each other is the cluster's shared path.
  auto mutual = [&](size_t a, size_t b) { return t.seen[a][b] && t.seen[b][a]; };
  std::vector<size_t> best;
  std::vector<bool> grouped(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (grouped[i] || !(*nodes)[i].reachable || !t.write_error[i].empty() ||
        !t.read_error[i].empty())
      continue;
    std::vector<size_t> group = {i};
    for (size_t j = i + 1; j < n; ++j) {
      if (grouped[j] || !(*nodes)[j].reachable) continue;
      bool all = true;
      for (size_t g : group) all = all && mutual(g, j);
      if (all) group.push_back(j);
    }
    for (size_t g : group) grouped[g] = true;
    if (group.size() > best.size()) best = group;
  }
  std::vector<std::string> best_names;
  for (size_t g : best) best_names.push_back((*nodes)[g].name);
  for (size_t i = 0; i < n; ++i) {
    NodeReport& node = (*nodes)[i];
    if (!node.reachable) continue;
    CheckResult r = Result("shared_path_same_fs", false, Severity::kFail, "",
                           "the same filesystem at " + t.shared_path + " as the other nodes",
                           "");
    if (!t.write_error[i].empty()) {
      r.found = "could not write its token: " + t.write_error[i];
      r.hint = "the job's user must be able to write " + t.shared_path + " on this node";
    } else if (!t.read_error[i].empty()) {
      r.found = "could not read the tokens: " + t.read_error[i];
      r.hint = "check " + t.shared_path + " on this node (`ls " + t.shared_path + "`)";
    } else if (std::find(best.begin(), best.end(), i) != best.end()) {
      r.passed = true;
      r.found = "sees the tokens of all " + Nodes(best.size()) + " sharing " + t.shared_path;
    } else {
      std::vector<std::string> sees;
      for (size_t j = 0; j < n; ++j) {
        if (j != i && t.seen[i][j]) sees.push_back((*nodes)[j].name);
      }
      r.found = t.shared_path + " here is not the filesystem the other nodes share: it " +
                (sees.empty() ? "sees no other node's token" : "sees only " + NameList(sees)) +
                ", and none of " + NameList(best_names, 3) + " sees its token";
      r.hint = "mount the shared export at " + t.shared_path +
               " on this node (a local directory at the same path is not shared); compare "
               "`findmnt " + t.shared_path + "` with a good node";
    }
    node.results.push_back(std::move(r));
  }
}

std::vector<CheckResult> CompareNodes(const std::vector<NodeReport>& nodes,
                                      int64_t max_clock_offset_ms) {
  std::vector<const NodeReport*> up;
  for (const NodeReport& n : nodes) {
    if (n.reachable) up.push_back(&n);
  }
  std::vector<CheckResult> rows;
  for (const SameFact& f : kSameFacts) rows.push_back(CompareFact(f, up));
  rows.push_back(ClockOffsets(up, max_clock_offset_ms));
  return rows;
}

int ClusterExitCode(const ClusterReport& report) {
  int code = ExitCode(report.cluster);
  for (const NodeReport& n : report.nodes) {
    if (!n.reachable) return 2;
    code = std::max(code, ExitCode(n.results));
  }
  return code;
}

std::string FormatClusterReport(const ClusterReport& report) {
  // Rows: every check id in the order the nodes report them.
  std::vector<std::string> ids;
  for (const NodeReport& n : report.nodes) {
    for (const CheckResult& r : n.results) {
      if (std::find(ids.begin(), ids.end(), r.id) == ids.end()) ids.push_back(r.id);
    }
  }
  size_t id_width = 8;
  for (const std::string& id : ids) id_width = std::max(id_width, id.size() + 2);
  for (const CheckResult& r : report.cluster) id_width = std::max(id_width, r.id.size() + 2);

  std::string out;
  constexpr size_t kMatrixNodes = 8;
  const bool matrix = report.nodes.size() <= kMatrixNodes;
  if (matrix) {
    std::vector<size_t> widths;
    out += Pad("CHECK", id_width);
    for (const NodeReport& n : report.nodes) {
      widths.push_back(std::max<size_t>(n.name.size() + 2, 6));
      out += Pad(n.name, widths.back());
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
    for (const std::string& id : ids) {
      std::string line = Pad(id, id_width);
      for (size_t k = 0; k < report.nodes.size(); ++k) {
        const NodeReport& n = report.nodes[k];
        line += Pad(n.reachable ? Cell(FindResult(n, id)) : "-", widths[k]);
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    std::string reach = Pad("(reachable)", id_width);
    for (size_t k = 0; k < report.nodes.size(); ++k)
      reach += Pad(report.nodes[k].reachable ? "yes" : "NO", widths[k]);
    while (!reach.empty() && reach.back() == ' ') reach.pop_back();
    out += reach + "\n";
  } else {
    // Too many nodes for columns: per check, which nodes miss it.
    out += Pad("CHECK", id_width) + "NODES (" + std::to_string(report.nodes.size()) + ")\n";
    for (const std::string& id : ids) {
      std::map<std::string, std::vector<std::string>> by_cell;
      for (const NodeReport& n : report.nodes) {
        if (n.reachable) by_cell[Cell(FindResult(n, id))].push_back(n.name);
      }
      std::string summary;
      for (const char* cell : {"FAIL", "WARN", "INFO", "-", "ok"}) {
        auto it = by_cell.find(cell);
        if (it == by_cell.end()) continue;
        std::string part = std::string(cell) + " ";
        part += std::string(cell) == "ok" ? "on " + Nodes(it->second.size())
                                          : NameList(it->second, 4);
        summary += (summary.empty() ? "" : "; ") + part;
      }
      out += Pad(id, id_width) + summary + "\n";
    }
    std::vector<std::string> down;
    for (const NodeReport& n : report.nodes) {
      if (!n.reachable) down.push_back(n.name);
    }
    if (!down.empty()) out += Pad("(reachable)", id_width) + "NO: " + NameList(down) + "\n";
  }

  if (!report.cluster.empty()) {
    out += "\n";
    for (const CheckResult& r : report.cluster)
      out += Pad(r.id, id_width) + Pad(Cell(&r), 6) + r.found + "\n";
  }

  // Problems: unreachable nodes, then each miss, identical ones folded together.
  std::string problems;
  for (const NodeReport& n : report.nodes) {
    if (!n.reachable) problems += "FAIL  " + n.name + ": unreachable: " + n.error + "\n";
  }
  struct Miss {
    const CheckResult* result;
    std::vector<std::string> nodes;
  };
  std::vector<Miss> misses;
  for (const NodeReport& n : report.nodes) {
    for (const CheckResult& r : n.results) {
      if (r.passed) continue;
      auto same = std::find_if(misses.begin(), misses.end(), [&](const Miss& m) {
        return m.result->id == r.id && m.result->found == r.found && m.result->hint == r.hint &&
               m.result->severity == r.severity;
      });
      if (same != misses.end())
        same->nodes.push_back(n.name);
      else
        misses.push_back({&r, {n.name}});
    }
  }
  for (const CheckResult& r : report.cluster) {
    if (!r.passed) misses.push_back({&r, {"cluster"}});
  }
  std::stable_sort(misses.begin(), misses.end(), [](const Miss& a, const Miss& b) {
    return a.result->severity > b.result->severity;
  });
  for (const Miss& m : misses) {
    const CheckResult& r = *m.result;
    problems += Pad(SeverityName(r.severity), 6) + r.id + " on " + NameList(m.nodes) + ": " +
                r.found + "\n";
    if (!r.expected.empty()) problems += "      expected: " + r.expected + "\n";
    if (!r.hint.empty()) problems += "      fix:      " + r.hint + "\n";
  }
  if (!problems.empty()) out += "\n" + problems;
  return out;
}

nlohmann::json ClusterReportToJson(const ClusterReport& report) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodeReport& n : report.nodes) {
    nlohmann::json j = {{"name", n.name},
                        {"reachable", n.reachable},
                        {"error", n.error},
                        {"hostname", n.hostname},
                        {"checks", ToJson(n.results)}};
    j["clock_offset_ms"] = n.clock_offset_ms ? nlohmann::json(*n.clock_offset_ms) : nullptr;
    nodes.push_back(std::move(j));
  }
  return {{"nodes", nodes},
          {"cluster", ToJson(report.cluster)},
          {"exit_code", ClusterExitCode(report)}};
}

}  // namespace coord::env_check
