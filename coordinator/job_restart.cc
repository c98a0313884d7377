// JobManager's restart path: after a failure with restarts left (FailLocked put the job in
// RESTARTING), kill the failed generation on every node and confirm it gone, re-check the
// node that failed, replace a node that is gone or unhealthy by a spare from the hosts
// file (or, elastic, continue without it; else wait for it to come back), then launch
// generation n+1 after the backoff. A kill at any point ends it: no generation is started
// after a kill.
#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/logging.h"
#include "coordinator/cluster_check.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_manager_internal.h"
#include "coordinator/job_state.h"
#include "coordinator/node_state.h"

namespace coord::coordinator {

namespace agent = coord::agent;
using internal::Join;

namespace {

// A node with no replacement gets this long to come back (agent restarted, network
// healed) before the job fails.
constexpr int kNodeWaitMs = 10 * 60 * 1000;
constexpr int kMinWaitStepMs = 200;
// Asking a node that is down is cheap (refused at once, or one call waiting on a frozen
// agent), and a node that comes back should not wait long to be noticed.
constexpr int kMaxWaitStepMs = 1000;
// A left-out node may stay cut off for hours: each try costs one call that waits out
// connect_timeout_ms, so ask a little less often than for a node a restart waits for.
constexpr int kMaxLeftOutStepMs = 2000;

bool FailureOfANode(const Failure& f) {
  return f.node_rank() >= 0 && (f.kind() == FAILURE_RANK_EXIT || f.kind() == FAILURE_NODE_LOST ||
                                f.kind() == FAILURE_LAUNCH);
}

}  // namespace

std::map<std::string, std::string> JobManager::RecheckNodes(const std::string& job_id,
                                                            const std::vector<HostEntry>& hosts) {
  ClusterCheckRequest check;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const JobPlan& plan = FindLocked(job_id)->plan;
    check.hosts = hosts;
    check.config_json = plan.config_json;
    check.config_path = plan.config_path;
    check.env = plan.env;
    check.workdir = plan.workdir;
    check.connect_timeout_ms = options_.connect_timeout_ms;
    for (const HostEntry& h : hosts) check.clients.push_back(links_.at(h.Target())->client.get());
  }
  std::map<std::string, std::string> failed;
  StatusOr<env_check::ClusterReport> report = RunClusterCheck(check);
  if (!report.ok()) {
    // The spec was checked at submit; a check that cannot run says nothing about a node.
    LOG_WARN << "job " << job_id << ": re-check not run: " << report.status().ToString();
    return failed;
  }
  for (size_t i = 0; i < report->nodes.size(); ++i) {
    const env_check::NodeReport& n = report->nodes[i];
    // A node that does not answer is the kill's to confirm (and to wait for), not a
    // failed check: it is back as soon as its agent is.
    if (!n.reachable) continue;
    std::vector<std::string> why;
    for (const env_check::CheckResult& r : n.results) {
      if (!r.passed && r.severity == env_check::Severity::kFail) {
        why.push_back(r.id + ": " + r.found +
                      (r.expected.empty() ? "" : " (expected " + r.expected + ")"));
      }
    }
    if (why.empty()) continue;
    failed[hosts[i].Target()] = Join(why, "; ");
    LOG_WARN << "job " << job_id << ": " << hosts[i].Target()
             << " failed its re-check: " << failed[hosts[i].Target()];
  }
  return failed;
}

std::vector<HostEntry> JobManager::LiveSpares(const std::string& job_id) {
  std::vector<HostEntry> candidates;
  std::vector<AgentClient*> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Job& job = *FindLocked(job_id);
    candidates = internal::SparesIn(job.plan, job.status, NODE_SPARE);
    for (const HostEntry& h : candidates) clients.push_back(links_.at(h.Target())->client.get());
  }
  std::vector<bool> alive(candidates.size(), false);
  if (!candidates.empty()) {
    internal::ParallelFor(static_cast<int>(candidates.size()), [&](int i) {
      alive[static_cast<size_t>(i)] =
          clients[static_cast<size_t>(i)]->Ping(options_.connect_timeout_ms).ok();
    });
  }
  std::vector<HostEntry> out;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (alive[i]) out.push_back(candidates[i]);
  }
  return out;
}

