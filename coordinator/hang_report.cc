// The hang report's words (hang_report.h).
#include "coordinator/hang_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace coord::coordinator {

namespace agent = coord::agent;

namespace {

constexpr size_t kMaxNodesNamed = 3;

std::string Seconds(int64_t ms) {
  char buf[32];
  if (ms < 10000) {
    std::snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld s", static_cast<long long>(ms / 1000));
  }
  return buf;
}

// "all_reduce #12 (dp, 1.2 MiB)", "recv #40 (pp, from stage 2, 128.0 KiB)": a peer is
// a rank of the group, which for the pipeline group is the stage.
std::string Collective(const agent::CollectiveRecord& c) {
  std::string s = c.op() + " #" + std::to_string(c.seq()) + " (" + c.group();
  if (c.peer() >= 0) {
    const bool p2p = c.op() == "send" || c.op() == "recv" || c.op() == "send/recv";
    const char* word = c.op() == "send" ? "to" : c.op() == "recv" ? "from" : "with";
    const std::string who = (c.group() == "pp" ? "stage " : "rank ") + std::to_string(c.peer());
    s += p2p ? std::string(", ") + word + " " + who : ", root " + std::to_string(c.peer());
  }
  return s + ", " + FormatBytes(c.bytes()) + ")";
}

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

std::string RankRanges(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(ranks[i]);
    if (j > i) out += (j == i + 1 ? ", " : "-") + std::to_string(ranks[j]);
    i = j + 1;
  }
  return out;
}

RankPlace DescribeRank(const agent::RankSnapshot& s) {
  RankPlace p;
  if (s.process_state() == "stopped" || s.process_state() == "traced" ||
      s.process_state() == "zombie" || s.process_state() == "disk sleep") {
    p.where = "(" + s.process_state() + ") ";
  }
  if (!s.error().empty()) {
    p.where += "without a flight record";
    return p;
  }
  // The newest collective still in flight, else the newest finished one.
  const agent::CollectiveRecord* in_flight = nullptr;
  const agent::CollectiveRecord* last = nullptr;
  for (const agent::CollectiveRecord& c : s.recent()) {
    (c.finished_ms() == 0 ? in_flight : last) = &c;
  }
  if (in_flight != nullptr) {
    p.where += "in " + Collective(*in_flight);
    if (in_flight->started_ms() > 0 && s.time_ms() >= in_flight->started_ms()) {
      p.for_ms = s.time_ms() - in_flight->started_ms();
    }
    // The training loop's phase around it: a gradient bucket during backward, a
    // pipeline receive during forward, ZeRO's gathers in the optimizer.
    if (!s.phase().empty() && s.phase() != "unknown") p.then = ", in " + s.phase();
    return p;
  }
  p.where += "in " + (s.phase().empty() ? std::string("unknown") : s.phase());
  if (s.micro_batch() >= 0) p.where += " (micro-batch " + std::to_string(s.micro_batch()) + ")";
  if (s.phase_ms() > 0) p.for_ms = s.phase_ms();
  if (last != nullptr) p.then = ", after " + last->op() + " #" + std::to_string(last->seq());
  return p;
}

std::string RankPlace::Text() const {
  return where + (for_ms >= 0 ? " for " + Seconds(for_ms) : std::string()) + then;
}

std::string SummarizeHang(const std::vector<NodeSnapshots>& nodes) {
  struct Group {
    std::vector<int> ranks;
    std::vector<std::string> nodes;  // in order of first appearance
    RankPlace place;                 // the longest time any of them has been there
  };
  std::map<std::string, Group> by_place;
  std::vector<std::string> silent;  // "node X (why)"
  std::vector<int> silent_ranks;
  bool any = false;
  for (const NodeSnapshots& n : nodes) {
    if (!n.status.ok()) {
      silent.push_back(n.name + " (" + n.status.message() + ")");
      silent_ranks.insert(silent_ranks.end(), n.ranks.begin(), n.ranks.end());
      continue;
    }
    any = true;
    for (const agent::RankSnapshot& s : n.reply.ranks()) {
      const RankPlace place = DescribeRank(s);
      Group& g = by_place[place.Key()];
      if (g.ranks.empty() || place.for_ms > g.place.for_ms) g.place = place;
      g.ranks.push_back(s.rank());
      if (std::find(g.nodes.begin(), g.nodes.end(), n.name) == g.nodes.end()) {
        g.nodes.push_back(n.name);
      }
    }
  }
  if (!any) return "";
  std::vector<std::pair<std::string, Group>> groups(by_place.begin(), by_place.end());
  std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
    return *std::min_element(a.second.ranks.begin(), a.second.ranks.end()) <
           *std::min_element(b.second.ranks.begin(), b.second.ranks.end());
  });
  std::string out;
  for (const auto& [where, g] : groups) {
    if (!out.empty()) out += "; ";
    out += (g.ranks.size() == 1 ? "rank " : "ranks ") + RankRanges(g.ranks) + " " + g.place.Text();
    out += g.nodes.size() == 1 ? " on node " : " on nodes ";
    for (size_t i = 0; i < g.nodes.size() && i < kMaxNodesNamed; ++i) {
      out += (i == 0 ? "" : ", ") + g.nodes[i];
    }
    if (g.nodes.size() > kMaxNodesNamed) {
      out += " and " + std::to_string(g.nodes.size() - kMaxNodesNamed) + " more";
    }
  }
  for (size_t i = 0; i < silent.size(); ++i) {
    out += (i == 0 ? "; no answer from " : ", ") + silent[i];
  }
  if (!silent_ranks.empty()) out += " (ranks " + RankRanges(silent_ranks) + ")";
  return out;
}

}  // namespace coord::coordinator
