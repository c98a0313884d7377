// Shared helpers for the checkpoint tests: a self-deleting temp directory and small
// file edits (flip a byte, truncate) that simulate corruption and crashes.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "common/fs.h"

namespace trainer::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ckpt_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)coord::RemoveTree(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return coord::JoinPath(path_, name); }

 private:
  std::string path_;
};

inline void FlipByte(const std::string& path, long offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(offset);
  f.write(&c, 1);
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace trainer::testing
