// Straggler scores (straggler.h).
#include "coordinator/straggler.h"

#include <algorithm>
#include <cmath>

namespace coord::coordinator {

namespace {

constexpr double kMaxMs = 1e9;

bool Valid(double ms) { return std::isfinite(ms) && ms >= 0 && ms <= kMaxMs; }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
  return (lo + hi) / 2;
}

}  // namespace

StragglerDetector::StragglerDetector(const StragglerOptions& options) : options_(options) {
  options_.window = std::max(1, options_.window);
  options_.min_samples = std::clamp(options_.min_samples, 1, options_.window);
  options_.confirm = std::max(0, options_.confirm);
}

void StragglerDetector::Reset() {
  ranks_.clear();
  scores_.clear();
  named_.clear();
}

bool StragglerDetector::Add(int rank, int stage, const coord::agent::IterationTiming& t) {
  const bool ok = rank >= 0 && Valid(t.time_ms()) && Valid(t.compute_ms()) &&
                  Valid(t.wait_ms()) && Valid(t.data_ms()) && Valid(t.optimizer_ms());
  if (!ok) {
    ++ignored_;
    return false;
  }
  RankWindow& w = ranks_[rank];
  if (!w.samples.empty() && t.iteration() <= w.samples.back().iteration) {
    ++ignored_;
    return false;
  }
  w.stage = std::max(0, stage);
  w.samples.push_back({t.iteration(), t.time_ms(), t.compute_ms(), t.wait_ms(), t.data_ms(),
                       t.optimizer_ms()});
  while (static_cast<int>(w.samples.size()) > options_.window) w.samples.pop_front();
  return true;
}

namespace {

// The median of `sorted` without its element at index `skip`.
double MedianWithout(const std::vector<double>& sorted, size_t skip) {
  const size_t m = sorted.size() - 1;
  const auto at = [&](size_t i) { return sorted[i < skip ? i : i + 1]; };
  if (m == 0) return 0;
  return m % 2 == 1 ? at(m / 2) : (at(m / 2 - 1) + at(m / 2)) / 2;
}

}  // namespace

void StragglerDetector::Update(int64_t now_ms) {
  scores_.clear();
  // Each iteration's compute times by stage, sorted: a rank's peers at that iteration
  // are the others in its stage's list.
  std::map<std::pair<int, int64_t>, std::vector<double>> by_iteration;
  for (const auto& [rank, w] : ranks_) {
    for (const Sample& x : w.samples) by_iteration[{w.stage, x.iteration}].push_back(x.compute_ms);
  }
  for (auto& [key, v] : by_iteration) std::sort(v.begin(), v.end());
  for (const auto& [rank, w] : ranks_) {
    RankScore s;
    s.rank = rank;
    s.stage = w.stage;
    s.samples = static_cast<int>(w.samples.size());
    s.iteration = w.samples.empty() ? -1 : w.samples.back().iteration;
    std::vector<double> step, compute, wait, data, opt, ratios, peers;
    for (const Sample& x : w.samples) {
      step.push_back(x.step_ms);
      compute.push_back(x.compute_ms);
      wait.push_back(x.wait_ms);
      data.push_back(x.data_ms);
      opt.push_back(x.optimizer_ms);
      // This iteration against the same iteration of its peers: what every rank of the
      // iteration shared (a slow start, a checkpoint, a busy machine) cancels out.
      const std::vector<double>& all = by_iteration[{w.stage, x.iteration}];
      if (all.size() < 2) continue;
      const size_t self = static_cast<size_t>(
          std::lower_bound(all.begin(), all.end(), x.compute_ms) - all.begin());
      const double peer = MedianWithout(all, self);
      peers.push_back(peer);
      if (peer > 0) ratios.push_back(x.compute_ms / peer);
    }
    s.step_ms = Median(step);
    s.compute_ms = Median(compute);
    s.wait_ms = Median(wait);
    s.data_ms = Median(data);
    s.optimizer_ms = Median(opt);
    s.peers_compute_ms = Median(peers);
    if (static_cast<int>(ratios.size()) >= options_.min_samples) s.score = Median(ratios);
    scores_.push_back(s);
  }
  if (options_.threshold <= 0) {
    named_.clear();
    return;
  }
  std::vector<StragglerRecord> named;
  for (const RankScore& s : scores_) {
    auto was = std::find_if(named_.begin(), named_.end(),
                            [&](const StragglerRecord& n) { return n.rank == s.rank; });
    const bool keep = was != named_.end() && s.score >= options_.clear_threshold;
    int64_t& above_since = ranks_.at(s.rank).above_since;
    if (!(s.score > options_.threshold)) {
      above_since = -1;
    } else if (above_since < 0) {
      above_since = s.iteration;
    }
    const bool confirmed = above_since >= 0 && s.iteration - above_since >= options_.confirm;
    if (!keep && !confirmed) continue;
    StragglerRecord r = keep ? *was : StragglerRecord{};
    if (!keep) {
      r.rank = s.rank;
      r.since_iteration = s.iteration;
      r.since_ms = now_ms;
    }
    r.score = s.score;
    r.compute_ms = s.compute_ms;
    r.peers_compute_ms = s.peers_compute_ms;
    named.push_back(r);
  }
  named_ = std::move(named);
}

}  // namespace coord::coordinator
