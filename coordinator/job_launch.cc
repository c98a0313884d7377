// JobManager's launch path: StartJob (plan, admission, journal), then a generation's
// launch on its nodes: Ping every node, a master port reserved on node 0, Launch on
// all nodes in parallel, and the replies turned into node and rank states. A node that
// fails any step fails the generation (and the job, or a restart) by name.
#include <algorithm>
#include <future>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>

#include "common/clock.h"
#include "common/hostfile.h"
#include "common/logging.h"
#include "coordinator/cluster_check.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_manager_internal.h"
#include "coordinator/job_state.h"
#include "coordinator/node_state.h"
#include "env_check/check_proto.h"

namespace coord::coordinator {

namespace agent = coord::agent;
using internal::FillLayout;
using internal::Join;
using internal::NodeName;

namespace {

// Free space the state dir must have for coordd to admit a job.
constexpr uint64_t kJournalReserveBytes = 4ull << 20;

std::string RandomHex6() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%06x", static_cast<unsigned>(rng() & 0xffffff));
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// StartJob

Status JobManager::StartJob(const StartJobRequest& request, StartJobReply* reply) {
  StatusOr<PlanResult> plan = BuildPlan(request, options_.resolve_hosts);
  if (!plan.ok()) return plan.status();
  bool every_node_answered = false;
  if (plan->plan.skip_checks) {
    plan->warnings.push_back("started without the node and cluster checks (--skip-checks)");
  } else {
    ASSIGN_OR_RETURN(bool passed, CheckBeforeLaunch(&*plan, reply, &every_node_answered));
    if (!passed) {
      LOG_WARN << "refused to start " << plan->plan.name << " from " << plan->plan.config_path
               << ": the node or cluster checks failed";
      return Status::Ok();
    }
  }
  std::string job_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Unavailable("coordd is shutting down");
    ASSIGN_OR_RETURN(job_id, AdmitLocked(*plan));
  }
  for (const std::string& w : plan->warnings) LOG_WARN << "job " << job_id << ": " << w;
  // The checks' own Pings just reached every node: a second round would only add a
  // round trip to every launch (a node lost since then fails its Launch instead).
  Launch(job_id, /*ping=*/!every_node_answered);
  reply->set_job_id(job_id);
  for (const std::string& w : plan->warnings) reply->add_warnings(w);
  std::lock_guard<std::mutex> lock(mu_);
  *reply->mutable_status() = FindLocked(job_id)->status;
  return Status::Ok();
}

StatusOr<bool> JobManager::CheckBeforeLaunch(PlanResult* plan, StartJobReply* reply,
                                             bool* every_node_answered) {
  auto all_answered = [](const std::vector<std::string>& ids) {
    return std::none_of(ids.begin(), ids.end(), [](const std::string& id) { return id.empty(); });
  };
  // The same checks as `coordctl check`, on these nodes for this job; a FAIL
  // anywhere means no job: the reply carries the table that says why.
  ClusterCheckRequest check;
  check.hosts = plan->plan.hosts;
  check.config_json = plan->plan.config_json;
  check.config_path = plan->plan.config_path;
  check.env = plan->plan.env;
  check.workdir = plan->plan.workdir;
  check.connect_timeout_ms = options_.connect_timeout_ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Unavailable("coordd is shutting down");
    EnsureLinksLocked(plan->plan);
    check.clients = ClientsLocked(plan->plan);
  }
  // A remembered result counts only for the agent processes that were checked: ask
  // who answers now (one Ping each) only when there is one to reuse.
  const std::string fingerprint = CheckMemo::Fingerprint(check);
  const int64_t reuse_ms = options_.check_reuse_ms;
  if (reuse_ms > 0 && check_memo_.Has(fingerprint, clock_->MonoMs(), reuse_ms)) {
    std::vector<std::string> now_ids(check.clients.size());
    internal::ParallelFor(static_cast<int>(check.clients.size()), [&](int i) {
      StatusOr<agent::PingReply> ping =
          check.clients[static_cast<size_t>(i)]->Ping(options_.connect_timeout_ms);
      if (ping.ok()) now_ids[static_cast<size_t>(i)] = ping->agent_id();
    });
    if (std::optional<CheckMemo::Hit> hit =
            check_memo_.Find(fingerprint, now_ids, clock_->MonoMs(), reuse_ms)) {
      *reply->mutable_checks() = env_check::ToProto(hit->report);
      *every_node_answered = all_answered(now_ids);  // Find matched every id: true
      plan->warnings.push_back(
          "node and cluster checks not run again: they passed " +
          FormatSeconds(std::chrono::milliseconds(hit->age_ms)) +
          " ago on these nodes (same agents, same spec); coordd --check-reuse-s 0 runs "
          "them for every job");
      return true;
    }
  }
  std::vector<std::string> agent_ids;
  check.agent_ids = &agent_ids;
  const int64_t started = clock_->MonoMs();
  ASSIGN_OR_RETURN(env_check::ClusterReport report, RunClusterCheck(check));
  *reply->mutable_checks() = env_check::ToProto(report);
  const bool passed = env_check::ClusterExitCode(report) != 2;
  *every_node_answered = all_answered(agent_ids);
  if (passed && reuse_ms > 0) {
    check_memo_.Remember(fingerprint, std::move(agent_ids), started, std::move(report));
  }
  return passed;
}

