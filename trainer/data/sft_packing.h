// Supervised fine-tuning samples laid out as training rows of T positions: one sample
// per row (padded), or several packed into a row. A sample of n tokens fills n - 1
// positions (input ids[i], target ids[i + 1], trained[i + 1]). Packed samples keep
// their own position ids (restarting at 0) and segment ids (the sample's index in the
// row), so the model restarts RoPE and confines attention to each sample; padding is
// one more segment, never trained. Packing is best-fit decreasing (ms-swift's
// binpacking), deterministic. Pure functions; the rows are immutable afterwards.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "trainer/data/sft_dataset.h"

namespace trainer::data {

struct SftRows {
  int T = 0;
  int64_t rows = 0;
  // Each (rows, T), row-major.
  std::vector<int32_t> inputs, targets;
  std::vector<uint8_t> trained;        // 1: the target is an assistant token (loss on it)
  std::vector<int32_t> positions;      // position ids, 0 at each sample's first token
  std::vector<int32_t> segments;       // sample index within the row; padding the next one
  std::vector<int64_t> trained_count;  // (rows,) trained targets per row
  std::vector<int32_t> filled;         // (rows,) positions holding samples (the rest: padding)
};

// Rows of T positions from `samples` (each at most T + 1 tokens: InvalidArgument
// otherwise, naming the sample's line), padded with pad_id. pack: best-fit
// decreasing into as few rows as the lengths allow; else one sample per row, in order.
coord::StatusOr<SftRows> BuildSftRows(const std::vector<SftSample>& samples, int T, int32_t pad_id,
                                      bool pack);

}  // namespace trainer::data