// The nodes that were not confirmed gone or failed their re-check: what a new layout
// must do without (or wait for).
std::set<std::string> JobManager::RestartProgress::Bad() const {
  std::set<std::string> bad = unconfirmed;
  for (const auto& [target, why] : check_failed) bad.insert(target);
  return bad;
}

void JobManager::Restart(const std::string& job_id, int failed, int grace_ms, int backoff_ms) {
  const int64_t t0 = clock_->MonoMs();
  RestartProgress progress;
  if (!KillAndRecheck(job_id, failed, grace_ms, &progress)) return;
  const int64_t kill_ms = clock_->MonoMs() - t0;
  Relayout layout;
  if (!ChooseLayout(job_id, failed, grace_ms, backoff_ms, &progress, &layout)) return;
  RelaunchAfterBackoff(job_id, failed, t0 + backoff_ms, kill_ms, std::move(layout));
}

bool JobManager::KillAndRecheck(const std::string& job_id, int failed, int grace_ms,
                                RestartProgress* progress) {
  std::vector<HostEntry> suspects, lost, others;
  {
    // A launch still in flight kills its own generation once its RPCs return; wait for
    // that, so this kill cannot overtake one of its Launch calls.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || !FindLocked(job_id)->launching; });
    if (stopping_) return false;
    Job& job = *FindLocked(job_id);
    const Failure& f = job.status.failure();
    progress->recheck = !job.plan.skip_checks;
    if (FailureOfANode(f) && f.node_rank() < static_cast<int>(job.plan.hosts.size())) {
      suspects.push_back(job.plan.hosts[static_cast<size_t>(f.node_rank())]);
    }
    for (size_t n = 0; n < job.plan.hosts.size(); ++n) {
      const NodeState state = job.status.nodes(static_cast<int>(n)).state();
      (state == NODE_LOST || state == NODE_UNREACHABLE ? lost : others).push_back(job.plan.hosts[n]);
    }
  }
  // In parallel: the kill (which waits out the grace), the kill on nodes already known
  // to be gone (a short deadline: a frozen agent accepts the call and never answers),
  // and the re-check of the failed node.
  KillOutcome killed, killed_lost;
  std::thread lost_kill([&] {
    if (!lost.empty()) {
      killed_lost = KillOn(job_id, lost, failed, grace_ms, grace_ms + options_.connect_timeout_ms);
    }
  });
  std::thread checker([&] {
    if (progress->recheck && !suspects.empty()) {
      progress->check_failed = RecheckNodes(job_id, suspects);
    }
  });
  if (!others.empty()) killed = KillOn(job_id, others, failed, grace_ms, 0);
  lost_kill.join();
  checker.join();
  progress->unconfirmed.insert(killed.unconfirmed.begin(), killed.unconfirmed.end());
  progress->unconfirmed.insert(killed_lost.unconfirmed.begin(), killed_lost.unconfirmed.end());
  return true;
}

std::vector<HostEntry> JobManager::SparesThatPassTheirChecks(const std::string& job_id,
                                                             bool recheck) {
  std::vector<HostEntry> spares = LiveSpares(job_id);
  if (!recheck || spares.empty()) return spares;
  // A spare must pass the same checks as the node it replaces.
  std::map<std::string, std::string> spare_failed = RecheckNodes(job_id, spares);
  std::lock_guard<std::mutex> lock(mu_);
  for (NodeStatus& s : *FindLocked(job_id)->status.mutable_spares()) {
    if (spare_failed.count(s.host() + ":" + std::to_string(s.port()))) {
      SetNodeState(job_id, &s, NODE_EXCLUDED);
    }
  }
  spares.erase(std::remove_if(spares.begin(), spares.end(),
                              [&](const HostEntry& h) { return spare_failed.count(h.Target()); }),
               spares.end());
  return spares;
}

