// JobHistory and DownsampledSeries (see job_history.h).
#include "coordinator/job_history.h"

#include <algorithm>
#include <cmath>

namespace coord::coordinator {

// --- DownsampledSeries ----------------------------------------------------------------

void DownsampledSeries::Sum::Add(int64_t t, const double* values, size_t width, int weight) {
  t_ms = t;
  n += weight;
  for (size_t i = 0; i < width; ++i) {
    if (std::isnan(values[i])) continue;
    sum[i] += values[i] * weight;
    count[i] += weight;
  }
}

DownsampledSeries::Point DownsampledSeries::Sum::Mean(size_t width) const {
  Point p;
  p.t_ms = t_ms;
  p.v.fill(std::nan(""));
  for (size_t i = 0; i < width; ++i) {
    if (count[i] > 0) p.v[i] = sum[i] / count[i];
  }
  return p;
}

DownsampledSeries::DownsampledSeries(size_t capacity, size_t width)
    : capacity_(std::max<size_t>(2, capacity & ~size_t{1})), width_(std::min(width, kMaxWidth)) {
  points_.reserve(capacity_);
}

void DownsampledSeries::Add(int64_t t_ms, const double* values) {
  ++samples_;
  pending_.Add(t_ms, values, width_, 1);
  if (pending_.n < stride_) return;
  points_.push_back(pending_.Mean(width_));
  pending_ = Sum();
  if (points_.size() >= capacity_) Compact();
}

// Pairs become one point (the later one's time, the mean of each value that either has):
// half the points, each standing for twice the samples.
void DownsampledSeries::Compact() {
  std::vector<Point> merged;
  merged.reserve(capacity_);
  for (size_t i = 0; i + 1 < points_.size(); i += 2) {
    Sum s;
    s.Add(points_[i].t_ms, points_[i].v.data(), width_, 1);
    s.Add(points_[i + 1].t_ms, points_[i + 1].v.data(), width_, 1);
    merged.push_back(s.Mean(width_));
  }
  if (points_.size() % 2 == 1) merged.push_back(points_.back());
  points_ = std::move(merged);
  stride_ *= 2;
}

std::vector<DownsampledSeries::Point> DownsampledSeries::Points() const {
  std::vector<Point> out = points_;
  if (pending_.n > 0) out.push_back(pending_.Mean(width_));
  return out;
}

// --- usage columns -------------------------------------------------------------------

std::array<double, kUsageWidth> UsageColumns(const agent::NodeUsage& now,
                                             const agent::NodeUsage* prev, int64_t dt_ms) {
  const double nan = std::nan("");
  std::array<double, kUsageWidth> c;
  c.fill(nan);
  if (prev != nullptr) {  // the CPU's share needs no clock: its own seconds say it
    const double total = now.cpu_total_s() - prev->cpu_total_s();
    const double busy = now.cpu_busy_s() - prev->cpu_busy_s();
    if (total > 0 && busy >= 0) c[0] = std::min(100.0, 100.0 * busy / total);
  }
  if (prev != nullptr && dt_ms > 0) {
    const double s = dt_ms / 1000.0;
    if (now.net_rx_bytes() >= prev->net_rx_bytes()) {
      c[3] = static_cast<double>(now.net_rx_bytes() - prev->net_rx_bytes()) / s;
    }
    if (now.net_tx_bytes() >= prev->net_tx_bytes()) {
      c[4] = static_cast<double>(now.net_tx_bytes() - prev->net_tx_bytes()) / s;
    }
  }
  if (now.mem_total_bytes() > 0) {
    c[1] = static_cast<double>(now.mem_total_bytes() -
                               std::min(now.mem_total_bytes(), now.mem_available_bytes()));
    c[2] = static_cast<double>(now.mem_total_bytes());
  }
  // GPUs: the node's mean utilisation, and its total memory and power.
  double util = 0, mem_used = 0, mem_total = 0, power = 0;
  int n_util = 0, n_power = 0;
  for (const agent::GpuUsage& g : now.gpus()) {
    if (g.util_percent() >= 0) util += g.util_percent(), ++n_util;
    if (g.power_w() >= 0) power += g.power_w(), ++n_power;
    mem_used += g.mem_used_mib();
    mem_total += g.mem_total_mib();
  }
  if (n_util > 0) c[5] = util / n_util;
  if (now.gpus_size() > 0) c[6] = mem_used, c[7] = mem_total;
  if (n_power > 0) c[8] = power;
  return c;
}

// --- JobHistory ----------------------------------------------------------------------

struct JobHistory::Record {
  explicit Record(const JobHistoryOptions& o) : progress(o.progress_points, kProgressWidth) {}
  std::vector<StateChange> states;
  int64_t states_dropped = 0;
  std::deque<CheckpointSeen> checkpoints;
  DownsampledSeries progress;
  int64_t last_iteration = -1;
  int last_generation = -1;
  std::vector<NodeHistory> nodes;
};

JobHistory::JobHistory(JobHistoryOptions options) : options_(options) {}
JobHistory::~JobHistory() = default;

JobHistory::Record& JobHistory::RecordLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) return *it->second;
  if (jobs_.size() >= std::max<size_t>(1, options_.max_jobs)) {
    jobs_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(job_id);
  return *jobs_.emplace(job_id, std::make_unique<Record>(options_)).first->second;
}

