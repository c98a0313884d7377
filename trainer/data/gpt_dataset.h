// Megatron's GPT dataset (megatron/data/gpt_dataset.py, Megatron-DeepSpeed era):
// train/valid/test document split, then per split doc_idx (documents x epochs,
// shuffled), sample_idx (where each seq_length + 1 token sample starts) and
// shuffle_idx, all with numpy's RandomState(seed) order, so sample i holds the
// same tokens as in Megatron. Read-only after Build: safe to share across threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/numpy_random.h"

namespace trainer::data {

// dataset_utils.get_train_valid_test_split_: "949,50,1" (or "949/50/1", or fewer
// numbers, padded with 0) -> document boundaries {0, a, b, num_documents}: train
// is [0, a), valid [a, b), test [b, n). Weights are normalised, each boundary
// rounded half-to-even as Python's round(), and the rounding excess is taken off
// every boundary after the first, exactly as Megatron does.
coord::StatusOr<std::array<int64_t, 4>> SplitDocuments(const std::string& splits,
                                                       int64_t num_documents);

// training.py's train_val_test_num_samples (constant global batch size):
// {train_iters * gbs, (train_iters / eval_interval + 1) * eval_iters * gbs, eval_iters * gbs}.
std::array<int64_t, 3> TrainValidTestNumSamples(int64_t train_iters, int64_t eval_interval,
                                                int64_t eval_iters, int64_t global_batch_size);

struct GptDatasetOptions {
  std::string name = "train";  // for messages: train / valid / test
  int64_t first_document = 0;  // documents (= sequences of the indexed dataset,
  int64_t end_document = 0;    // as in Megatron) [first_document, end_document)
  int64_t num_samples = 0;     // samples the run needs (Megatron's num_samples)
  int64_t seq_length = 0;      // tokens per sample are seq_length + 1
  uint32_t seed = 1234;        // Megatron's --seed
};

class GptDataset {
 public:
  // _build_index_mappings. Errors: an empty or out-of-range document range,
  // seq_length < 2, or documents holding fewer than seq_length + 1 tokens (too
  // small for one sample; Megatron would loop over the same tokens).
  static coord::StatusOr<std::unique_ptr<GptDataset>> Build(const IndexedDataset* data,
                                                            const GptDatasetOptions& options);

  // len(dataset): samples available, >= options.num_samples.
  int64_t size() const { return static_cast<int64_t>(sample_idx_.size() / 2) - 1; }
  // __getitem__(idx): the seq_length + 1 token ids of sample idx (replaces *tokens).
  coord::Status GetItem(int64_t idx, std::vector<int32_t>* tokens) const;

  int64_t num_epochs() const { return num_epochs_; }
  int64_t tokens_per_epoch() const { return tokens_per_epoch_; }
  bool separate_last_epoch() const { return separate_last_epoch_; }
  const std::vector<int32_t>& doc_idx() const { return doc_idx_; }  // (epochs * docs)
  // (size() + 1, 2) row-major: [i][0] index into doc_idx, [i][1] token offset.
  const std::vector<int64_t>& sample_idx() const { return sample_idx_; }
  const std::vector<int64_t>& shuffle_idx() const { return shuffle_idx_; }  // (size())

 private:
  GptDataset(const IndexedDataset* data, GptDatasetOptions options)
      : data_(data), options_(std::move(options)) {}
  coord::Status BuildIndexMappings();

  const IndexedDataset* data_;  // not owned; outlives this
  GptDatasetOptions options_;
  int64_t tokens_per_epoch_ = 0;
  int64_t num_epochs_ = 0;
  bool separate_last_epoch_ = false;
  std::vector<int32_t> doc_idx_;
  std::vector<int64_t> sample_idx_;
  std::vector<int64_t> shuffle_idx_;
};

// --- the index builders, exposed for tests (same names as in gpt_dataset.py)

// _num_epochs: epochs needed so that (epochs * tokens_per_epoch - 1) / seq_length >= num_samples.
int64_t NumEpochs(int64_t tokens_per_epoch, int64_t seq_length, int64_t num_samples);
// _build_doc_idx: `documents` repeated num_epochs times, shuffled; with
// separate_last_epoch the first num_epochs - 1 epochs and the last are shuffled apart.
std::vector<int32_t> BuildDocIdx(const std::vector<int32_t>& documents, int64_t num_epochs,
                                 NumpyRandomState* rng, bool separate_last_epoch);
// helpers.cpp build_sample_idx: (num_samples + 1) rows of (doc_idx index, offset),
// num_samples = (num_epochs * tokens_per_epoch - 1) / seq_length; sample i spans
// row i to row i + 1 inclusive, so consecutive samples share one token.
std::vector<int64_t> BuildSampleIdx(const std::vector<int32_t>& sizes,
                                    const std::vector<int32_t>& doc_idx, int64_t seq_length,
                                    int64_t num_epochs, int64_t tokens_per_epoch);
// _build_shuffle_idx: arange(num_samples) shuffled, then arange(num_samples,
// total_size) shuffled separately (when they differ).
std::vector<int64_t> BuildShuffleIdx(int64_t num_samples, int64_t total_size,
                                     NumpyRandomState* rng);

}  // namespace trainer::data
