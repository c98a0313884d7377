// Reading `coordctl status --json` (protobuf's JSON mapping) in tests.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace coord::testing {

// An int64 field: protobuf's JSON writes 64-bit integers as strings. 0 when absent.
inline int64_t JsonInt64(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return 0;
  const nlohmann::json& v = j[key];
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

}  // namespace coord::testing