StatusOr<std::string> JobManager::AdmitLocked(const PlanResult& result) {
  const JobPlan& plan = result.plan;
  if (!plan.allow_overlap) {
    std::set<std::string> mine;
    for (const HostEntry& h : plan.hosts) mine.insert(h.Target());
    std::vector<std::string> conflicts;
    for (const std::string& id : order_) {
      const Job& other = *jobs_.at(id);
      if (IsTerminal(other.status.state())) continue;
      std::vector<std::string> shared;
      for (const HostEntry& h : other.plan.hosts) {
        if (mine.count(h.Target())) shared.push_back(h.Target());
      }
      if (shared.empty()) continue;
      conflicts.push_back("job '" + id + "' (" + StateName(other.status.state()) +
                          ") already uses " + Join(shared, ", ") +
                          "; stop it with `coordctl kill " + id + "`");
    }
    if (!conflicts.empty()) {
      return FailedPrecondition(Join(conflicts, "; ") +
                                "; or start anyway with `coordctl start --allow-overlap`");
    }
  }
  std::string job_id;
  do {
    job_id = plan.name + "-" + RandomHex6();
  } while (jobs_.count(job_id));

  auto job = std::make_unique<Job>();
  job->plan = plan;
  job->stragglers = StragglerDetector(options_.straggler);
  JobStatus& st = job->status;
  st.set_job_id(job_id);
  st.set_state(PENDING);
  st.set_generation(0);
  st.set_created_ms(clock_->WallMs());
  st.set_nproc_per_node(plan.nproc_per_node);
  st.set_master_port(plan.master_port);
  st.set_config_path(plan.config_path);
  st.set_max_restarts(plan.max_restarts);
  st.set_iteration(-1);
  st.set_last_checkpoint_iteration(-1);
  FillLayout(plan, {}, &st);
  // Room for this job's records first: a job the journal cannot follow is not started.
  RETURN_IF_ERROR(journal_->CheckRoom(kJournalReserveBytes));
  Status journaled = journal_->AppendSubmit(plan, st);
  if (!journaled.ok()) {
    return Internal("cannot record the job in the journal, so it was not started: " +
                    journaled.message());
  }
  EnsureLinksLocked(plan);
  history_.OnState(job_id, st.created_ms(), 0, JOB_STATE_UNKNOWN, PENDING, "submitted");
  jobs_[job_id] = std::move(job);
  order_.push_back(job_id);
  LOG_INFO << "job " << job_id << ": " << plan.hosts.size() << " nodes x " << plan.nproc_per_node
           << " ranks, MASTER_ADDR " << plan.master_addr;
  return job_id;
}

// The launch sequence: LAUNCHING, Ping everyone (unless the checks just did) while
// MASTER_PORT is reserved, Launch everyone, RUNNING. Every step's RPCs go to all nodes in parallel; no step sleeps.
void JobManager::Launch(const std::string& job_id, bool ping) {
  std::vector<AgentClient*> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = *FindLocked(job_id);
    // PENDING: the first start; RESTARTING: generation n+1 (Restart). Anything else was
    // killed before we got here.
    if (job.status.state() != PENDING && job.status.state() != RESTARTING) return;
    job.launching = true;
    TransitionLocked(job, LAUNCHING,
                     "launching generation " + std::to_string(job.status.generation()));
    clients = ClientsLocked(job.plan);
  }
  // MASTER_PORT is reserved while the Pings are out: one round trip instead of two. If a
  // Ping fails, the reservation on node 0 lapses by its TTL.
  std::future<StatusOr<int>> reserving = std::async(
      std::launch::async, [this, &job_id, &clients] { return ReserveMasterPort(job_id, clients[0]); });
  Status pinged = ping ? PingAll(job_id, clients) : Status::Ok();
  StatusOr<int> reserved = reserving.get();
  StatusOr<int> port = pinged.ok() ? ApplyMasterPort(job_id, reserved) : StatusOr<int>(pinged);
  if (!port.ok()) {
    // Nothing was launched yet, so there is nothing to kill.
    std::lock_guard<std::mutex> lock(mu_);
    FindLocked(job_id)->launching = false;
    cv_.notify_all();
    return;
  }
  LaunchAll(job_id, clients, *port);
}

