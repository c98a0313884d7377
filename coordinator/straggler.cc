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

void StragglerDetector::Update(int64_t now_ms) {
  scores_.clear();
  for (const auto& [rank, w] : ranks_) {
    RankScore s;
    s.rank = rank;
    s.stage = w.stage;
    s.samples = static_cast<int>(w.samples.size());
    s.iteration = w.samples.empty() ? -1 : w.samples.back().iteration;
    std::vector<double> step, compute, wait, data, opt;
    for (const Sample& x : w.samples) {
      step.push_back(x.step_ms);
      compute.push_back(x.compute_ms);
      wait.push_back(x.wait_ms);
      data.push_back(x.data_ms);
      opt.push_back(x.optimizer_ms);
    }
    s.step_ms = Median(step);
    s.compute_ms = Median(compute);
    s.wait_ms = Median(wait);
    s.data_ms = Median(data);
    s.optimizer_ms = Median(opt);
    scores_.push_back(s);
  }
  // Each rank against the other scored ranks of its stage.
  for (RankScore& s : scores_) {
    if (s.samples < options_.min_samples) continue;
    std::vector<double> peers;
    for (const RankScore& p : scores_) {
      if (p.rank != s.rank && p.stage == s.stage && p.samples >= options_.min_samples) {
        peers.push_back(p.compute_ms);
      }
    }
    if (peers.empty()) continue;
    s.peers_compute_ms = Median(peers);
    if (s.peers_compute_ms > 0) s.score = s.compute_ms / s.peers_compute_ms;
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
    if (!keep && !(s.score > options_.threshold)) continue;
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
