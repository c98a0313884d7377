// Training logs in the forms people and machines already read: Megatron's log line
// (megatron/training.py training_log, %-formats included) and validation block,
// the same figures as JSON lines at full precision (metrics.jsonl), and one progress
// record per iteration on the file descriptor named by COORD_PROGRESS_FD (the
// agent's progress view and hang detection). Used by the training loop on rank 0
// (metrics file) and every rank (progress fd); not thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"

namespace gpt_rank::train {

// One logged iteration; figures averaged over the log interval as Megatron does
// (loss and time), the rest as of `iteration`.
struct IterationRecord {
  int64_t iteration = 0;
  int64_t train_iters = 0;
  int64_t consumed_samples = 0;
  double elapsed_ms = 0.0;  // per iteration, averaged over the interval
  double lr = 0.0;          // Megatron's logged lr (LoggedLrForIteration)
  int64_t global_batch_size = 0;
  double lm_loss = 0.0;  // averaged over the interval
  double grad_norm = 0.0;
  double loss_scale = 0.0;  // fp16's current loss scale; 0 (not printed) otherwise
  int64_t skipped_iterations = 0;
  int64_t nan_iterations = 0;
  double tokens_per_s = 0.0;
  double tflops = 0.0;  // per rank
  // Megatron's timers, ms per iteration over the interval, in print order:
  // forward-backward, optimizer, tp-comm, dp-comm (rank 0's view).
  std::vector<std::pair<std::string, double>> timers_ms;
};

// " iteration        N/   TOTAL | consumed samples: ... | TFLOP/s: F |"
std::string FormatMegatronLogLine(const IterationRecord& r);
// " time (ms) | forward-backward: F | optimizer: O | ...", as Megatron's timers.log().
std::string FormatTimersLine(const IterationRecord& r);
// Megatron's evaluate_and_print_results: a dashed line, " validation loss at
// iteration N | lm loss value: X | lm loss PPL: Y | ", a dashed line ('\n'-joined).
std::string FormatValidationBlock(const std::string& prefix, double lm_loss);
// The metrics.jsonl record (full precision).
nlohmann::json IterationRecordJson(const IterationRecord& r);

// Megatron-DeepSpeed's flops per iteration (training.py, throughput calculation):
// 24 * f * B * T * L * C^2 * (1 + T / (6 C) + V / (16 L C)), f = 4 with activation
// checkpointing (one extra forward) else 3; B = global batch size. For the Llama /
// Qwen2 family the 1 becomes the layer's weights / 12 C^2 (GQA's smaller k, v; SwiGLU's
// three F x C matrices), as Megatron-LM's num_floating_point_operations counts them;
// exactly 1 for GPT-2.
double FlopsPerIteration(const trainer::GptConfig& config, int64_t global_batch_size);

// COORD_PROGRESS_FD: -1 when unset; InvalidArgument when not a non-negative integer.
coord::StatusOr<int> ProgressFdFromEnv();

// Where one iteration's time went on this rank (ms), for straggler detection: compute
// is forward-backward minus data loading and minus the time the training thread was
// blocked in communication there, so a slow rank shows a long compute and its peers a
// long wait (in synchronous training every rank's step time is the same).
struct StepTimings {
  double compute_ms = 0.0;
  double wait_ms = 0.0;  // blocked in communication over the whole step
  double wait_tp_ms = 0.0, wait_dp_ms = 0.0, wait_pp_ms = 0.0;  // ... of which per group
  double data_ms = 0.0;
  double optimizer_ms = 0.0;  // grad norm, clipping and the update (Megatron's timer)
};

// One progress record. The fields after `checkpoint` came later: readers take what they
// know and ignore the rest (older agents read iteration, loss and checkpoint only).
struct ProgressRecord {
  int64_t iteration = 0;
  double loss = 0.0;
  double time_ms = 0.0;  // the iteration's wall time
  int64_t checkpoint = -1;  // the newest saved iteration; -1: none (not written)
  int64_t train_iters = -1;  // -1: not written
  double tokens_per_s = 0.0;  // 0: not written
  double lr = -1.0;           // the iteration's learning rate; < 0: not written
  int stage = -1;             // pipeline stage: ranks are compared within one; -1: not written
  bool has_timings = false;
  StepTimings timings;
};
// {"iteration":N,"loss":L,"time_ms":T[,"checkpoint":C][,"train_iters":I,"tokens_per_s":S,"lr":R,
// "stage":P,"compute_ms":...,"wait_ms":...,"wait_tp_ms":...,"wait_dp_ms":...,
// "wait_pp_ms":...,"data_ms":...,"optimizer_ms":...]}: times rounded to the microsecond,
// so a record stays well under the 512 bytes an older agent reads.
std::string ProgressRecordJson(const ProgressRecord& r);

class MetricsSink {
 public:
  // metrics_path "" = no metrics file (appends: a resumed run adds to it);
  // progress_fd -1 = no progress records.
  static coord::StatusOr<MetricsSink> Open(const std::string& metrics_path, int progress_fd);
  MetricsSink(MetricsSink&& other) noexcept;
  MetricsSink& operator=(MetricsSink&&) = delete;
  ~MetricsSink();

  coord::Status WriteMetrics(const IterationRecord& r);  // one metrics.jsonl line
  // {"iteration":N,"loss":L,"time_ms":T[,"checkpoint":C]} (C: the newest checkpoint in
  // training.save, when there is one); a closed or bad fd gives one warning and then
  // progress records stop (training goes on).
  void WriteProgress(int64_t iteration, double loss, double time_ms, int64_t checkpoint = -1);
  void WriteProgress(const ProgressRecord& r);
  // {"event":"validation","iteration":N,"lm_loss":L,"ppl":P} to metrics.jsonl.
  coord::Status WriteValidation(int64_t iteration, double lm_loss);

 private:
  MetricsSink(int metrics_fd, int progress_fd, std::string path)
      : metrics_fd_(metrics_fd), progress_fd_(progress_fd), path_(std::move(path)) {}
  coord::Status AppendLine(const std::string& line);

  int metrics_fd_ = -1;   // owned
  int progress_fd_ = -1;  // not owned (inherited from the agent)
  std::string path_;
};

}  // namespace gpt_rank::train
