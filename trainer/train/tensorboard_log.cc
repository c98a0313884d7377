// Megatron's TensorBoard tags over the event writer (tensorboard_log.h).
#include "trainer/train/tensorboard_log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace gpt_rank::train {

using trainer::tensorboard::EventFileWriter;
using trainer::tensorboard::PwriteFn;

coord::StatusOr<PwriteFn> InjectedEventWriteFaultFromEnv() {
  const char* v = std::getenv("GPT_RANK_INJECT_EVENT_WRITE_FAULT");
  if (v == nullptr || *v == '\0') return PwriteFn();
  char* end = nullptr;
  const long long bytes = std::strtoll(v, &end, 10);
  if (*end != '\0' || bytes < 0) {
    return coord::InvalidArgument(
        std::string("GPT_RANK_INJECT_EVENT_WRITE_FAULT: expected a number of bytes, got \"") + v +
        "\"");
  }
  auto left = std::make_shared<long long>(bytes);
  return PwriteFn([left](int fd, const void* buf, size_t size, off_t offset) -> ssize_t {
    if (*left < 0) {
      errno = ENOSPC;
      return -1;
    }
    if (static_cast<long long>(size) <= *left) {
      const ssize_t n = ::pwrite(fd, buf, size, offset);
      if (n > 0) *left -= n;
      return n;
    }
    *left = -1;  // full from now on: this write lands half its bytes
    return ::pwrite(fd, buf, std::max<size_t>(1, size / 2), offset);
  });
}

coord::StatusOr<std::unique_ptr<TensorBoardLog>> TensorBoardLog::Open(const TrainingConfig& tr,
                                                                      int world_size) {
  ASSIGN_OR_RETURN(PwriteFn pwrite, InjectedEventWriteFaultFromEnv());
  return Open(tr, world_size, std::move(pwrite));
}

coord::StatusOr<std::unique_ptr<TensorBoardLog>> TensorBoardLog::Open(const TrainingConfig& tr,
                                                                      int world_size,
                                                                      PwriteFn pwrite) {
  auto writer = EventFileWriter::Create(tr.tensorboard_dir, std::move(pwrite));
  if (!writer.ok()) {  // a config problem (exit 2), whatever errno said
    return coord::FailedPrecondition("training.tensorboard_dir " + tr.tensorboard_dir +
                                     " is not writable: " + writer.status().message());
  }
  const int64_t interval =
      tr.tensorboard_log_interval > 0 ? tr.tensorboard_log_interval : tr.log_interval;
  return std::unique_ptr<TensorBoardLog>(new TensorBoardLog(
      std::move(*writer), interval, tr.train_iters, tr.global_batch_size, world_size));
}

void TensorBoardLog::AddWithSamples(const std::string& tag, double value, int64_t iteration,
                                    int64_t samples, double wall_time) {
  writer_->AddScalar(tag, value, iteration, wall_time);
  writer_->AddScalar(tag + " vs samples", value, samples, wall_time);
}

void TensorBoardLog::OnIteration(const TrainingScalars& s) {
  loss_sum_ += s.lm_loss;
  ++loss_count_;
  if (s.iteration % interval_ != 0 && s.iteration != train_iters_) return;
  const double now = EventFileWriter::Now();
  const int64_t it = s.iteration, n = s.consumed_samples;
  AddWithSamples("learning-rate", s.lr, it, n, now);
  AddWithSamples("batch-size", static_cast<double>(global_batch_size_), it, n, now);
  AddWithSamples("lm loss", loss_sum_ / static_cast<double>(loss_count_), it, n, now);
  AddWithSamples("loss-scale", s.loss_scale > 0 ? s.loss_scale : 1.0, it, n, now);
  AddWithSamples("world-size", static_cast<double>(world_size_), it, n, now);
  AddWithSamples("grad-norm", s.grad_norm, it, n, now);
  writer_->Flush();
  loss_sum_ = 0.0;
  loss_count_ = 0;
}

void TensorBoardLog::OnLogLine(const IterationRecord& r) {
  const double now = EventFileWriter::Now();
  writer_->AddScalar("iteration-time", r.elapsed_ms / 1000.0, r.iteration, now);
  writer_->AddScalar("throughput", r.tflops, r.iteration, now);
  writer_->Flush();
}

void TensorBoardLog::OnValidation(int64_t iteration, int64_t consumed_samples, double lm_loss) {
  const double now = EventFileWriter::Now();
  AddWithSamples("lm loss validation", lm_loss, iteration, consumed_samples, now);
  // Megatron: ppl = math.exp(min(20, loss)), as metrics.jsonl's "ppl".
  AddWithSamples("lm loss validation ppl", std::exp(std::min(20.0, lm_loss)), iteration,
                 consumed_samples, now);
  writer_->Flush();
}

}  // namespace gpt_rank::train
