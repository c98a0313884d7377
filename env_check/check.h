// env_check: what a node must have before a job starts on it. A check is a row
// in a table (registry.cc): an id, a function that inspects this node, and the
// severity of a miss. Results say what was found, what was expected and how to
// fix it. The agent runs the table before launch; `env-check` runs it by hand.
#pragma once

#include <string>
#include <vector>

namespace coord::env_check {

enum class Severity { kInfo, kWarn, kFail };

struct CheckResult {
  std::string id;
  bool passed = true;
  Severity severity = Severity::kInfo;  // what a miss means (FAIL blocks a launch)
  std::string found;
  std::string expected;
  std::string hint;  // how to fix it, for a person
};

struct CheckContext {
  std::string shared_path;         // the CFS mount the job uses ("" = not checked)
  std::string checkpoint_dir;      // where checkpoints go ("" = not checked)
  long min_shm_bytes = 1L << 30;   // NCCL needs a large /dev/shm
  long min_free_disk_bytes = 10L << 30;
};

struct Check {
  const char* id;
  const char* what;  // one line for --list
  CheckResult (*run)(const CheckContext& ctx);
};

const std::vector<Check>& AllChecks();
std::vector<CheckResult> RunAll(const CheckContext& ctx);
const char* SeverityName(Severity s);

}  // namespace coord::env_check
