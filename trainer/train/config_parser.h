// The problem collector shared by trainer_config.cc (Megatron's sections) and
// deepspeed_config.cc (DeepSpeed's blocks): typed field readers that record one
// "file: json.path: what was expected, got X" line per problem instead of throwing.
// Internal to trainer_train; single-threaded (one parse per call).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/job_spec.h"

namespace gpt_rank::train {

// The value as written, cut to 60 characters (a message must stay one readable line).
inline std::string Shown(const nlohmann::json& v) {
  constexpr size_t kMaxShown = 60;
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() <= kMaxShown ? s : s.substr(0, kMaxShown) + "...";
}

// A key accepted under an older or misspelled name: read as `canonical`, with a
// warning that names it. `canonical` empty: a real key of DeepSpeed's with no effect
// in gpt-rank (accepted so pasted configs load; the warning says it is ignored).
struct LegacyKey {
  const char* name;
  const char* canonical;
  const char* note;  // appended to the warning
};

class ConfigParser {
 public:
  using json = nlohmann::json;
  explicit ConfigParser(std::string path) : path_(std::move(path)) {}

  void Error(const std::string& where, const std::string& what) {
    errors_.push_back(path_ + ": " + where + ": " + what);
  }
  void Warn(const std::string& where, const std::string& what) {
    warnings_.push_back(path_ + ": " + where + ": " + what);
  }

  // The object `obj[name]` (nullptr when absent or not an object, the latter an
  // error). Unknown keys are errors with a did-you-mean, as Megatron's argparse and
  // DeepSpeed's pydantic models (extra="forbid") refuse them: a misspelled key would
  // otherwise silently train something else. `legacy` keys are warnings instead.
  // `where` is the JSON path of the object ("zero_optimization.offload_param").
  const json* Section(const json& obj, const std::string& name, const std::string& where,
                      const std::vector<std::string>& keys,
                      const std::vector<LegacyKey>& legacy = {}) {
    auto it = obj.find(name);
    if (it == obj.end()) return nullptr;
    if (!it->is_object()) {
      Error(where, "expected an object, got " + Shown(*it));
      return nullptr;
    }
    for (auto k = it->begin(); k != it->end(); ++k) {
      if (std::find(keys.begin(), keys.end(), k.key()) != keys.end()) continue;
      auto old = std::find_if(legacy.begin(), legacy.end(),
                              [&](const LegacyKey& l) { return k.key() == l.name; });
      if (old != legacy.end()) {
        Warn(where + "." + k.key(), old->note);
        continue;
      }
      std::string guess = coord::DidYouMean(k.key(), keys);
      Error(where + "." + k.key(),
            "unknown key" + (guess.empty() ? std::string("; remove it")
                                           : "; did you mean " + guess + "?"));
    }
    return &*it;
  }
  const json* Section(const json& root, const std::string& name,
                      const std::vector<std::string>& keys,
                      const std::vector<LegacyKey>& legacy = {}) {
    return Section(root, name, name, keys, legacy);
  }

  // An integer >= min (floats and strings refused, never truncated).
  template <typename T>
  void Int(const json* sec, const std::string& sec_name, const char* key, int64_t min,
           const std::string& expected, T* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    const std::string where = Where(sec_name, key);
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() &&
         v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      std::string msg = "expected " + expected + ", got " + Shown(*v);
      if (v->is_number_float() && std::isfinite(v->get<double>()) &&
          v->get<double>() == std::floor(v->get<double>()) && std::fabs(v->get<double>()) < 1e15) {
        msg += "; write " + std::to_string(static_cast<long long>(v->get<double>()));
      }
      Error(where, msg);
      return;
    }
    const int64_t value = v->get<int64_t>();
    if (value < min || value < 0 ||
        static_cast<uint64_t>(value) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      Error(where, "expected " + expected + ", got " + Shown(*v));
      return;
    }
    *out = static_cast<T>(value);
  }

  // A count of elements as DeepSpeed writes them: an integer, or a whole number in
  // float notation (5e8, 1e9), in [0, 2^53] so it converts exactly.
  void Count(const json* sec, const std::string& sec_name, const char* key, int64_t* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    constexpr double kMax = 9007199254740992.0;  // 2^53
    const bool whole = v->is_number() && std::isfinite(v->get<double>()) &&
                       v->get<double>() == std::floor(v->get<double>()) &&
                       v->get<double>() >= 0 && v->get<double>() <= kMax;
    if (!whole || (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0)) {
      Error(Where(sec_name, key),
            "expected a non-negative whole number of elements (e.g. 5e8), got " + Shown(*v));
      return;
    }
    *out = v->is_number_integer() ? v->get<int64_t>() : static_cast<int64_t>(v->get<double>());
  }

  // A finite number in [min, max] (open at min when min_exclusive).
  template <typename T>
  void Number(const json* sec, const std::string& sec_name, const char* key, double min,
              bool min_exclusive, double max, const std::string& expected, T* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    const std::string where = Where(sec_name, key);
    if (!v->is_number() || !std::isfinite(v->get<double>())) {
      Error(where, "expected " + expected + ", got " + Shown(*v));
      return;
    }
    const double d = v->get<double>();
    if (d < min || (min_exclusive && d == min) || d > max) {
      Error(where, "expected " + expected + ", got " + Shown(*v));
      return;
    }
    *out = static_cast<T>(d);
  }

  void String(const json* sec, const std::string& sec_name, const char* key, bool expand,
              std::string* out);

  void Bool(const json* sec, const std::string& sec_name, const char* key, bool* out) {
    const json* v = Find(sec, key);
    if (v == nullptr) return;
    if (!v->is_boolean()) {
      Error(Where(sec_name, key), "expected true or false, got " + Shown(*v));
      return;
    }
    *out = v->get<bool>();
  }

  static std::string Where(const std::string& sec_name, const char* key) {
    return sec_name.empty() ? std::string(key) : sec_name + "." + key;
  }

  static const json* Find(const json* sec, const char* key) {
    if (sec == nullptr) return nullptr;
    auto it = sec->find(key);
    return it == sec->end() ? nullptr : &*it;
  }

  const std::string& path() const { return path_; }
  std::vector<std::string>& errors() { return errors_; }
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  std::string path_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

}  // namespace gpt_rank::train