void JobHistory::OnState(const std::string& job_id, int64_t t_ms, int generation, JobState from,
                         JobState to, const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = RecordLocked(job_id);
  // Full: the first change stays (how it began), the second oldest makes room.
  if (r.states.size() >= std::max<size_t>(2, options_.max_states)) {
    r.states.erase(r.states.begin() + 1);
    ++r.states_dropped;
  }
  r.states.push_back({t_ms, generation, from, to, message.substr(0, 1024)});
}

void JobHistory::OnProgress(const std::string& job_id, int64_t t_ms, int generation,
                            int64_t iteration, double loss, double lr, double tokens_per_s) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = RecordLocked(job_id);
  // A restart may resume from an older checkpoint: the new generation's iterations count.
  if (iteration == r.last_iteration && generation == r.last_generation) return;
  r.last_iteration = iteration;
  r.last_generation = generation;
  const double v[kProgressWidth] = {static_cast<double>(iteration), loss, lr, tokens_per_s};
  r.progress.Add(t_ms, v);
}

void JobHistory::OnCheckpoint(const std::string& job_id, int64_t t_ms, int generation,
                              int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = RecordLocked(job_id);
  for (const CheckpointSeen& c : r.checkpoints) {
    if (c.iteration == iteration) return;
  }
  if (r.checkpoints.size() >= std::max<size_t>(1, options_.max_checkpoints)) {
    r.checkpoints.pop_front();
  }
  r.checkpoints.push_back({iteration, t_ms, generation});
}

void JobHistory::OnNodeUsage(const std::string& job_id, const std::string& target, int64_t t_ms,
                             const agent::NodeUsage& usage) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = RecordLocked(job_id);
  auto it = std::find_if(r.nodes.begin(), r.nodes.end(),
                         [&](const NodeHistory& n) { return n.target == target; });
  if (it == r.nodes.end()) {
    r.nodes.push_back({target, DownsampledSeries(options_.usage_points, kUsageWidth)});
    it = r.nodes.end() - 1;
  }
  NodeHistory& node = *it;
  const auto cols =
      UsageColumns(usage, node.has_last ? &node.last : nullptr, t_ms - node.last_t_ms);
  node.usage.Add(t_ms, cols.data());
  node.last = usage;
  node.last_t_ms = t_ms;
  node.has_last = true;
  node.gpus = usage.gpus_size();
}

JobHistoryView JobHistory::View(const std::string& job_id) const {
  JobHistoryView v;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return v;
  const Record& r = *it->second;
  v.known = true;
  v.states = r.states;
  v.states_dropped = r.states_dropped;
  v.checkpoints.assign(r.checkpoints.begin(), r.checkpoints.end());
  v.progress = r.progress;
  v.nodes = r.nodes;
  return v;
}

}  // namespace coord::coordinator
