// JobHistory: what the status page draws over a job's life and `coordctl status` does not
// keep: its state changes, rank 0's progress curve (iteration, loss, lr, tokens/s), the
// checkpoints seen, and each node's resource use (from the agents' heartbeats). Memory is
// bounded whatever the job's length: every series is a DownsampledSeries (a fixed number
// of points; a long job's curve gets coarser, never longer), the state list and the
// checkpoint list are capped, and only the newest kMaxJobs jobs are kept. In memory only:
// a restarted coordd starts the curves afresh (the journal keeps states and failures).
// Thread-safe (one leaf mutex); JobManager feeds it under its own mu_ (lock order
// JobManager::mu_ -> JobHistory::mu_), the HTTP handlers read copies.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "proto/agent.pb.h"
#include "proto/coordinator.pb.h"

namespace coord::coordinator {

// ---------------------------------------------------------------------------------------
// A bounded series of points of up to kMaxWidth values (NaN: none). Once `capacity`
// points are held, neighbouring pairs are merged (their mean) and each later point
// averages twice as many samples as before (stride), so the whole life of a job fits.
class DownsampledSeries {
 public:
  static constexpr size_t kMaxWidth = 10;
  struct Point {
    int64_t t_ms = 0;
    std::array<double, kMaxWidth> v{};
  };
  // capacity >= 2 (even); width <= kMaxWidth.
  DownsampledSeries(size_t capacity, size_t width);
  void Add(int64_t t_ms, const double* values);  // `width` values
  // The merged points, then the samples not yet making up a whole point (averaged).
  std::vector<Point> Points() const;
  size_t width() const { return width_; }
  int stride() const { return stride_; }  // samples per point now
  int64_t samples() const { return samples_; }

 private:
  struct Sum {
    int64_t t_ms = 0;  // the newest sample's time
    int n = 0;
    std::array<double, kMaxWidth> sum{};
    std::array<int, kMaxWidth> count{};
    void Add(int64_t t, const double* values, size_t width, int weight);
    Point Mean(size_t width) const;
  };
  void Compact();

  size_t capacity_;
  size_t width_;
  int stride_ = 1;
  int64_t samples_ = 0;
  std::vector<Point> points_;
  Sum pending_;  // samples of the next point (fewer than stride_)
};

// ---------------------------------------------------------------------------------------

struct StateChange {
  int64_t t_ms = 0;
  int generation = 0;
  JobState from = JOB_STATE_UNKNOWN;
  JobState to = JOB_STATE_UNKNOWN;
  std::string message;
};

struct CheckpointSeen {
  int64_t iteration = 0;
  int64_t t_ms = 0;  // when the ranks first reported it (coordd's clock)
  int generation = 0;
};

// One node's resource columns (kUsageColumns), derived from two successive heartbeat
// samples (rates) or one (levels).
inline constexpr const char* kUsageColumns[] = {
    "cpu_percent",        "mem_used_bytes",     "mem_total_bytes",
    "net_rx_bytes_per_s", "net_tx_bytes_per_s", "gpu_util_percent",
    "gpu_mem_used_mib",   "gpu_mem_total_mib",  "gpu_power_w"};
inline constexpr size_t kUsageWidth = sizeof(kUsageColumns) / sizeof(kUsageColumns[0]);
// Rank 0's progress columns.
inline constexpr const char* kProgressColumns[] = {"iteration", "loss", "lr", "tokens_per_s"};
inline constexpr size_t kProgressWidth = 4;

struct NodeHistory {
  NodeHistory(std::string t, DownsampledSeries s) : target(std::move(t)), usage(std::move(s)) {}
  std::string target;  // "host:port" as the hosts file names the node
  DownsampledSeries usage;
  agent::NodeUsage last;  // the previous sample (rates); valid when has_last
  int64_t last_t_ms = 0;
  bool has_last = false;
  int gpus = 0;  // in the newest sample
};

// A copy of one job's history for a reader.
struct JobHistoryView {
  bool known = false;  // false: nothing recorded (too old, or before this coordd started)
  std::vector<StateChange> states;
  int64_t states_dropped = 0;
  std::vector<CheckpointSeen> checkpoints;
  DownsampledSeries progress{2, kProgressWidth};
  std::vector<NodeHistory> nodes;  // in the order first seen
};

struct JobHistoryOptions {
  size_t max_jobs = 32;
  size_t progress_points = 1024;  // per job
  size_t usage_points = 360;      // per node
  size_t max_states = 256;        // per job; older ones are dropped (first kept)
  size_t max_checkpoints = 256;   // per job; oldest dropped
};

class JobHistory {
 public:
  explicit JobHistory(JobHistoryOptions options = {});
  ~JobHistory();
  JobHistory(const JobHistory&) = delete;
  JobHistory& operator=(const JobHistory&) = delete;

  void OnState(const std::string& job_id, int64_t t_ms, int generation, JobState from, JobState to,
               const std::string& message);
  // Rank 0's newest record; a point only when its iteration moved.
  void OnProgress(const std::string& job_id, int64_t t_ms, int generation, int64_t iteration,
                  double loss, double lr, double tokens_per_s);
  void OnCheckpoint(const std::string& job_id, int64_t t_ms, int generation, int64_t iteration);
  // A node's counters from a heartbeat (the agent's clock is not used: coordd's t_ms).
  void OnNodeUsage(const std::string& job_id, const std::string& target, int64_t t_ms,
                   const agent::NodeUsage& usage);

  JobHistoryView View(const std::string& job_id) const;

 private:
  struct Record;
  Record& RecordLocked(const std::string& job_id);

  const JobHistoryOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Record>> jobs_;  // guarded by mu_
  std::deque<std::string> order_;                        // oldest first; guarded by mu_
};

// The columns of one usage sample: levels from `now`, rates against `prev` (NaN without
// one, or when the counters went backwards: an agent restart).
std::array<double, kUsageWidth> UsageColumns(const agent::NodeUsage& now,
                                             const agent::NodeUsage* prev, int64_t dt_ms);

}  // namespace coord::coordinator
