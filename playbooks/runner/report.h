// What `coordctl provision` prints: one line per host and task as each
// finishes, then a summary table (TextReporter), or only one JSON document of
// the whole PlaybookResult at the end (JsonReporter, --json).
//
// Contract for every Reporter: RunStarted and RunFinished are called on the
// thread that called RunPlaybook, TaskFinished from the pool's threads at the
// same time; implementations serialize their own output.
#pragma once

#include <iosfwd>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "playbooks/runner/runner.h"

namespace coord::playbooks {

struct RunInfo {
  std::string playbook;
  std::vector<std::string> hosts;  // inventory order
  int task_count = 0;
  bool check = false;
};

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void RunStarted(const RunInfo& info) {}
  virtual void TaskFinished(const TaskResult& result) {}
  virtual void RunFinished(const PlaybookResult& result) {}
};

// "node01  [2/5] Install NFS client ... changed (3.2 s)"; the host column is as
// wide as the longest inventory name. Failed, unreachable and aborted results
// are followed by their message, each line indented by 4 spaces.
std::string FormatTaskLine(const TaskResult& result, size_t host_width);

// The table (host | ok | changed | failed | skipped | unreachable [| aborted])
// in inventory order, right-aligned counts, then one verdict line. In check
// mode the "changed" column is headed "would change".
std::string FormatSummary(const PlaybookResult& result);

// The whole result: {"playbook", "check", "ok", "aborted_by_max_fail",
// "max_fail_percent", "seconds", "totals": {outcome key: n, "hosts", "failed_hosts"},
// "hosts": [{"host", "ok", "failed", "unreachable", "aborted", "counts", "facts",
// "tasks": [{"index", "task", "outcome", "message", "seconds"}]}]}.
nlohmann::json ResultToJson(const PlaybookResult& result);

class TextReporter : public Reporter {
 public:
  explicit TextReporter(std::ostream* out) : out_(out) {}
  void RunStarted(const RunInfo& info) override;
  void TaskFinished(const TaskResult& result) override;
  void RunFinished(const PlaybookResult& result) override;

 private:
  std::mutex mu_;
  std::ostream* out_;      // guarded by mu_
  size_t host_width_ = 0;  // set by RunStarted, before any TaskFinished
};

class JsonReporter : public Reporter {
 public:
  explicit JsonReporter(std::ostream* out) : out_(out) {}
  void RunFinished(const PlaybookResult& result) override;

 private:
  std::ostream* out_;
};

}  // namespace coord::playbooks
