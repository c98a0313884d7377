// Supervised fine-tuning data for the training loop (data.format "sft"): the JSONL
// chat dataset read and rendered (sft_dataset.h), a held-out validation split, rows
// of seq_length positions (sft_packing.h: padded or packed), the rows' order (a fresh
// shuffle each epoch, keyed by data.seed) and this data-parallel rank's micro-batches
// (Megatron's sampler over that order, so resume is exact from consumed samples).
//
// Loss averaging: every trained token of the GLOBAL batch weighs the same, as
// Megatron's per-token loss and ms-swift (average over the non-masked tokens of the
// global batch) do, whatever the split into micro-batches and ranks. Token i gets
//   w_i = trained_i * num_micro * dp / N,   N = trained tokens in the global batch,
// and the model's loss is sum_i w_i CE_i: the trainer's 1 / (num_micro * dp) per
// micro-batch and the data-parallel sum then give sum CE / N over the global batch,
// and the logged loss (mean of the micro-batch losses over ranks) is that same value.
// Every rank reads the whole file (small chat sets; no preprocessing cache).
// Not thread-safe: the training thread uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/data_sampler.h"
#include "trainer/data/sft_packing.h"
#include "trainer/data/tokenizer.h"
#include "trainer/train/model_shard.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::train {

class SftBatches {
 public:
  // Reads config.data.train_data with `tokenizer` (not owned; used during Create only).
  // num_samples: the {train, valid} sample counts of the run (TrainValidTestNumSamples).
  // InvalidArgument for a bad line under data.strict_samples (file:line), no usable
  // sample, or a chat template the tokenizer cannot render.
  static coord::StatusOr<std::unique_ptr<SftBatches>> Create(const TrainerConfig& config,
                                                             trainer::data::Tokenizer* tokenizer,
                                                             int64_t train_samples,
                                                             int64_t valid_samples, int64_t dp_rank,
                                                             int64_t dp_size);

  // Micro-batch m of the global batch that starts at `consumed` (training split, or
  // the validation split), with the loss weights of the header. Valid until the next Load.
  coord::StatusOr<MicroBatch> Load(bool valid, int64_t consumed, int64_t m, int64_t num_micro);

  bool has_valid() const { return valid_.rows.rows > 0; }
  // What was read, for the start log: lines, samples, skips (the first few with their
  // line and reason), rows and how full they are.
  const std::vector<std::string>& report() const { return report_; }

 private:
  struct Split {
    trainer::data::SftRows rows;
    std::vector<int32_t> order;  // sample index -> row (epochs of shuffled rows)
    std::unique_ptr<trainer::data::PretrainingSampler> sampler;
  };
  SftBatches() = default;
  coord::Status Prepare(Split* split, int64_t num_samples, uint32_t seed, int64_t dp_rank,
                        int64_t dp_size);

  bool packed_ = false;
  int64_t micro_batch_ = 1, dp_size_ = 1, global_batch_ = 1;
  Split train_, valid_;
  std::vector<std::string> report_;
  // The current micro-batch, (B, T) each.
  std::vector<int> inputs_, targets_, positions_, segments_;
  std::vector<float> weights_;
};

}  // namespace gpt_rank::train
