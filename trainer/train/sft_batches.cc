// Supervised fine-tuning batches (sft_batches.h): reading, splitting, rows, sample
// order and the per-token loss weights of a micro-batch.
#include "trainer/train/sft_batches.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "trainer/data/chat_template.h"
#include "trainer/data/numpy_random.h"
#include "trainer/data/sft_dataset.h"

namespace gpt_rank::train {
namespace td = trainer::data;

namespace {

// "lines 3, 7, 12 and 4 more"-style list of the first skips with their reasons.
std::vector<std::string> SkipLines(const std::string& path, const std::vector<td::SftSkipped>& s) {
  constexpr size_t kShown = 10;
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size() && i < kShown; ++i) {
    out.push_back("skipped " + path + ":" + std::to_string(s[i].line) + ": " + s[i].reason);
  }
  if (s.size() > kShown) out.push_back("... and " + std::to_string(s.size() - kShown) + " more");
  return out;
}

std::string RowsText(const char* name, const td::SftRows& r, size_t samples) {
  int64_t filled = 0, trained = 0;
  for (int64_t i = 0; i < r.rows; ++i) {
    filled += r.filled[static_cast<size_t>(i)];
    trained += r.trained_count[static_cast<size_t>(i)];
  }
  const double fill =
      r.rows > 0 ? 100.0 * static_cast<double>(filled) / static_cast<double>(r.rows * r.T) : 0.0;
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "%s: %zu samples in %lld rows (%.0f%% filled), %lld trained "
                "tokens",
                name, samples, static_cast<long long>(r.rows), fill,
                static_cast<long long>(trained));
  return buf;
}

}  // namespace

coord::StatusOr<std::unique_ptr<SftBatches>> SftBatches::Create(const TrainerConfig& config,
                                                                td::Tokenizer* tokenizer,
                                                                int64_t train_samples,
                                                                int64_t valid_samples,
                                                                int64_t dp_rank, int64_t dp_size) {
  const SftConfig& sft = config.data.sft;
  const std::string& path = config.data.train_data;
  auto tmpl = td::ChatTemplate::Resolve(sft.chat_template, TokenizerSpecOf(config.data).model,
                                        sft.default_system);
  if (!tmpl.ok()) return tmpl.status().WithContext("data.chat_template");
  td::SftLoadOptions options;
  options.max_length = sft.max_length;
  ASSIGN_OR_RETURN(options.truncation, td::ParseTruncation(sft.truncation_strategy));
  options.strict = sft.strict_samples;
  auto data = td::LoadSftJsonl(path, *tmpl, tokenizer, options);
  if (!data.ok()) return data.status().WithContext("data.train_data");
  std::unique_ptr<SftBatches> b(new SftBatches());
  b->report_.push_back(
      "sft data: " + path + ", " + std::to_string(data->lines) + " lines, " +
      std::to_string(data->samples.size()) + " samples, " + std::to_string(data->skipped.size()) +
      " skipped, " + std::to_string(data->truncated) + " truncated (" + sft.truncation_strategy +
      " to " + std::to_string(sft.max_length) + " tokens); chat template " + tmpl->name() +
      (tmpl->default_system().empty() ? ""
                                      : ", default system \"" + tmpl->default_system() + "\""));
  for (std::string& line : SkipLines(path, data->skipped)) b->report_.push_back(std::move(line));
  if (data->samples.empty()) {
    return coord::InvalidArgument("data.train_data: " + path + ": no usable sample (" +
                                  std::to_string(data->skipped.size()) + " lines skipped" +
                                  (data->skipped.empty()
                                       ? ""
                                       : "; first: line " + std::to_string(data->skipped[0].line) +
                                             ": " + data->skipped[0].reason) +
                                  ")");
  }
  std::vector<td::SftSample> train, valid;
  const double ratio = valid_samples > 0 ? sft.split_dataset_ratio : 0.0;
  td::SplitSftSamples(std::move(data->samples), ratio, config.data.seed, &train, &valid);
  const int T = config.model.seq_length;
  const int32_t pad = std::max(tokenizer->eod_id(), 0);
  ASSIGN_OR_RETURN(b->train_.rows, td::BuildSftRows(train, T, pad, sft.packing));
  ASSIGN_OR_RETURN(b->valid_.rows, td::BuildSftRows(valid, T, pad, sft.packing));
  b->report_.push_back(RowsText("train", b->train_.rows, train.size()) + "; " +
                       RowsText("valid", b->valid_.rows, valid.size()) +
                       (sft.packing ? "; packed" : "; one sample per row"));
  const TrainingConfig& tr = config.training;
  b->packed_ = sft.packing;
  b->micro_batch_ = tr.micro_batch_size;
  b->dp_size_ = dp_size;
  b->global_batch_ = tr.global_batch_size;
  RETURN_IF_ERROR(b->Prepare(&b->train_, train_samples, config.data.seed, dp_rank, dp_size));
  if (b->has_valid()) {
    RETURN_IF_ERROR(b->Prepare(&b->valid_, valid_samples, config.data.seed + 1, dp_rank, dp_size));
  }
  const size_t BT = static_cast<size_t>(tr.micro_batch_size) * T;
  b->inputs_.resize(BT);
  b->targets_.resize(BT);
  b->positions_.resize(BT);
  b->segments_.resize(BT);
  b->weights_.resize(BT);
  return b;
}

