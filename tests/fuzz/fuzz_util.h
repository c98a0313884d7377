// Shared bits of the libFuzzer harnesses (one per parser, tests/fuzz/*_fuzz.cc): a
// scratch directory for the parsers whose API takes a path (tmpfs when there is one,
// removed at exit) and the input as a string. Single-threaded, like libFuzzer's loop.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace coord::fuzz {

inline std::string AsString(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Created on first use, under $COORD_FUZZ_TMPDIR (scripts/fuzz.sh removes that at its end,
// so a harness that crashed leaves nothing behind), else /dev/shm or /tmp; libFuzzer's
// workers (-jobs) each get their own. Never destroyed: the atexit handler that removes it
// runs after static destructors registered later.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* env = getenv("COORD_FUZZ_TMPDIR");
    const char* base = env != nullptr && *env != '\0'  ? env
                       : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                       : "/tmp";
    auto* pattern = new std::string(std::string(base) + "/coord-fuzz-XXXXXX");
    if (mkdtemp(pattern->data()) == nullptr) abort();
    atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return pattern;
  }();
  return *dir;
}

// Writes `contents` to ScratchDir()/name (a relative path; its folders are created)
// and returns the full path.
inline std::string WriteScratch(const std::string& name, const std::string& contents) {
  const std::filesystem::path path = std::filesystem::path(ScratchDir()) / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) abort();
  return path.string();
}

// Splits `text` at the first `separator`: the part before goes to *first, the rest to
// *second. Without one, everything is *first and *second is `fallback`. Lets one input
// carry two files (vocab.json + merges.txt, a manifest + its state).
inline void SplitInput(const std::string& text, const std::string& separator, std::string* first,
                       std::string* second, const std::string& fallback) {
  const size_t at = text.find(separator);
  if (at == std::string::npos) {
    *first = text;
    *second = fallback;
  } else {
    *first = text.substr(0, at);
    *second = text.substr(at + separator.size());
  }
}

}  // namespace coord::fuzz