void JobManager::SayWaitingLocked(Job& job, const Relayout& layout,
                                  const RestartProgress& progress) {
  std::vector<std::string> reasons;
  for (const std::string& t : layout.waiting_for) {
    auto it = progress.check_failed.find(t);
    reasons.push_back(t + (it != progress.check_failed.end()
                               ? " (failed its checks: " + it->second + ")"
                               : " (kill not confirmed)"));
  }
  const std::string what = "waiting for " + Join(reasons, ", ") + ": no spare node in " +
                           job.plan.hosts_path + " to replace it";
  LOG_WARN << "job " << job.status.job_id() << ": " << what;
  job.status.set_message(what);
  UpdateFailureLocked(job, [&](Failure* f) { f->set_action(f->action() + "; " + what); });
}

bool JobManager::ChooseLayout(const std::string& job_id, int failed, int grace_ms,
                              int backoff_ms, RestartProgress* progress, Relayout* layout) {
  const int64_t give_up = clock_->MonoMs() + kNodeWaitMs;
  int step_ms = std::max(backoff_ms, kMinWaitStepMs);
  std::string waiting_said;
  for (;;) {
    const std::set<std::string> bad = progress->Bad();
    std::vector<HostEntry> spares;
    if (!bad.empty()) spares = SparesThatPassTheirChecks(job_id, progress->recheck);
    std::vector<HostEntry> retry_kill, retry_check;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Job& job = *FindLocked(job_id);
      if (stopping_ || job.status.state() != RESTARTING) return false;  // killed meanwhile
      *layout = ChooseNodes(job.plan, bad, spares);
      if (layout->waiting_for.empty()) return true;
      if (clock_->MonoMs() >= give_up) {
        Failure f;
        f.set_rank(-1);
        f.set_kind(progress->check_failed.empty() ? FAILURE_NODE_LOST : FAILURE_NODE_CHECK);
        f.set_message("gave up waiting " + std::to_string(kNodeWaitMs / 1000) + " s for " +
                      Join(layout->waiting_for, ", ") + " to come back (no spare in " +
                      job.plan.hosts_path +
                      "; launch.nnodes MIN:MAX lets the job go on with fewer nodes)");
        RunTask(FailLocked(job, f, /*fetch_stderr=*/false, /*may_restart=*/false));
        return false;
      }
      const std::string waiting = Join(layout->waiting_for, ", ");
      if (waiting != waiting_said) {
        waiting_said = waiting;
        SayWaitingLocked(job, *layout, *progress);
      }
      WaitUntilLocked(lock, clock_->MonoMs() + step_ms,
                      [&] { return stopping_ || job.status.state() != RESTARTING; });
      if (stopping_ || job.status.state() != RESTARTING) return false;
      for (const HostEntry& h : job.plan.hosts) {
        const auto& waiting_for = layout->waiting_for;
        if (std::find(waiting_for.begin(), waiting_for.end(), h.Target()) == waiting_for.end()) {
          continue;
        }
        (progress->check_failed.count(h.Target()) ? retry_check : retry_kill).push_back(h);
      }
    }
    step_ms = std::min(step_ms * 2, kMaxWaitStepMs);
    // Ask again: the agent may be back (restarted, network healed, node repaired).
    if (!retry_kill.empty()) {
      KillOutcome again =
          KillOn(job_id, retry_kill, failed, grace_ms, grace_ms + options_.connect_timeout_ms);
      for (const HostEntry& h : retry_kill) {
        if (std::find(again.unconfirmed.begin(), again.unconfirmed.end(), h.Target()) ==
            again.unconfirmed.end()) {
          progress->unconfirmed.erase(h.Target());
        }
      }
    }
    if (!retry_check.empty()) {
      std::map<std::string, std::string> still = RecheckNodes(job_id, retry_check);
      for (const HostEntry& h : retry_check) {
        if (!still.count(h.Target())) progress->check_failed.erase(h.Target());
      }
    }
  }
}

