// Progress records: parsing and incremental reading (progress_reader.h).
#include "agent/progress_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

namespace coord::agent {

namespace {

constexpr double kMaxMs = 1e9;  // ~11 days: any timing above is nonsense
constexpr int64_t kMaxStage = 1 << 20;

// The timing fields: record key -> setter.
struct TimingField {
  const char* key;
  void (IterationTiming::*set)(double);
};
constexpr TimingField kTimingFields[] = {
    {"time_ms", &IterationTiming::set_time_ms},
    {"compute_ms", &IterationTiming::set_compute_ms},
    {"wait_ms", &IterationTiming::set_wait_ms},
    {"wait_tp_ms", &IterationTiming::set_wait_tp_ms},
    {"wait_dp_ms", &IterationTiming::set_wait_dp_ms},
    {"wait_pp_ms", &IterationTiming::set_wait_pp_ms},
    {"data_ms", &IterationTiming::set_data_ms},
    {"optimizer_ms", &IterationTiming::set_optimizer_ms},
};

bool Fail(std::string* why, const std::string& text) {
  *why = text;
  return false;
}

// An integer field in [0, max]: absent -> -1; wrong type or range -> false.
bool IntField(const nlohmann::json& j, const char* key, int64_t max, int64_t* out,
              std::string* why) {
  *out = -1;
  auto it = j.find(key);
  if (it == j.end()) return true;
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > max) {
    return Fail(why, std::string("\"") + key + "\" is not an integer in [0, " +
                         std::to_string(max) + "]");
  }
  *out = it->get<int64_t>();
  return true;
}

}  // namespace

bool ParseProgressRecord(const std::string& line, RankProgress* out, IterationTiming* timing,
                         bool* has_timing, std::string* why) {
  *has_timing = false;
  if (line.size() > kMaxRecordBytes) {
    return Fail(why, "longer than " + std::to_string(kMaxRecordBytes) + " bytes");
  }
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Fail(why, "not JSON");
  if (!j.is_object()) return Fail(why, "not a JSON object");
  int64_t iteration, checkpoint, train_iters, stage;
  if (!IntField(j, "iteration", INT64_MAX, &iteration, why) ||
      !IntField(j, "checkpoint", INT64_MAX, &checkpoint, why) ||
      !IntField(j, "train_iters", INT64_MAX, &train_iters, why) ||
      !IntField(j, "stage", kMaxStage, &stage, why)) {
    return false;
  }
  double loss = std::nan("");
  if (auto it = j.find("loss"); it != j.end() && !it->is_null()) {  // null: NaN as written
    if (!it->is_number()) return Fail(why, "\"loss\" is not a number");
    loss = it->get<double>();
  }
  double tokens_per_s = 0.0;
  if (auto it = j.find("tokens_per_s"); it != j.end()) {
    if (!it->is_number() || !(it->get<double>() >= 0) || !std::isfinite(it->get<double>())) {
      return Fail(why, "\"tokens_per_s\" is not a finite number >= 0");
    }
    tokens_per_s = it->get<double>();
  }
  IterationTiming t;
  for (const TimingField& f : kTimingFields) {
    auto it = j.find(f.key);
    if (it == j.end()) continue;
    const double v = it->is_number() ? it->get<double>() : -1.0;
    if (!(v >= 0 && v <= kMaxMs)) {
      return Fail(why, std::string("\"") + f.key + "\" is not a number of ms in [0, 1e9]");
    }
    (t.*f.set)(v);
  }
  // Valid: only now touch the output.
  out->set_iteration(iteration);
  out->set_loss(loss);
  out->set_checkpoint(checkpoint);
  if (train_iters >= 0) out->set_train_iters(train_iters);
  if (tokens_per_s > 0) out->set_tokens_per_s(tokens_per_s);
  if (stage >= 0) out->set_stage(static_cast<int32_t>(stage));
  if (j.contains("compute_ms") && iteration >= 0) {
    t.set_iteration(iteration);
    *timing = t;
    *has_timing = true;
  }
  return true;
}

ProgressReader::Poll ProgressReader::Read(const std::string& path, RankProgress* p) {
  Poll poll;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || st.st_size == 0) return poll;
  if (st.st_size == p->records()) return poll;
  if (st.st_size < consumed_) {  // replaced by a shorter file: start over
    consumed_ = 0;
    in_oversized_ = false;
  }
  if (p->records() == 0) {  // the first: "none" until a record says otherwise
    p->set_iteration(-1);
    p->set_loss(std::nan(""));
    p->set_checkpoint(-1);
    p->set_train_iters(-1);
    p->set_stage(-1);
  }
  poll.grew = true;
  p->set_records(st.st_size);
  p->set_time_ms(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000);
  p->clear_timings();

  int64_t from = consumed_;
  bool skip_partial = in_oversized_;  // the rest of a line: skip to its newline
  if (st.st_size - from > static_cast<int64_t>(kMaxProgressRead)) {
    from = st.st_size - static_cast<int64_t>(kMaxProgressRead);  // backlog: not read
    skip_partial = true;
  }
  std::string buf(static_cast<size_t>(st.st_size - from), '\0');
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return poll;
  const ssize_t got = pread(fd, buf.data(), buf.size(), from);
  close(fd);
  buf.resize(got > 0 ? static_cast<size_t>(got) : 0);

  auto malformed = [&](const std::string& why) {
    if (poll.malformed++ == 0) poll.first_error = why;
    p->set_malformed_records(p->malformed_records() + 1);
  };
  const std::string too_long = "longer than " + std::to_string(kMaxRecordBytes) + " bytes";
  size_t pos = 0;
  if (skip_partial) {
    const size_t nl = buf.find('\n');
    if (nl == std::string::npos) {  // still inside that line, which is longer than we read
      if (!in_oversized_) malformed(too_long);
      in_oversized_ = true;
      consumed_ = from + static_cast<int64_t>(buf.size());
      return poll;
    }
    pos = nl + 1;
    in_oversized_ = false;
  }
  std::vector<IterationTiming> timings;
  for (size_t nl; (nl = buf.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    const std::string line = buf.substr(pos, nl - pos);
    p->set_text(line.substr(0, kProgressTextBytes));
    IterationTiming t;
    bool has_timing = false;
    std::string why;
    if (!ParseProgressRecord(line, p, &t, &has_timing, &why)) {
      malformed(why);
    } else if (has_timing) {
      timings.push_back(t);
    }
  }
  // A record being written has no newline yet; one already too long never is a record.
  if (buf.size() - pos > kMaxRecordBytes) {
    malformed(too_long);
    in_oversized_ = true;
    pos = buf.size();
  }
  consumed_ = from + static_cast<int64_t>(pos);
  const size_t keep = std::min(timings.size(), static_cast<size_t>(kMaxTimingsPerPoll));
  for (size_t i = timings.size() - keep; i < timings.size(); ++i) *p->add_timings() = timings[i];
  return poll;
}

}  // namespace coord::agent
