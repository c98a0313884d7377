// Megatron's mmap indexed dataset (MMIDIDX), as MMapIndexedDataset in
// megatron/data/indexed_dataset.py writes and reads it:
//   prefix.idx: "MMIDIDX\0\0", u64 version = 1, u8 dtype code, u64 sequence count N,
//               u64 doc_idx length D + 1, int32 sizes[N], int64 pointers[N] (byte
//               offsets into .bin), int64 doc_idx[D + 1] (first sequence of each
//               document, then N); all little-endian, packed (the header is 34 bytes).
//   prefix.bin: the tokens of all sequences back to back, in the dtype.
// Reader: read-only after Open, so one instance may be shared by threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace trainer::data {

// Codes of Megatron's `dtypes` table. 6 and 7 are both float64 in the Megatron-LM /
// Megatron-DeepSpeed of this format (np.float, np.double) but 7 is float32 in
// megatron.core; neither holds token ids, so the reader refuses both.
enum class DType : uint8_t {
  kUint8 = 1,
  kInt8 = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kFloat64 = 6,
  kDouble = 7,
  kUint16 = 8,
};
const char* DTypeName(DType dtype);  // numpy's name: "uint16", ...
int DTypeSize(DType dtype);          // bytes per element
// Megatron's best_fitting_dtype(vocab_size): uint16 when vocab_size < 65500, else int32.
DType BestFittingDType(int64_t vocab_size);

inline std::string IndexPath(const std::string& prefix) { return prefix + ".idx"; }
inline std::string DataPath(const std::string& prefix) { return prefix + ".bin"; }

// MMapIndexedDatasetBuilder: add_item / end_document / finalize. Writes to
// temporary names and renames them into place in Finalize (.bin first, .idx
// last), so readers never see a half-written dataset under the final names; a
// builder destroyed before Finalize removes its temporaries.
class IndexedDatasetBuilder {
 public:
  static coord::StatusOr<std::unique_ptr<IndexedDatasetBuilder>> Create(const std::string& prefix,
                                                                        DType dtype);
  ~IndexedDatasetBuilder();

  // Appends one sequence (a sentence, or a whole document without sentence
  // splitting). Ids that do not fit the dtype are an error (Megatron would wrap).
  coord::Status AddItem(const int32_t* tokens, size_t count);
  coord::Status AddItem(const std::vector<int32_t>& tokens) {
    return AddItem(tokens.data(), tokens.size());
  }
  // Closes the current document: the sequences added since the last call form it.
  void EndDocument() { doc_idx_.push_back(static_cast<int64_t>(sizes_.size())); }
  coord::Status Finalize();

  int64_t num_sequences() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t num_tokens() const { return num_tokens_; }

 private:
  IndexedDatasetBuilder(std::string prefix, DType dtype);
  coord::Status Flush();

  std::string prefix_;
  DType dtype_;
  std::string bin_tmp_, idx_tmp_;
  int bin_fd_ = -1;
  std::string pending_;           // encoded tokens not yet written to bin_fd_
  std::vector<int32_t> sizes_;    // (N) tokens per sequence
  std::vector<int64_t> doc_idx_;  // (D + 1) starts at 0
  int64_t num_tokens_ = 0;
  bool finalized_ = false;
};

// MMapIndexedDataset: both files mapped read-only; Open checks the header, the
// index size, the pointers and the .bin size, so later reads need no checks.
class IndexedDataset {
 public:
  static coord::StatusOr<std::unique_ptr<IndexedDataset>> Open(const std::string& prefix);
  ~IndexedDataset();
  IndexedDataset(const IndexedDataset&) = delete;
  IndexedDataset& operator=(const IndexedDataset&) = delete;

  const std::string& prefix() const { return prefix_; }
  DType dtype() const { return dtype_; }
  int64_t num_sequences() const { return num_sequences_; }      // len(sizes)
  int64_t num_documents() const { return doc_idx_count_ - 1; }  // len(doc_idx) - 1
  int64_t num_tokens() const { return num_tokens_; }
  int32_t size(int64_t i) const;     // sizes[i], tokens of sequence i
  int64_t pointer(int64_t i) const;  // pointers[i], byte offset of sequence i in .bin
  int64_t doc_idx(int64_t d) const;  // doc_idx[d], d in [0, num_documents()]

  // Megatron's get(idx, offset, length): appends `length` tokens of sequence
  // `idx` from `offset` (length < 0: to the end of the sequence).
  coord::Status Get(int64_t idx, int64_t offset, int64_t length, std::vector<int32_t>* out) const;

 private:
  explicit IndexedDataset(std::string prefix) : prefix_(std::move(prefix)) {}
  coord::Status OpenIndex();
  coord::Status OpenData();

  std::string prefix_;
  DType dtype_ = DType::kInt32;
  int64_t num_sequences_ = 0;
  int64_t doc_idx_count_ = 0;
  int64_t num_tokens_ = 0;
  // The mappings; the index arrays start at unaligned offsets, so they are read
  // through memcpy (one unaligned load on x86/arm64), never cast to int32_t*.
  const char* idx_map_ = nullptr;
  size_t idx_bytes_ = 0;
  const char* bin_map_ = nullptr;
  size_t bin_bytes_ = 0;
  const char* sizes_ = nullptr;     // int32 (N)
  const char* pointers_ = nullptr;  // int64 (N)
  const char* doc_idx_ = nullptr;   // int64 (D + 1)
};

}  // namespace trainer::data
