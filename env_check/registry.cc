// The check table: every group in one order (the order of the report), and the
// runner that runs them all at once. Checks only read the node, so they are
// independent; running them in parallel bounds a run by its slowest check (the
// mount probe's deadline) rather than the sum.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "common/clock.h"

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

std::chrono::milliseconds RunDeadline(const CheckContext& ctx) {
  return std::max(ctx.probe_deadline, ctx.command_deadline) + std::chrono::seconds(2);
}

std::vector<CheckResult> RunAll(const CheckContext& ctx, std::shared_ptr<const System> sys) {
  // Every filesystem call and command is bounded already; this is the backstop for
  // what cannot be (an NVML or CUDA call into a wedged driver blocks in the kernel).
  // Each check runs on a detached thread that owns what it uses, so a hung one is
  // reported and left behind instead of holding the node's answer.
  struct Shared {
    std::mutex mu;
    std::condition_variable done;
    std::vector<std::optional<CheckResult>> results;
    size_t remaining = 0;
    CheckContext ctx;
  };
  const std::vector<Check>& checks = AllChecks();
  auto shared = std::make_shared<Shared>();
  shared->results.resize(checks.size());
  shared->remaining = checks.size();
  shared->ctx = ctx;
  for (size_t i = 0; i < checks.size(); ++i) {
    std::thread([shared, sys, i, &c = checks[i]] {
      CheckResult r = c.run(shared->ctx, *sys);
      if (r.id.empty()) r.id = c.id;
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->results[i] = std::move(r);
      if (--shared->remaining == 0) shared->done.notify_all();
    }).detach();
  }
  const std::chrono::milliseconds deadline = RunDeadline(ctx);
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->done.wait_for(lock, deadline, [&] { return shared->remaining == 0; });
  std::vector<CheckResult> results;
  results.reserve(checks.size());
  for (size_t i = 0; i < checks.size(); ++i) {
    if (shared->results[i]) {
      results.push_back(*shared->results[i]);
      continue;
    }
    CheckResult hung;
    hung.id = checks[i].id;
    hung.passed = false;
    hung.severity = Severity::kFail;
    hung.found = "did not finish within " + FormatSeconds(deadline);
    hung.hint =
        "a filesystem or driver call on this node hangs: look for a hung NFS mount "
        "(`dmesg | grep -i nfs`) or a wedged GPU driver (does `nvidia-smi` return?)";
    results.push_back(std::move(hung));
  }
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
