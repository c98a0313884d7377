#include "env_check/report.h"

#include <algorithm>

namespace coord::env_check {

std::string FormatTable(const std::vector<CheckResult>& results) {
  size_t id_width = 2;
  for (const CheckResult& r : results) id_width = std::max(id_width, r.id.size());
  auto pad = [](std::string s, size_t w) {
    s.resize(std::max(s.size(), w), ' ');
    return s;
  };
  std::string out = pad("STATUS", 7) + pad("ID", id_width + 2) + "FOUND\n";
  const std::string indent(7 + id_width + 2, ' ');
  for (const CheckResult& r : results) {
    std::string status = r.passed ? "ok" : SeverityName(r.severity);
    out += pad(status, 7) + pad(r.id, id_width + 2) + r.found + "\n";
    if (r.passed) continue;
    if (!r.expected.empty()) out += indent + "expected: " + r.expected + "\n";
    if (!r.hint.empty()) out += indent + "fix:      " + r.hint + "\n";
  }
  return out;
}

nlohmann::json ToJson(const std::vector<CheckResult>& results) {
  nlohmann::json arr = nlohmann::json::array();
  for (const CheckResult& r : results) {
    nlohmann::json facts = nlohmann::json::object();
    for (const auto& [k, v] : r.facts) facts[k] = v;
    arr.push_back({{"id", r.id},
                   {"passed", r.passed},
                   {"severity", SeverityName(r.severity)},
                   {"found", r.found},
                   {"expected", r.expected},
                   {"hint", r.hint},
                   {"facts", facts}});
  }
  return arr;
}

int ExitCode(const std::vector<CheckResult>& results) {
  int code = 0;
  for (const CheckResult& r : results) {
    if (r.passed || r.severity == Severity::kInfo) continue;  // INFO is only recorded
    if (r.severity == Severity::kFail) return 2;
    code = 1;
  }
  return code;
}

}  // namespace coord::env_check
