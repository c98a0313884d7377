// Deterministic column reductions for the CPU kernels. Rows are split into a fixed
// number of chunks that does not depend on the thread count; each chunk is summed
// in row order and the chunk partials are added in chunk order. So a bias or
// LayerNorm gradient is bitwise the same for any OMP_NUM_THREADS (no atomics).
#pragma once

#include <cstddef>

namespace kernels::cpu {

// Loops with less work than this run on one thread: an OpenMP fork/join costs more
// than it saves there (and much more on a loaded machine). Results do not change,
// since no kernel's arithmetic depends on the thread count.
inline constexpr long long kParallelMinWork = 1 << 15;

// Number of row chunks used by every reduction over the (B*T) rows.
inline int reduce_num_chunks(int rows) { return rows < 32 ? (rows < 1 ? 1 : rows) : 32; }
inline int reduce_chunk_begin(int rows, int nchunks, int chunk) {
  return static_cast<int>(static_cast<long long>(rows) * chunk / nchunks);
}

// out (cols,) += sum over rows of inp (rows, cols).
void column_sum_accumulate(float* out, const float* inp, int rows, int cols);

}  // namespace kernels::cpu
