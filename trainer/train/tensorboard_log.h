// Megatron's TensorBoard scalars (megatron/training.py: training_log,
// evaluate_and_print_results), written by rank 0 into training.tensorboard_dir so
// dashboards and scripts built for Megatron's event files work unchanged:
//   every tensorboard_log_interval iterations (default: log_interval) and the last:
//     learning-rate, lm loss (mean since the previous write, so with the default
//     interval it is metrics.jsonl's lm_loss), loss-scale (1 without fp16, as in
//     Megatron), grad-norm, batch-size, world-size; each also as "<tag> vs samples"
//     with step = consumed samples
//   with each log line: iteration-time (seconds per iteration over the interval) and
//     throughput (TFLOP/s per rank, Megatron's definition; metrics.jsonl's tflops)
//   after each evaluation: lm loss validation, lm loss validation ppl (+ vs samples)
// Not written: params-norm and num-zeros (Megatron's --log-params-norm and
// --log-num-zeros-in-grad: gpt-rank computes neither), mem-* (torch's caching
// allocator statistics; neither backend keeps them). Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "trainer/tensorboard/event_file_writer.h"
#include "trainer/train/metrics.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::train {

// One finished iteration, as the loop has it.
struct TrainingScalars {
  int64_t iteration = 0;
  int64_t consumed_samples = 0;
  double lm_loss = 0.0;
  double grad_norm = 0.0;
  double lr = 0.0;          // LoggedLrForIteration
  double loss_scale = 0.0;  // fp16's scale; 0: no loss scaling
};

class TensorBoardLog {
 public:
  // Opens a new event file in tr.tensorboard_dir (created if needed); an error
  // (FailedPrecondition) names the directory. GPT_RANK_INJECT_EVENT_WRITE_FAULT (tests) is read here.
  static coord::StatusOr<std::unique_ptr<TensorBoardLog>> Open(const TrainingConfig& tr,
                                                               int world_size);
  // As Open, with an injected pwrite (unit tests).
  static coord::StatusOr<std::unique_ptr<TensorBoardLog>> Open(const TrainingConfig& tr,
                                                               int world_size,
                                                               trainer::tensorboard::PwriteFn pwrite);

  void OnIteration(const TrainingScalars& s);
  void OnLogLine(const IterationRecord& r);
  void OnValidation(int64_t iteration, int64_t consumed_samples, double lm_loss);

  const trainer::tensorboard::EventFileWriter& writer() const { return *writer_; }

 private:
  TensorBoardLog(std::unique_ptr<trainer::tensorboard::EventFileWriter> writer, int64_t interval,
                 int64_t train_iters, int64_t global_batch_size, int world_size)
      : writer_(std::move(writer)),
        interval_(interval),
        train_iters_(train_iters),
        global_batch_size_(global_batch_size),
        world_size_(world_size) {}
  // tag at `iteration` and "tag vs samples" at `samples`.
  void AddWithSamples(const std::string& tag, double value, int64_t iteration, int64_t samples,
                      double wall_time);

  std::unique_ptr<trainer::tensorboard::EventFileWriter> writer_;
  int64_t interval_;
  int64_t train_iters_;
  int64_t global_batch_size_;
  int world_size_;
  double loss_sum_ = 0.0;  // since the last write
  int64_t loss_count_ = 0;
};

// GPT_RANK_INJECT_EVENT_WRITE_FAULT=BYTES (tests): after BYTES more bytes of event
// records, the next write lands half its bytes and fails with ENOSPC, as does every
// write after it (a disk that filled up). Null when unset; InvalidArgument when not
// a non-negative integer.
coord::StatusOr<trainer::tensorboard::PwriteFn> InjectedEventWriteFaultFromEnv();

}  // namespace gpt_rank::train