Status JobManager::PingAll(const std::string& job_id, const std::vector<AgentClient*>& clients) {
  std::vector<Status> results(clients.size());
  internal::ParallelFor(static_cast<int>(clients.size()), [&](int i) {
    StatusOr<agent::PingReply> r =
        clients[static_cast<size_t>(i)]->Ping(options_.connect_timeout_ms);
    results[static_cast<size_t>(i)] = r.status();
  });
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return Cancelled("coordd is shutting down");  // not the nodes' fault
  Job& job = *FindLocked(job_id);
  std::vector<std::string> bad;
  int first_bad = -1;
  for (size_t n = 0; n < results.size(); ++n) {
    if (results[n].ok()) continue;
    const std::string what =
        results[n].code() == StatusCode::kDeadlineExceeded
            ? "did not answer Ping within " + std::to_string(options_.connect_timeout_ms) + " ms"
            : "is unreachable: " + results[n].ToString();
    SetNodeState(job_id, job.status.mutable_nodes(static_cast<int>(n)), NODE_UNREACHABLE);
    job.status.mutable_nodes(static_cast<int>(n))->set_error(what);
    if (first_bad < 0) first_bad = static_cast<int>(n);
    bad.push_back(job.plan.hosts[n].Target());
  }
  if (first_bad < 0) return Status::Ok();
  const HostEntry& h = job.plan.hosts[static_cast<size_t>(first_bad)];
  std::string message = "agent " + DescribeHost(h, job.plan.hosts_path) + " " +
                        job.status.nodes(first_bad).error() +
                        "; is coord-agent running there? try `coordctl check`";
  if (bad.size() > 1) message += " (unreachable: " + Join(bad, ", ") + ")";
  if (job.status.state() == LAUNCHING) {
    Failure f;
    f.set_rank(-1);
    f.set_kind(FAILURE_LAUNCH);
    f.set_host(h.host);
    f.set_node_rank(first_bad);
    f.set_message(message);
    // Nothing of this generation was launched; a restart (if any are left) still runs.
    RunTask(FailLocked(job, f, /*fetch_stderr=*/false));
  }
  return Unavailable(message);
}

// The RPC half (no job state changes, so it can run beside the Pings): the port the
// job spec fixes, or one node 0 reserves.
StatusOr<int> JobManager::ReserveMasterPort(const std::string& job_id, AgentClient* node0) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = *FindLocked(job_id);
    if (job.status.state() != LAUNCHING) return FailedPrecondition("job ended during launch");
    if (job.plan.master_port > 0) return job.plan.master_port;
  }
  agent::ReservePortRequest req;
  req.set_job_id(job_id);
  req.set_ttl_ms(options_.launch_timeout_ms + options_.connect_timeout_ms);
  StatusOr<agent::ReservePortReply> r = node0->ReservePort(req, options_.connect_timeout_ms);
  if (!r.ok()) return r.status();
  if (r->port() <= 0 || r->port() > 65535) {
    return Internal("agent returned port " + std::to_string(r->port()));
  }
  return r->port();
}

// The job half: records the port, or fails the launch naming node 0.
StatusOr<int> JobManager::ApplyMasterPort(const std::string& job_id, const StatusOr<int>& port) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return Cancelled("coordd is shutting down");
  Job& job = *FindLocked(job_id);
  if (!port.ok()) {
    std::string message = "cannot reserve MASTER_PORT on " + NodeName(job.plan, 0) + ": " +
                          port.status().ToString() + " (or set launch.master_port)";
    if (job.status.state() == LAUNCHING) {
      Failure f;
      f.set_rank(-1);
      f.set_kind(FAILURE_LAUNCH);
      f.set_host(job.plan.hosts[0].host);
      f.set_node_rank(0);
      f.set_message(message);
      RunTask(FailLocked(job, f, /*fetch_stderr=*/false));
    }
    return Unavailable(message);
  }
  job.status.set_master_port(*port);
  return *port;
}