// Epochs of the rows, each shuffled with its own seed, until num_samples.
coord::Status SftBatches::Prepare(Split* split, int64_t num_samples, uint32_t seed, int64_t dp_rank,
                                  int64_t dp_size) {
  const int64_t n = split->rows.rows;
  split->order.clear();
  split->order.reserve(static_cast<size_t>(num_samples));
  std::vector<int32_t> perm(static_cast<size_t>(n));
  for (uint32_t epoch = 0; static_cast<int64_t>(split->order.size()) < num_samples; ++epoch) {
    std::iota(perm.begin(), perm.end(), 0);
    td::NumpyRandomState rng(seed + epoch);
    rng.Shuffle(perm.data(), n);
    const auto take = std::min<int64_t>(n, num_samples - static_cast<int64_t>(split->order.size()));
    split->order.insert(split->order.end(), perm.begin(), perm.begin() + take);
  }
  ASSIGN_OR_RETURN(auto s,
                   td::PretrainingSampler::Create(num_samples, micro_batch_, dp_rank, dp_size));
  split->sampler = std::make_unique<td::PretrainingSampler>(s);
  return coord::Status::Ok();
}

coord::StatusOr<MicroBatch> SftBatches::Load(bool valid, int64_t consumed, int64_t m,
                                             int64_t num_micro) {
  const Split& split = valid ? valid_ : train_;
  if (split.sampler == nullptr) return coord::FailedPrecondition("no validation split");
  const td::SftRows& rows = split.rows;
  const auto T = static_cast<size_t>(rows.T);
  // N: the trained tokens of the whole global batch (every rank's micro-batches).
  ASSIGN_OR_RETURN(const std::vector<int64_t> all,
                   split.sampler->GlobalBatch(consumed, global_batch_));
  int64_t trained = 0;
  for (int64_t i : all) trained += rows.trained_count[static_cast<size_t>(split.order[i])];
  if (trained == 0) {  // every row holds a sample with a trained token: a bug if not
    return coord::Internal("the global batch at sample " + std::to_string(consumed) +
                           " has no trained token");
  }
  const float scale =
      static_cast<float>(static_cast<double>(num_micro * dp_size_) / static_cast<double>(trained));
  ASSIGN_OR_RETURN(const std::vector<int64_t> idx, split.sampler->MicroBatch(consumed, m));
  for (size_t b = 0; b < idx.size(); ++b) {
    const size_t from = static_cast<size_t>(split.order[static_cast<size_t>(idx[b])]) * T;
    std::copy_n(rows.inputs.begin() + from, T, inputs_.begin() + b * T);
    std::copy_n(rows.targets.begin() + from, T, targets_.begin() + b * T);
    std::copy_n(rows.positions.begin() + from, T, positions_.begin() + b * T);
    std::copy_n(rows.segments.begin() + from, T, segments_.begin() + b * T);
    for (size_t t = 0; t < T; ++t) weights_[b * T + t] = rows.trained[from + t] ? scale : 0.0f;
  }
  MicroBatch mb;
  mb.inputs = inputs_.data();
  mb.targets = targets_.data();
  mb.batch = static_cast<int>(idx.size());
  mb.seq = rows.T;
  mb.rng_step = static_cast<uint64_t>(idx.front());
  mb.loss_weights = weights_.data();
  if (packed_) {  // one sample per row needs neither: positions 0.., padding after it
    mb.position_ids = positions_.data();
    mb.segment_ids = segments_.data();
  }
  return mb;
}

}  // namespace gpt_rank::train
