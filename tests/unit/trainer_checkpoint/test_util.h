// Helpers for the checkpoint tests: small file edits (flip a byte) that simulate
// corruption. Temp directories and whole-file writes come from tests/support.
#pragma once

#include <fstream>
#include <string>

namespace trainer::testing {

inline void FlipByte(const std::string& path, long offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(offset);
  f.write(&c, 1);
}

}  // namespace trainer::testing
