// Megatron's log formats, metrics.jsonl and COORD_PROGRESS_FD records (metrics.h).
#include "trainer/train/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/fs.h"
#include "common/logging.h"

namespace gpt_rank::train {

std::string FormatMegatronLogLine(const IterationRecord& r) {
  char buf[512];
  std::string s;
  std::snprintf(buf, sizeof(buf), " iteration %8lld/%8lld |", static_cast<long long>(r.iteration),
                static_cast<long long>(r.train_iters));
  s += buf;
  std::snprintf(buf, sizeof(buf), " consumed samples: %12lld |",
                static_cast<long long>(r.consumed_samples));
  s += buf;
  std::snprintf(buf, sizeof(buf), " elapsed time per iteration (ms): %.1f |", r.elapsed_ms);
  s += buf;
  std::snprintf(buf, sizeof(buf), " learning rate: %.3E |", r.lr);
  s += buf;
  std::snprintf(buf, sizeof(buf), " global batch size: %5lld |",
                static_cast<long long>(r.global_batch_size));
  s += buf;
  std::snprintf(buf, sizeof(buf), " lm loss: %.6E |", r.lm_loss);
  s += buf;
  if (r.loss_scale > 0) {
    std::snprintf(buf, sizeof(buf), " loss scale: %.1f |", r.loss_scale);
    s += buf;
  }
  std::snprintf(buf, sizeof(buf), " grad norm: %.3f |", r.grad_norm);
  s += buf;
  std::snprintf(buf, sizeof(buf), " number of skipped iterations: %3lld |",
                static_cast<long long>(r.skipped_iterations));
  s += buf;
  std::snprintf(buf, sizeof(buf), " number of nan iterations: %3lld |",
                static_cast<long long>(r.nan_iterations));
  s += buf;
  std::snprintf(buf, sizeof(buf), " tokens/s: %.1f | TFLOP/s: %.3f |", r.tokens_per_s, r.tflops);
  s += buf;
  return s;
}

std::string FormatTimersLine(const IterationRecord& r) {
  std::string s = " time (ms)";
  char buf[96];
  for (const auto& [name, ms] : r.timers_ms) {
    std::snprintf(buf, sizeof(buf), " | %s: %.2f", name.c_str(), ms);
    s += buf;
  }
  return s;
}

std::string FormatValidationBlock(const std::string& prefix, double lm_loss) {
  char buf[256];
  // Megatron: ppl = math.exp(min(20, loss)).
  std::snprintf(buf, sizeof(buf),
                " validation loss at %s | lm loss value: %.6E | lm loss PPL: %.6E | ",
                prefix.c_str(), lm_loss, std::exp(std::min(20.0, lm_loss)));
  const std::string line = buf;
  const std::string dashes(line.size() + 1, '-');
  return dashes + "\n" + line + "\n" + dashes;
}

nlohmann::json IterationRecordJson(const IterationRecord& r) {
  nlohmann::json j = {{"iteration", r.iteration},
                      {"lm_loss", r.lm_loss},
                      {"lr", r.lr},
                      {"grad_norm", r.grad_norm},
                      {"tokens_per_s", r.tokens_per_s},
                      {"tflops", r.tflops},
                      {"consumed_samples", r.consumed_samples},
                      {"elapsed_ms", r.elapsed_ms},
                      {"global_batch_size", r.global_batch_size},
                      {"skipped_iterations", r.skipped_iterations},
                      {"nan_iterations", r.nan_iterations}};
  if (r.loss_scale > 0) j["loss_scale"] = r.loss_scale;
  if (!r.timers_ms.empty()) {
    nlohmann::json& t = j["timers_ms"];
    for (const auto& [name, ms] : r.timers_ms) t[name] = ms;
  }
  return j;
}

double FlopsPerIteration(const trainer::GptConfig& c, int64_t global_batch_size) {
  const double f = c.checkpoint_activations ? 4.0 : 3.0;
  const double T = c.seq_length, L = c.num_layers, C = c.hidden_size;
  const double V = c.padded_vocab_size();
  // Weights of a layer: q, k, v (k and v of kv_heads), the projection, the MLP.
  const double qkv = C + 2.0 * C * c.kv_heads() / c.num_attention_heads;
  const double weights = (qkv + C) * C + (c.swiglu ? 3.0 : 2.0) * c.ffn_size() * C;
  return 24.0 * f * static_cast<double>(global_batch_size) * T * L * C * C *
         (weights / (12.0 * C * C) + T / (6.0 * C) + V / (16.0 * L * C));
}

coord::StatusOr<int> ProgressFdFromEnv() {
  const char* v = std::getenv("COORD_PROGRESS_FD");
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long fd = std::strtol(v, &end, 10);
  if (*end != '\0' || fd < 0 || fd > 1 << 20) {
    return coord::InvalidArgument(std::string("COORD_PROGRESS_FD: expected a file descriptor "
                                              "number, got \"") +
                                  v + "\"");
  }
  return static_cast<int>(fd);
}

// ---------------------------------------------------------------------------

coord::StatusOr<MetricsSink> MetricsSink::Open(const std::string& metrics_path, int progress_fd) {
  int fd = -1;
  if (!metrics_path.empty()) {
    const std::string dir = coord::Dirname(metrics_path);
    if (!dir.empty()) RETURN_IF_ERROR(coord::MakeDirs(dir));
    fd = open(metrics_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return coord::ErrnoStatus("open " + metrics_path, errno);
  }
  return MetricsSink(fd, progress_fd, metrics_path);
}

MetricsSink::MetricsSink(MetricsSink&& o) noexcept
    : metrics_fd_(o.metrics_fd_), progress_fd_(o.progress_fd_), path_(std::move(o.path_)) {
  o.metrics_fd_ = -1;
  o.progress_fd_ = -1;
}

MetricsSink::~MetricsSink() {
  if (metrics_fd_ >= 0) close(metrics_fd_);
}

coord::Status MetricsSink::AppendLine(const std::string& line) {
  if (metrics_fd_ < 0) return coord::Status::Ok();
  const std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(metrics_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return coord::ErrnoStatus("write " + path_, errno);
    done += static_cast<size_t>(n);
  }
  return coord::Status::Ok();
}

coord::Status MetricsSink::WriteMetrics(const IterationRecord& r) {
  return AppendLine(IterationRecordJson(r).dump());
}

coord::Status MetricsSink::WriteValidation(int64_t iteration, double lm_loss) {
  nlohmann::json j = {{"event", "validation"},
                      {"iteration", iteration},
                      {"lm_loss", lm_loss},
                      {"ppl", std::exp(std::min(20.0, lm_loss))}};
  return AppendLine(j.dump());
}

void MetricsSink::WriteProgress(int64_t iteration, double loss, double time_ms,
                                int64_t checkpoint) {
  ProgressRecord r;
  r.iteration = iteration;
  r.loss = loss;
  r.time_ms = time_ms;
  r.checkpoint = checkpoint;
  WriteProgress(r);
}

std::string ProgressRecordJson(const ProgressRecord& r) {
  const auto us = [](double ms) { return std::round(ms * 1000.0) / 1000.0; };
  nlohmann::json j = {{"iteration", r.iteration}, {"loss", r.loss}, {"time_ms", r.time_ms}};
  if (r.checkpoint >= 0) j["checkpoint"] = r.checkpoint;
  if (r.train_iters >= 0) j["train_iters"] = r.train_iters;
  if (r.tokens_per_s > 0) j["tokens_per_s"] = std::round(r.tokens_per_s * 10.0) / 10.0;
  if (r.lr >= 0) j["lr"] = r.lr;
  if (r.stage >= 0) j["stage"] = r.stage;
  if (r.has_timings) {
    const StepTimings& t = r.timings;
    j["compute_ms"] = us(t.compute_ms);
    j["wait_ms"] = us(t.wait_ms);
    if (t.wait_tp_ms > 0) j["wait_tp_ms"] = us(t.wait_tp_ms);
    if (t.wait_dp_ms > 0) j["wait_dp_ms"] = us(t.wait_dp_ms);
    if (t.wait_pp_ms > 0) j["wait_pp_ms"] = us(t.wait_pp_ms);
    j["data_ms"] = us(t.data_ms);
    j["optimizer_ms"] = us(t.optimizer_ms);
  }
  // NaN is not JSON: nlohmann writes null, which the agent reads as "no loss".
  return j.dump();
}

void MetricsSink::WriteProgress(const ProgressRecord& r) {
  if (progress_fd_ < 0) return;
  const std::string text = ProgressRecordJson(r) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(progress_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      LOG_WARN << "COORD_PROGRESS_FD=" << progress_fd_ << ": " << std::strerror(errno)
               << "; progress records disabled";
      progress_fd_ = -1;
      return;
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace gpt_rank::train
