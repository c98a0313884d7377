// Test support: reads a TFRecord file back record by record, checking both masked
// CRCs, and decodes TensorBoard events. (The end-to-end test reads gpt-rank's files
// with independent readers: Python's protobuf and the npm tfrecord package.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fs.h"
#include "proto/tensorboard/event.pb.h"
#include "trainer/tensorboard/crc32c.h"

namespace trainer::tensorboard::testing {

struct Records {
  std::vector<std::string> data;
  std::string error;  // "" when every byte of the file is whole, verified records
};

inline uint32_t Le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

inline Records ReadRecords(const std::string& path) {
  Records out;
  auto text = coord::ReadFile(path);
  if (!text.ok()) {
    out.error = text.status().ToString();
    return out;
  }
  const std::string& s = *text;
  size_t at = 0;
  while (at < s.size()) {
    if (s.size() - at < 12) {
      out.error = "torn header at byte " + std::to_string(at);
      return out;
    }
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
    if (Le32(s, at + 8) != MaskCrc32c(Crc32c(s.data() + at, 8))) {
      out.error = "bad length CRC at byte " + std::to_string(at);
      return out;
    }
    if (s.size() - at - 12 < len + 4) {
      out.error = "torn record at byte " + std::to_string(at);
      return out;
    }
    const std::string data = s.substr(at + 12, len);
    if (Le32(s, at + 12 + len) != MaskCrc32c(Crc32c(data.data(), data.size()))) {
      out.error = "bad data CRC at byte " + std::to_string(at);
      return out;
    }
    out.data.push_back(data);
    at += 12 + len + 4;
  }
  return out;
}

inline std::vector<::tensorboard::Event> ReadEvents(const std::string& path, std::string* error) {
  std::vector<::tensorboard::Event> events;
  Records r = ReadRecords(path);
  *error = r.error;
  for (const std::string& d : r.data) {
    events.emplace_back();
    if (!events.back().ParseFromString(d)) *error = "record does not parse as an Event";
  }
  return events;
}

}  // namespace trainer::tensorboard::testing
