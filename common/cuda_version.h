// CUDA's version integers in words, for the node checks and gpt-rank's device errors.
#pragma once

#include <string>

namespace coord {

// 12040 -> "12.4" (CUDA encodes 1000 * major + 10 * minor).
inline std::string CudaVersionString(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace coord
