// Text and JSON output of a playbook run (see report.h). The formatting
// functions are pure, so tests compare strings; the reporters only add locking
// and the stream.
#include "playbooks/runner/report.h"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <sstream>

namespace coord::playbooks {

namespace {

std::string Pad(const std::string& s, size_t width, bool right_align) {
  if (s.size() >= width) return s;
  std::string fill(width - s.size(), ' ');
  return right_align ? fill + s : s + fill;
}

std::string Seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

bool ShowsMessage(TaskOutcome o) {
  return o == TaskOutcome::kFailed || o == TaskOutcome::kUnreachable || o == TaskOutcome::kAborted;
}

// The summary's columns: header and which outcomes it counts.
struct Column {
  const char* header;
  TaskOutcome outcome;
};

}  // namespace

std::string FormatTaskLine(const TaskResult& r, size_t host_width) {
  std::string where =
      r.index > 0 ? "[" + std::to_string(r.index) + "/" + std::to_string(r.total) + "] " + r.task
                  : "[" + r.task + "]";
  std::string line = Pad(r.host, host_width, false) + "  " + where + " ... " +
                     TaskOutcomeName(r.outcome) + " (" + Seconds(r.seconds) + ")\n";
  if (ShowsMessage(r.outcome) && !r.message.empty()) {
    std::istringstream in(r.message);
    for (std::string l; std::getline(in, l);) line += "    " + l + "\n";
  }
  return line;
}

std::string FormatSummary(const PlaybookResult& result) {
  bool any_aborted = std::any_of(result.hosts.begin(), result.hosts.end(),
                                 [](const HostResult& h) { return h.aborted; });
  std::vector<Column> columns = {
      {"ok", TaskOutcome::kOk},
      {result.check ? "would change" : "changed",
       result.check ? TaskOutcome::kWouldChange : TaskOutcome::kChanged},
      {"failed", TaskOutcome::kFailed},
      {"skipped", TaskOutcome::kSkipped},
      {"unreachable", TaskOutcome::kUnreachable},
  };
  if (any_aborted) columns.push_back({"aborted", TaskOutcome::kAborted});

  size_t host_width = 4;  // "host"
  for (const HostResult& h : result.hosts) host_width = std::max(host_width, h.host.size());
  std::string out = Pad("host", host_width, false);
  for (const Column& c : columns) out += std::string("  ") + c.header;
  out += "\n";
  int failed_hosts = 0;
  for (const HostResult& h : result.hosts) {
    OutcomeCounts counts = CountOutcomes(h);
    out += Pad(h.host, host_width, false);
    for (const Column& c : columns) {
      out += "  " + Pad(std::to_string(counts[c.outcome]), std::string(c.header).size(), true);
    }
    out += "\n";
    failed_hosts += h.ok() ? 0 : 1;
  }
  std::string hosts =
      std::to_string(result.hosts.size()) + " host" + (result.hosts.size() == 1 ? "" : "s");
  if (failed_hosts == 0) {
    out += "OK: " + hosts + (result.check ? " checked (check mode: nothing changed)" : "") + "\n";
  } else {
    out += "FAILED: " + std::to_string(failed_hosts) + " of " + hosts +
           " did not finish (failed, unreachable or aborted)\n";
  }
  if (result.aborted_by_max_fail) {
    out += "stopped: more than max_fail_percent=" + std::to_string(result.max_fail_percent) +
           "% of the hosts failed\n";
  }
  return out;
}

nlohmann::json ResultToJson(const PlaybookResult& result) {
  using nlohmann::json;
  json hosts = json::array();
  OutcomeCounts totals;
  int failed_hosts = 0;
  for (const HostResult& h : result.hosts) {
    OutcomeCounts counts = CountOutcomes(h);
    json jcounts = json::object();
    for (int i = 0; i < kTaskOutcomeCount; ++i) {
      auto o = static_cast<TaskOutcome>(i);
      jcounts[TaskOutcomeKey(o)] = counts[o];
      totals[o] += counts[o];
    }
    json tasks = json::array();
    for (const TaskResult& t : h.tasks) {
      tasks.push_back({{"index", t.index},
                       {"task", t.task},
                       {"outcome", TaskOutcomeKey(t.outcome)},
                       {"message", t.message},
                       {"seconds", t.seconds}});
    }
    failed_hosts += h.ok() ? 0 : 1;
    hosts.push_back({{"host", h.host},
                     {"ok", h.ok()},
                     {"failed", h.failed},
                     {"unreachable", h.unreachable},
                     {"aborted", h.aborted},
                     {"counts", jcounts},
                     {"facts", h.facts},
                     {"tasks", tasks}});
  }
  json jtotals = json::object();
  for (int i = 0; i < kTaskOutcomeCount; ++i) {
    auto o = static_cast<TaskOutcome>(i);
    jtotals[TaskOutcomeKey(o)] = totals[o];
  }
  jtotals["hosts"] = result.hosts.size();
  jtotals["failed_hosts"] = failed_hosts;
  return {{"playbook", result.playbook},
          {"check", result.check},
          {"ok", RunSucceeded(result)},
          {"aborted_by_max_fail", result.aborted_by_max_fail},
          {"max_fail_percent", result.max_fail_percent},
          {"seconds", result.seconds},
          {"totals", jtotals},
          {"hosts", hosts}};
}

void TextReporter::RunStarted(const RunInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  host_width_ = 0;
  for (const auto& h : info.hosts) host_width_ = std::max(host_width_, h.size());
  *out_ << (info.check ? "CHECK " : "RUN ") << info.playbook << ": " << info.task_count << " task"
        << (info.task_count == 1 ? "" : "s") << " on " << info.hosts.size() << " host"
        << (info.hosts.size() == 1 ? "" : "s") << "\n"
        << std::flush;
}

void TextReporter::TaskFinished(const TaskResult& result) {
  std::string line = FormatTaskLine(result, host_width_);
  std::lock_guard<std::mutex> lock(mu_);
  *out_ << line << std::flush;
}

void TextReporter::RunFinished(const PlaybookResult& result) {
  std::string summary = FormatSummary(result);
  std::lock_guard<std::mutex> lock(mu_);
  *out_ << "\n" << summary << std::flush;
}

void JsonReporter::RunFinished(const PlaybookResult& result) {
  *out_ << ResultToJson(result).dump(2) << "\n" << std::flush;
}

}  // namespace coord::playbooks
