// How a node's check results are shown: a table for people, JSON for the agent
// and scripts, and the env-check exit code.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "env_check/check.h"

namespace coord::env_check {

// One line per check ("ok", "WARN", "FAIL", "INFO" then id and what was found),
// and for each miss an "expected:" and a "fix:" line under it.
std::string FormatTable(const std::vector<CheckResult>& results);

// [{"id", "passed", "severity", "found", "expected", "hint", "facts": {...}}, ...]
nlohmann::json ToJson(const std::vector<CheckResult>& results);

// 0: everything passed; 1: only WARN/INFO misses; 2: any FAIL.
int ExitCode(const std::vector<CheckResult>& results);

}  // namespace coord::env_check
