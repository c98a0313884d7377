// Shorthand for building a CheckResult in checks/*.cc (facts are added after).
#pragma once

#include <string>
#include <utility>

#include "env_check/check.h"

namespace coord::env_check {

inline CheckResult Result(std::string id, bool passed, Severity severity, std::string found,
                          std::string expected = "", std::string hint = "") {
  CheckResult r;
  r.id = std::move(id);
  r.passed = passed;
  r.severity = severity;
  r.found = std::move(found);
  r.expected = std::move(expected);
  r.hint = std::move(hint);
  return r;
}

}  // namespace coord::env_check