// Records each node's Launch outcome (node state, rank pids); returns the first node
// whose Launch failed, or -1.
int JobManager::ApplyLaunchRepliesLocked(Job& job,
                                         const std::vector<StatusOr<agent::LaunchReply>>& replies) {
  int first_bad = -1;
  for (size_t n = 0; n < replies.size(); ++n) {
    NodeStatus* node = job.status.mutable_nodes(static_cast<int>(n));
    if (!replies[n].ok()) {
      const Status& st = replies[n].status();
      SetNodeState(job.status.job_id(), node, NODE_FAILED);
      node->set_error(st.code() == StatusCode::kDeadlineExceeded
                          ? "Launch did not return within " +
                                std::to_string(options_.launch_timeout_ms) + " ms"
                          : st.message());
      if (first_bad < 0) first_bad = static_cast<int>(n);
      continue;
    }
    SetNodeState(job.status.job_id(), node, NODE_LAUNCHED);
    for (const agent::RankInfo& info : replies[n]->ranks()) {
      if (info.rank() < 0 || info.rank() >= job.status.ranks_size()) continue;
      agent::RankStatus* r = job.status.mutable_ranks(info.rank());
      // A fast rank may already have reported its exit over Watch: keep that.
      if (r->state() != agent::RANK_STATE_UNKNOWN) continue;
      job.ranks_dirty = true;
      r->set_pid(info.pid());
      r->set_state(agent::RANK_RUNNING);
      r->set_start_time_ms(clock_->WallMs());
    }
    bool all_exited = true;  // fast ranks may have ended before this reply
    for (int r : RanksOfNode(job.plan, static_cast<int>(n))) {
      all_exited &= job.status.ranks(r).state() == agent::RANK_EXITED;
    }
    if (all_exited) SetNodeState(job.status.job_id(), node, NODE_DONE);
  }
  return first_bad;
}

void JobManager::LaunchAll(const std::string& job_id, const std::vector<AgentClient*>& clients,
                           int master_port) {
  std::vector<agent::LaunchRequest> requests;
  int generation = 0;
  int grace_ms = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = *FindLocked(job_id);
    generation = job.status.generation();
    grace_ms = job.plan.kill_grace_ms;
    for (size_t n = 0; n < clients.size(); ++n) {
      requests.push_back(
          MakeLaunchRequest(job.plan, job_id, generation, static_cast<int>(n), master_port));
    }
  }
  std::vector<StatusOr<agent::LaunchReply>> replies(clients.size(),
                                                    StatusOr<agent::LaunchReply>(Internal("")));
  internal::ParallelFor(static_cast<int>(clients.size()), [&](int i) {
    size_t n = static_cast<size_t>(i);
    replies[n] = clients[n]->Launch(requests[n], options_.launch_timeout_ms);
  });
  bool kill = false;
  Followup restart;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = *FindLocked(job_id);
    if (stopping_) {  // LAUNCHING in the journal: the next coordd sorts it out
      job.launching = false;
      cv_.notify_all();
      return;
    }
    const int first_bad = ApplyLaunchRepliesLocked(job, replies);
    if (job.status.state() != LAUNCHING) {
      kill = true;  // killed or failed while we launched: some nodes started after that
    } else if (first_bad >= 0) {
      const NodeStatus& node = job.status.nodes(first_bad);
      Failure f;
      f.set_rank(-1);
      f.set_kind(FAILURE_LAUNCH);
      f.set_host(node.host());
      f.set_node_rank(first_bad);
      f.set_message(NodeName(job.plan, first_bad) + ": launch failed: " + node.error());
      restart = FailLocked(job, f, /*fetch_stderr=*/false);
      kill = true;
    } else {
      job.running_since_mono = clock_->MonoMs();
      if (job.status.generation() > 0 && job.status.failures_size() > 0) {
        UpdateFailureLocked(job, [this](Failure* f) { f->set_relaunched_ms(clock_->WallMs()); });
      }
      TransitionLocked(job, RUNNING, "running");
      MaybeSucceedLocked(job);
    }
    // Only now: FailLocked above saw the launch in flight and left the kill to this
    // thread (it killed a second time when this was cleared first). A Restart waits
    // for it.
    job.launching = false;
    cv_.notify_all();
  }
  // Synchronously, so StartJob returns only once nothing is left half-started.
  if (kill) KillEverywhere(job_id, generation, grace_ms);
  RunTask(std::move(restart));
}

}  // namespace coord::coordinator