void JobManager::RelaunchAfterBackoff(const std::string& job_id, int failed, int64_t not_before,
                                      int64_t kill_ms, Relayout layout) {
  std::unique_lock<std::mutex> lock(mu_);
  WaitUntilLocked(lock, not_before,
                  [&] { return stopping_ || FindLocked(job_id)->status.state() != RESTARTING; });
  Job& job = *FindLocked(job_id);
  if (stopping_ || job.status.state() != RESTARTING) return;  // killed meanwhile
  UpdateFailureLocked(job, [&](Failure* f) {
    f->set_confirmed_gone_ms(clock_->WallMs());  // every node confirmed, or declared lost just now
    std::string action = f->action();
    if (!layout.replaced.empty()) action += "; replaced " + Join(layout.replaced, ", ");
    if (!layout.dropped.empty()) {
      action += "; continuing on " + std::to_string(layout.hosts.size()) + " nodes without " +
                Join(layout.dropped, ", ") + " (elastic)";
    }
    f->set_action(action);
  });
  const size_t nodes = layout.hosts.size();
  const std::vector<HostEntry> old_hosts = job.plan.hosts;
  // A replaced or dropped node is never used again by this job (its ranks, if it comes
  // back, are still killed with the job).
  const std::vector<std::string> out = SetLayoutLocked(job, std::move(layout.hosts), failed + 1);
  LOG_INFO << "job " << job_id << ": generation " << failed << " gone in " << kill_ms << " ms"
           << (out.empty() ? "" : "; left out: " + Join(out, ", ")) << "; launching generation "
           << failed + 1 << " on " << nodes << " nodes after the backoff";
  job.status.set_restarts(job.status.restarts() + 1);
  std::vector<HostEntry> left_out;
  for (const HostEntry& h : old_hosts) {
    if (std::find(out.begin(), out.end(), h.Target()) != out.end()) left_out.push_back(h);
  }
  lock.unlock();
  // Its ranks may still live (a partition): never used again, so every generation of the
  // job there goes, the moment the node answers; the new generation is elsewhere.
  for (const HostEntry& h : left_out) RunTask([this, job_id, h] { KillLeftOutWhenBack(job_id, h); });
  Launch(job_id);
}

void JobManager::KillLeftOutWhenBack(const std::string& job_id, const HostEntry& node) {
  int step_ms = kMinWaitStepMs;
  for (int attempt = 1;; ++attempt) {
    int grace_ms = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const Job* job = FindLocked(job_id);
      if (stopping_ || job == nullptr) return;  // a finished job forgotten meanwhile
      grace_ms = job->plan.kill_grace_ms;
    }
    const KillOutcome k =
        KillOn(job_id, {node}, /*generation=*/-1, grace_ms, grace_ms + options_.connect_timeout_ms);
    std::unique_lock<std::mutex> lock(mu_);
    if (k.unconfirmed.empty()) {
      if (attempt > 1) {
        const std::string what = "old generations on " + node.Target() +
                                 " (cut off, left out) confirmed gone once it answered again (" +
                                 std::to_string(k.signalled) + " ranks still running killed)";
        LOG_INFO << "job " << job_id << ": " << what;
        if (Job* job = FindLocked(job_id)) {
          UpdateFailureLocked(*job, [&](Failure* f) { f->set_action(f->action() + "; " + what); });
        }
      }
      return;
    }
    WaitUntilLocked(lock, clock_->MonoMs() + step_ms, [&] { return stopping_; });
    if (stopping_) return;
    step_ms = std::min(step_ms * 2, kMaxLeftOutStepMs);
  }
}

}  // namespace coord::coordinator
