// Megatron's GPT dataset index mappings (see gpt_dataset.h). Each function
// names the gpt_dataset.py / dataset_utils.py / helpers.cpp function it mirrors;
// where Megatron asserts, we return a Status that says what was expected.
#include "trainer/data/gpt_dataset.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>

namespace trainer::data {

using coord::FailedPrecondition;
using coord::InvalidArgument;
using coord::Status;
using coord::StatusOr;

// --- split

StatusOr<std::array<int64_t, 4>> SplitDocuments(const std::string& splits, int64_t num_documents) {
  const std::string what = "split \"" + splits + "\": ";
  const char sep = splits.find(',') != std::string::npos   ? ','
                   : splits.find('/') != std::string::npos ? '/'
                                                           : '\0';
  std::vector<double> weights;
  size_t pos = 0;
  while (true) {
    size_t end = sep == '\0' ? std::string::npos : splits.find(sep, pos);
    std::string field = splits.substr(pos, end == std::string::npos ? end : end - pos);
    // Python's float(): surrounding whitespace allowed, nothing else.
    char* stop = nullptr;
    errno = 0;
    double w = std::strtod(field.c_str(), &stop);
    while (stop != nullptr && (*stop == ' ' || *stop == '\t')) ++stop;
    if (field.find_first_not_of(" \t") == std::string::npos || *stop != '\0' || errno != 0 ||
        !std::isfinite(w) || w < 0) {
      return InvalidArgument(what + "\"" + field + "\" is not a non-negative number");
    }
    weights.push_back(w);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  weights.resize(3, 0.0);  // pad with 0., keep the first three
  const double sum = weights[0] + weights[1] + weights[2];
  if (!(sum > 0.0)) return InvalidArgument(what + "the weights must add up to more than 0");
  std::array<int64_t, 4> index = {0, 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    // int(round(split * float(size))): nearbyint rounds half to even, as Python 3's round.
    index[i + 1] =
        index[i] + static_cast<int64_t>(std::nearbyint(weights[i] / sum * double(num_documents)));
  }
  const int64_t diff = index[3] - num_documents;
  for (int i = 1; i < 4; ++i) index[i] -= diff;
  for (int i = 1; i < 4; ++i) {
    if (index[i] < index[i - 1] || index[i] < 0) {
      return InvalidArgument(what + "gives no valid document ranges for " +
                             std::to_string(num_documents) + " documents");
    }
  }
  return index;
}

std::array<int64_t, 3> TrainValidTestNumSamples(int64_t train_iters, int64_t eval_interval,
                                                int64_t eval_iters, int64_t global_batch_size) {
  const int64_t eval_runs = eval_interval > 0 ? train_iters / eval_interval + 1 : 1;
  return {train_iters * global_batch_size, eval_runs * eval_iters * global_batch_size,
          eval_iters * global_batch_size};
}

// --- index builders

int64_t NumEpochs(int64_t tokens_per_epoch, int64_t seq_length, int64_t num_samples) {
  // -1: each sample takes seq_length + 1 tokens, but its last token is the first
  // token of the next sample (except for the very last sample).
  int64_t num_epochs = 0, total_tokens = 0;
  while (true) {
    ++num_epochs;
    total_tokens += tokens_per_epoch;
    if ((total_tokens - 1) / seq_length >= num_samples) return num_epochs;
  }
}

std::vector<int32_t> BuildDocIdx(const std::vector<int32_t>& documents, int64_t num_epochs,
                                 NumpyRandomState* rng, bool separate_last_epoch) {
  if (!separate_last_epoch || num_epochs == 1) {
    // np.mgrid[0:num_epochs, 0:len(documents)][1] filled with documents, flattened.
    std::vector<int32_t> doc_idx;
    doc_idx.reserve(documents.size() * static_cast<size_t>(num_epochs));
    for (int64_t e = 0; e < num_epochs; ++e) {
      doc_idx.insert(doc_idx.end(), documents.begin(), documents.end());
    }
    rng->Shuffle(doc_idx.data(), static_cast<int64_t>(doc_idx.size()));
    return doc_idx;
  }
  std::vector<int32_t> first = BuildDocIdx(documents, num_epochs - 1, rng, false);
  std::vector<int32_t> last = BuildDocIdx(documents, 1, rng, false);
  first.insert(first.end(), last.begin(), last.end());
  return first;
}

std::vector<int64_t> BuildSampleIdx(const std::vector<int32_t>& sizes,
                                    const std::vector<int32_t>& doc_idx, int64_t seq_length,
                                    int64_t num_epochs, int64_t tokens_per_epoch) {
  const int64_t num_samples = (num_epochs * tokens_per_epoch - 1) / seq_length;
  std::vector<int64_t> sample_idx(2 * static_cast<size_t>(num_samples + 1));
  int64_t sample_index = 0;
  int64_t doc_idx_index = 0;  // index into doc_idx
  int64_t doc_offset = 0;     // first token of the sample in that document
  sample_idx[0] = doc_idx_index;
  sample_idx[1] = doc_offset;
  ++sample_index;
  while (sample_index <= num_samples) {
    int64_t remaining_seq_length = seq_length + 1;
    while (remaining_seq_length != 0) {
      const int64_t doc_length = sizes[doc_idx[doc_idx_index]] - doc_offset;
      remaining_seq_length -= doc_length;
      if (remaining_seq_length <= 0) {
        // The sample ends inside this document, at its last token (the -1): the
        // next sample starts on that same token.
        doc_offset += remaining_seq_length + doc_length - 1;
        remaining_seq_length = 0;
      } else {
        ++doc_idx_index;
        doc_offset = 0;
      }
    }
    sample_idx[2 * sample_index] = doc_idx_index;
    sample_idx[2 * sample_index + 1] = doc_offset;
    ++sample_index;
  }
  return sample_idx;
}

std::vector<int64_t> BuildShuffleIdx(int64_t num_samples, int64_t total_size,
                                     NumpyRandomState* rng) {
  // Megatron stores uint32 (int64 past 2^32 - 2); the draws do not depend on it.
  std::vector<int64_t> shuffle_idx(static_cast<size_t>(total_size));
  for (int64_t i = 0; i < total_size; ++i) shuffle_idx[i] = i;
  rng->Shuffle(shuffle_idx.data(), num_samples);
  if (num_samples == total_size) return shuffle_idx;
  rng->Shuffle(shuffle_idx.data() + num_samples, total_size - num_samples);
  return shuffle_idx;
}

// --- dataset

StatusOr<std::unique_ptr<GptDataset>> GptDataset::Build(const IndexedDataset* data,
                                                        const GptDatasetOptions& options) {
  const std::string what = "GPT dataset '" + options.name + "' on " + data->prefix() + ": ";
  if (options.first_document < 0 || options.first_document >= options.end_document ||
      options.end_document > data->num_sequences()) {
    return InvalidArgument(what + "documents [" + std::to_string(options.first_document) + ", " +
                           std::to_string(options.end_document) + ") is empty or outside [0, " +
                           std::to_string(data->num_sequences()) + ")");
  }
  if (options.seq_length < 2 || options.seq_length > INT32_MAX - 1) {
    return InvalidArgument(what + "seq_length " + std::to_string(options.seq_length) +
                           " must be at least 2");
  }
  if (options.num_samples < 0) return InvalidArgument(what + "num_samples is negative");
  std::unique_ptr<GptDataset> ds(new GptDataset(data, options));
  RETURN_IF_ERROR(ds->BuildIndexMappings());
  return ds;
}

// _build_index_mappings, without the .npy cache (this takes well under a
// second for millions of documents, and every rank computes the same arrays).
Status GptDataset::BuildIndexMappings() {
  const GptDatasetOptions& o = options_;
  const std::string what = "GPT dataset '" + o.name + "' on " + data_->prefix() + ": ";
  std::vector<int32_t> documents;  // np.arange(first, end, dtype=np.int32)
  std::vector<int32_t> sizes(static_cast<size_t>(o.end_document), 0);  // (end_document)
  for (int64_t d = o.first_document; d < o.end_document; ++d) {
    documents.push_back(static_cast<int32_t>(d));
    sizes[d] = data_->size(d);
    tokens_per_epoch_ += sizes[d];  // _num_tokens
  }
  if (tokens_per_epoch_ < o.seq_length + 1) {
    return FailedPrecondition(what + "documents [" + std::to_string(o.first_document) + ", " +
                              std::to_string(o.end_document) + ") hold " +
                              std::to_string(tokens_per_epoch_) + " tokens, too few for one " +
                              "sample of seq_length + 1 = " + std::to_string(o.seq_length + 1));
  }
  num_epochs_ = NumEpochs(tokens_per_epoch_, o.seq_length, o.num_samples);
  if (num_epochs_ * static_cast<int64_t>(documents.size()) > INT32_MAX) {
    return FailedPrecondition(what + std::to_string(o.num_samples) + " samples need " +
                              std::to_string(num_epochs_) + " epochs over " +
                              std::to_string(documents.size()) +
                              " documents, past Megatron's "
                              "int32 index; use more data or fewer samples");
  }
  // Whether the last epoch is shuffled apart: when it is used for less than 80%,
  // mixing it in would drop a biased subset of the data.
  int64_t samples_before_last = 0;
  if (num_epochs_ > 1) {
    samples_before_last = ((num_epochs_ - 1) * tokens_per_epoch_ - 1) / o.seq_length;
    const int64_t last_epoch_num_samples = o.num_samples - samples_before_last;
    const int64_t num_samples_per_epoch = (tokens_per_epoch_ - 1) / o.seq_length;
    if (last_epoch_num_samples < 0 || last_epoch_num_samples >= num_samples_per_epoch + 1) {
      return coord::Internal(what + "last epoch sample count out of range");  // Megatron asserts
    }
    separate_last_epoch_ =
        last_epoch_num_samples < static_cast<int64_t>(0.80 * double(num_samples_per_epoch));
  }
  // One generator for all three, in Megatron's order: doc_idx, then shuffle_idx.
  NumpyRandomState rng(o.seed);
  doc_idx_ = BuildDocIdx(documents, num_epochs_, &rng, separate_last_epoch_);
  sample_idx_ = BuildSampleIdx(sizes, doc_idx_, o.seq_length, num_epochs_, tokens_per_epoch_);
  const int64_t total = size();
  shuffle_idx_ = BuildShuffleIdx(separate_last_epoch_ ? samples_before_last : total, total, &rng);
  return Status::Ok();
}

Status GptDataset::GetItem(int64_t idx, std::vector<int32_t>* tokens) const {
  if (idx < 0 || idx >= size()) {
    return Status(coord::StatusCode::kOutOfRange, "GPT dataset '" + options_.name + "': sample " +
                                                      std::to_string(idx) + " of " +
                                                      std::to_string(size()));
  }
  const int64_t i = shuffle_idx_[idx];
  const int64_t doc_f = sample_idx_[2 * i], offset_f = sample_idx_[2 * i + 1];
  const int64_t doc_l = sample_idx_[2 * i + 2], offset_l = sample_idx_[2 * i + 3];
  tokens->clear();
  if (doc_f == doc_l) {
    RETURN_IF_ERROR(data_->Get(doc_idx_[doc_f], offset_f, offset_l - offset_f + 1, tokens));
  } else {
    // The rest of the first document, whole documents in between, then the head
    // of the last one.
    RETURN_IF_ERROR(data_->Get(doc_idx_[doc_f], offset_f, -1, tokens));
    for (int64_t d = doc_f + 1; d < doc_l; ++d)
      RETURN_IF_ERROR(data_->Get(doc_idx_[d], 0, -1, tokens));
    RETURN_IF_ERROR(data_->Get(doc_idx_[doc_l], 0, offset_l + 1, tokens));
  }
  if (static_cast<int64_t>(tokens->size()) != options_.seq_length + 1) {
    return coord::Internal("GPT dataset '" + options_.name + "': sample " + std::to_string(idx) +
                           " has " + std::to_string(tokens->size()) + " tokens, expected " +
                           std::to_string(options_.seq_length + 1));
  }
  return Status::Ok();
}

}  // namespace trainer::data
