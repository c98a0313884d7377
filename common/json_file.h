// The one parser for JSON a user hands us: job specs (coordctl, coordd, env-check, the
// agent's CheckNode, gpt-rank), and files the trainer reads. Whatever the text holds, the
// result is a value or an INVALID_ARGUMENT naming the file, line:column, what is wrong
// and what to do; never an exception or a crash:
//   job.json:3:9: invalid JSON: the number 1e400 is out of range (...); write a smaller number
// Thread-safe (no state).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "common/status.h"

namespace coord {

// Deeper nesting is refused while parsing, before it is built. A job spec nests a handful
// of levels; without a bound, 100000 '[' is a recursion in whatever walks the value later
// (printing, dump(), the checks) and a stack overflow in the process that read it.
constexpr int kMaxJsonDepth = 64;

/// Parses `text`; `path` is for messages only. With `duplicate_keys`, the JSON path of
/// every key repeated in one object is appended there (nlohmann keeps the last silently,
/// so callers that care refuse them). Errors: INVALID_ARGUMENT, one line,
/// "path:line:column: invalid JSON: <what>[; <what to do>]".
StatusOr<nlohmann::json> ParseJson(const std::string& text, const std::string& path,
                                   std::vector<std::string>* duplicate_keys = nullptr);

/// ReadFile(path) then ParseJson; a read error keeps ReadFile's code and message.
StatusOr<nlohmann::json> LoadJsonFile(const std::string& path,
                                      std::vector<std::string>* duplicate_keys = nullptr);

/// Line and column (1-based, columns in characters) of a byte offset in text.
void OffsetToLineColumn(const std::string& text, size_t offset, int* line, int* column);

/// j.get<T>() for reading files a program wrote (journal, records, manifests), with the
/// range check get() lacks: it converts 1e300 or 2^63 to an int with undefined behaviour
/// and -1 to 2^64-1 for an unsigned. A number that does not fit T throws
/// nlohmann::json::out_of_range ("... 1e+300 does not fit int"); a value that is not a
/// number throws type_error, as get() does. Callers already turn json::exception into
/// an error naming the file. Floats in range are truncated, as get() does.
template <typename T>
T JsonGet(const nlohmann::json& j);

/// j.value(key, fallback) with JsonGet's check: `fallback` when `key` is absent.
template <typename T>
T JsonValue(const nlohmann::json& object, const char* key, T fallback) {
  auto it = object.find(key);
  return it == object.end() ? fallback : JsonGet<T>(*it);
}

/// JSON paths for messages: JsonChildPath("launch", "env") is "launch.env"; a key that is
/// not a plain word is quoted (launch.env["A B"]); JsonIndexPath("argv", 2) is "argv[2]".
std::string JsonChildPath(const std::string& parent, const std::string& key);
std::string JsonIndexPath(const std::string& parent, size_t index);

// ---------------------------------------------------------------------------
// Implementation

namespace json_internal {
[[noreturn]] void ThrowDoesNotFit(const nlohmann::json& j, const char* type);
template <typename T>
const char* TypeName() {
  if (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "float" : "double";
  if (std::is_signed_v<T>) return sizeof(T) == 8 ? "int64" : sizeof(T) == 4 ? "int32" : "int";
  return sizeof(T) == 8 ? "uint64" : sizeof(T) == 4 ? "uint32" : "unsigned";
}
}  // namespace json_internal

template <typename T>
T JsonGet(const nlohmann::json& j) {
  if constexpr (std::is_same_v<T, bool> || !std::is_arithmetic_v<T>) {
    return j.get<T>();
  } else {
    if (!j.is_number()) return j.get<T>();  // type_error, as get() throws
    if constexpr (std::is_floating_point_v<T>) {
      const double d = j.get<double>();
      if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
        json_internal::ThrowDoesNotFit(j, json_internal::TypeName<T>());
      }
      return static_cast<T>(d);
    } else {
      using Limits = std::numeric_limits<T>;
      if (j.is_number_unsigned()) {
        const uint64_t v = j.get<uint64_t>();
        if (v > static_cast<uint64_t>(Limits::max())) {
          json_internal::ThrowDoesNotFit(j, json_internal::TypeName<T>());
        }
        return static_cast<T>(v);
      }
      if (j.is_number_integer()) {
        const int64_t v = j.get<int64_t>();
        const bool fits = Limits::is_signed ? v >= static_cast<int64_t>(Limits::min()) &&
                                                  v <= static_cast<int64_t>(Limits::max())
                                            : v >= 0 && static_cast<uint64_t>(v) <=
                                                            static_cast<uint64_t>(Limits::max());
        if (!fits) json_internal::ThrowDoesNotFit(j, json_internal::TypeName<T>());
        return static_cast<T>(v);
      }
      // A float: in range means (-2^digits, 2^digits) for signed T, [0, 2^digits) else.
      const double d = j.get<double>();
      const double upper = std::ldexp(1.0, Limits::digits);
      const double lower = Limits::is_signed ? -upper : 0.0;
      if (!(d > lower - 1.0 && d < upper)) {
        json_internal::ThrowDoesNotFit(j, json_internal::TypeName<T>());
      }
      return static_cast<T>(d);
    }
  }
}

}  // namespace coord
