// The check table: every group in one order (the order of the report), and the
// runner that runs them all at once. Checks only read the node, so they are
// independent; running them in parallel bounds a run by its slowest check (the
// mount probe's deadline) rather than the sum.
#include <future>

#include "env_check/check.h"

namespace coord::env_check {

const std::vector<Check>& AllChecks() {
  static const std::vector<Check> k = [] {
    std::vector<Check> all;
    for (const std::vector<Check>* group : {&SystemChecks(), &MountChecks(), &NetworkChecks(),
                                            &SoftwareChecks(), &GpuChecks(), &CudaChecks()})
      all.insert(all.end(), group->begin(), group->end());
    return all;
  }();
  return k;
}

std::vector<CheckResult> RunAll(const CheckContext& ctx, const System& sys) {
  const std::vector<Check>& checks = AllChecks();
  std::vector<std::future<CheckResult>> running;
  running.reserve(checks.size());
  for (const Check& c : checks) {
    running.push_back(std::async(std::launch::async, [&ctx, &sys, &c] {
      CheckResult r = c.run(ctx, sys);
      if (r.id.empty()) r.id = c.id;
      return r;
    }));
  }
  std::vector<CheckResult> results;
  results.reserve(checks.size());
  for (auto& f : running) results.push_back(f.get());
  return results;
}

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "INFO";
    case Severity::kWarn:
      return "WARN";
    case Severity::kFail:
      return "FAIL";
  }
  return "?";
}

}  // namespace coord::env_check
