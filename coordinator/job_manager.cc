// JobManager's API side: admission (overlap check, job ids), the launch sequence run on
// StartJob's thread, kill, status, log fan-in, construction/restore and shutdown.
// Supervision (events, heartbeats, transitions) lives in job_supervision.cc.
#include "coordinator/job_manager.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>

#include "common/clock.h"
#include "common/hostfile.h"
#include "common/logging.h"
#include "coordinator/cluster_check.h"
#include "coordinator/job_manager_internal.h"
#include "coordinator/job_state.h"
#include "coordinator/job_view.h"
#include "coordinator/node_state.h"
#include "env_check/check_proto.h"

namespace coord::coordinator {

namespace agent = coord::agent;

namespace internal {

void CheckFailed(const char* file, int line, const std::string& what) {
  LOG_ERROR << file << ":" << line << ": CHECK failed: " << what;
  std::abort();
}

std::vector<HostEntry> SparesIn(const JobPlan& plan, const JobStatus& status, NodeState state) {
  std::vector<HostEntry> out;
  for (const NodeStatus& s : status.spares()) {
    if (s.state() != state) continue;
    for (const HostEntry& h : plan.pool) {
      if (h.host == s.host() && h.port == s.port()) out.push_back(h);
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

void ParallelFor(int n, const std::function<void(int)>& fn) {
  if (n == 1) return fn(0);
  // Workers take the next index until none is left: RPCs to every node of a large
  // cluster overlap without one thread (and its stack) per node.
  std::atomic<int> next{0};
  auto work = [&] {
    for (int i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> threads;
  const int workers = std::min(n, kMaxParallelCalls);
  threads.reserve(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
}

std::string NodeName(const JobPlan& plan, int node_rank) {
  return "node " + std::to_string(node_rank) + " " +
         DescribeHost(plan.hosts[static_cast<size_t>(node_rank)], plan.hosts_path);
}

// The status's node and rank tables for the plan's nodes (fresh: nothing launched), and
// the hosts-file nodes it does not use.
void FillLayout(const JobPlan& plan, const std::set<std::string>& excluded, JobStatus* st) {
  st->set_world_size(plan.world_size);
  st->set_master_addr(plan.master_addr);
  st->clear_nodes();
  st->clear_ranks();
  st->clear_spares();
  for (size_t n = 0; n < plan.hosts.size(); ++n) {
    NodeStatus* node = st->add_nodes();
    node->set_host(plan.hosts[n].host);
    node->set_port(plan.hosts[n].port);
    node->set_node_rank(static_cast<int>(n));
    node->set_line(plan.hosts[n].line);
    SetNodeState(st->job_id(), node, NODE_PENDING);
    std::vector<int> ranks = RanksOfNode(plan, static_cast<int>(n));
    for (size_t local = 0; local < ranks.size(); ++local) {
      agent::RankStatus* r = st->add_ranks();
      r->set_job_id(st->job_id());
      r->set_generation(st->generation());
      r->set_node_rank(static_cast<int>(n));
      r->set_rank(ranks[local]);
      r->set_local_rank(static_cast<int>(local));
    }
  }
  for (const HostEntry& h : plan.pool) {
    const bool active = std::any_of(plan.hosts.begin(), plan.hosts.end(),
                                    [&](const HostEntry& a) { return a.Target() == h.Target(); });
    if (active) continue;
    NodeStatus* spare = st->add_spares();
    spare->set_host(h.host);
    spare->set_port(h.port);
    spare->set_node_rank(-1);
    spare->set_line(h.line);
    SetNodeState(st->job_id(), spare, excluded.count(h.Target()) ? NODE_EXCLUDED : NODE_SPARE);
  }
}

}  // namespace internal

namespace {

using internal::FillLayout;
using internal::Join;
using internal::NodeName;

// Kill RPCs wait for the agent's grace period and its SIGKILL sweep; this is on top.
constexpr int kKillSlackMs = 10000;
// Non-follow log reads and the stderr tail must not hang on a slow agent.
constexpr int kTailTimeoutMs = 10000;
// GetJob waits this long, at most, for a failure's stderr tail to arrive.
constexpr int kDetailsWaitMs = 3000;

}  // namespace

// ---------------------------------------------------------------------------------------
// Construction, restore, shutdown

JobManager::JobManager(const JobManagerOptions& options)
    : options_(options), clock_(options.clock ? options.clock : SystemClock()) {}

void JobManager::WaitUntilLocked(std::unique_lock<std::mutex>& lock, int64_t until_mono,
                                 const std::function<bool()>& done) {
  while (!done()) {
    const int64_t left = until_mono - clock_->MonoMs();
    if (left <= 0) return;
    cv_.wait_for(lock, std::chrono::milliseconds(std::min(left, clock_->MaxSleepMs())));
  }
}

StatusOr<std::unique_ptr<JobManager>> JobManager::Create(const JobManagerOptions& options) {
  if (options.state_dir.empty()) return InvalidArgument("coordd needs a state dir (--state-dir)");
  if (!options.agent_factory) return InvalidArgument("JobManager: no agent client factory");
  if (options.heartbeat_ms <= 0 || options.missed_heartbeats <= 0) {
    return InvalidArgument("heartbeat_ms and missed_heartbeats must be positive");
  }
  std::unique_ptr<JobManager> jm(new JobManager(options));
  std::vector<JournaledJob> journaled;
  ASSIGN_OR_RETURN(jm->journal_, Journal::Open(options.state_dir, &journaled));
  RETURN_IF_ERROR(jm->Restore(std::move(journaled)));
  jm->monitor_ = std::thread([p = jm.get()] { p->MonitorLoop(); });
  return jm;
}

Status JobManager::Restore(std::vector<JournaledJob> journaled) {
  std::vector<Followup> followups;
  std::lock_guard<std::mutex> lock(mu_);
  for (JournaledJob& jj : journaled) {
    auto job = std::make_unique<Job>();
    job->plan = std::move(jj.plan);
    job->status = std::move(jj.status);
    // Scores are of the live generation only: they start again from the next records.
    job->stragglers = StragglerDetector(options_.straggler);
    job->status.clear_rank_timings();
    job->status.clear_stragglers();
    if (job->status.ranks_size() != job->plan.world_size || job->plan.hosts.empty()) {
      return InvalidArgument(journal_->path() + ": job '" + job->status.job_id() +
                             "' has an inconsistent rank table");
    }
    EnsureLinksLocked(job->plan);
    const std::string id = job->status.job_id();
    Job& ref = *job;
    jobs_[id] = std::move(job);
    order_.push_back(id);
    JobState state = ref.status.state();
    if (state == RESTARTING) {
      // The restart goes on where it was: the failed generation is killed (again) and
      // the next one launched.
      LOG_INFO << "job " << id << " was RESTARTING: going on with the restart";
      const int generation = ref.status.generation();
      const int grace_ms = ref.plan.kill_grace_ms;
      followups.push_back(
          [this, id, generation, grace_ms] { Restart(id, generation, grace_ms, 0); });
    } else if (state == PENDING || state == LAUNCHING) {
      // We cannot know which nodes got their ranks started: kill whatever did, and
      // restart if the job has restarts left.
      Failure f;
      f.set_rank(-1);
      f.set_kind(FAILURE_COORDINATOR);
      f.set_message("coordd restarted while job '" + id + "' was launching generation " +
                    std::to_string(ref.status.generation()));
      followups.push_back(FailLocked(ref, f, /*fetch_stderr=*/false));
    } else if (state == RUNNING) {
      ref.running_since_mono = clock_->MonoMs();
      LOG_INFO << "job " << id << " is RUNNING: supervising it again";
    }
    if (!IsTerminal(state)) {
      // A node left out earlier may still be cut off with ranks of an old generation.
      for (const HostEntry& h : internal::SparesIn(ref.plan, ref.status, NODE_EXCLUDED)) {
        followups.push_back([this, id, h] { KillLeftOutWhenBack(id, h); });
      }
    }
  }
  for (Followup& f : followups) RunTask(std::move(f));
  return Status::Ok();
}

JobManager::~JobManager() { Shutdown(); }

void JobManager::BeginShutdown() {
  std::vector<AgentClient*> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [target, link] : links_) clients.push_back(link->client.get());
  }
  cv_.notify_all();
  for (AgentClient* client : clients) client->CancelCalls();
}

void JobManager::Shutdown() {
  BeginShutdown();
  if (monitor_.joinable()) monitor_.join();
  std::vector<std::unique_ptr<WatchHandle>> watches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [target, link] : links_) {
      if (link->watch) watches.push_back(std::move(link->watch));
      ++link->epoch;
    }
  }
  watches.clear();  // joins the watch threads, outside mu_
  for (;;) {
    std::vector<std::thread> tasks;
    {
      std::lock_guard<std::mutex> lock(tasks_mu_);
      tasks.swap(tasks_);
      done_tasks_.clear();
    }
    if (tasks.empty()) break;
    for (std::thread& t : tasks) t.join();
  }
}

void JobManager::RunTask(Followup task) {
  if (!task) return;
  std::lock_guard<std::mutex> lock(tasks_mu_);
  // Join the threads that said they are done, so finished tasks do not pile up.
  for (std::thread::id id : done_tasks_) {
    auto it = std::find_if(tasks_.begin(), tasks_.end(),
                           [id](const std::thread& t) { return t.get_id() == id; });
    if (it != tasks_.end()) {
      it->join();
      tasks_.erase(it);
    }
  }
  done_tasks_.clear();
  tasks_.emplace_back([this, task = std::move(task)] {
    task();
    std::lock_guard<std::mutex> done_lock(tasks_mu_);
    done_tasks_.push_back(std::this_thread::get_id());
  });
}

// ---------------------------------------------------------------------------------------
// Lookups

JobManager::Job* JobManager::FindLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

StatusOr<JobManager::Job*> JobManager::ResolveLocked(const std::string& job_id) {
  if (job_id.empty()) {
    if (order_.empty()) return NotFound("no jobs yet");
    return FindLocked(order_.back());
  }
  Job* job = FindLocked(job_id);
  if (!job) return NotFound("no job '" + job_id + "'; `coordctl jobs` lists them");
  return job;
}

std::vector<std::string> JobManager::SetLayoutLocked(Job& job, std::vector<HostEntry> hosts,
                                                     int generation) {
  // Excluded stays excluded; a node of the old layout that is not in the new one joins it.
  std::set<std::string> excluded;
  for (const HostEntry& h : internal::SparesIn(job.plan, job.status, NODE_EXCLUDED)) {
    excluded.insert(h.Target());
  }
  std::vector<std::string> left_out;
  for (const HostEntry& h : job.plan.hosts) {
    const bool kept = std::any_of(hosts.begin(), hosts.end(),
                                  [&](const HostEntry& k) { return k.Target() == h.Target(); });
    if (!kept && excluded.insert(h.Target()).second) left_out.push_back(h.Target());
  }
  SetNodes(&job.plan, std::move(hosts));
  job.status.set_generation(generation);
  job.status.set_iteration(-1);
  job.last_progress_mono = 0;
  job.progress_records.clear();
  job.last_progress.clear();
  job.stragglers = StragglerDetector(options_.straggler);
  job.status.clear_rank_timings();
  job.status.clear_stragglers();
  job.status.set_step_ms(0);
  FillLayout(job.plan, excluded, &job.status);
  job.ranks_dirty = true;
  return left_out;
}

// Links for every hosts-file node: spares may be asked to take over.
void JobManager::EnsureLinksLocked(const JobPlan& plan) {
  for (const HostEntry& h : plan.pool.empty() ? plan.hosts : plan.pool) {
    std::unique_ptr<AgentLink>& link = links_[h.Target()];
    if (link) continue;
    link = std::make_unique<AgentLink>();
    link->host = h;
    link->client = options_.agent_factory(h);
    COORD_CHECK(link->client != nullptr, "agent factory returned no client for " + h.Target());
  }
}

std::vector<AgentClient*> JobManager::ClientsLocked(const JobPlan& plan) {
  std::vector<AgentClient*> clients;
  for (const HostEntry& h : plan.hosts) clients.push_back(links_.at(h.Target())->client.get());
  return clients;
}

// ---------------------------------------------------------------------------------------
// KillJob, GetJob, ListJobs

Status JobManager::KillJob(const KillJobRequest& request, KillJobReply* reply) {
  std::string job_id;
  std::string already;
  int grace_ms = 0;
  std::vector<HostEntry> nodes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job* job = nullptr;
    if (request.job_id().empty()) {
      std::vector<std::string> live;
      for (const std::string& id : order_) {
        if (!IsTerminal(jobs_.at(id)->status.state())) live.push_back(id);
      }
      if (live.empty()) return NotFound("no running job");
      if (live.size() > 1) {
        return FailedPrecondition("several jobs are running (" + Join(live, ", ") +
                                  "); name one: `coordctl kill <job-id>`");
      }
      job = FindLocked(live[0]);
    } else {
      ASSIGN_OR_RETURN(job, ResolveLocked(request.job_id()));
    }
    job_id = job->status.job_id();
    grace_ms = request.grace_ms() > 0 ? request.grace_ms() : job->plan.kill_grace_ms;
    // Its nodes, and nodes it left after a failure: one that came back may still run
    // ranks of an old generation.
    nodes = job->plan.hosts;
    for (const HostEntry& h : internal::SparesIn(job->plan, job->status, NODE_EXCLUDED)) {
      nodes.push_back(h);
    }
    if (IsTerminal(job->status.state())) {
      already = std::string("job had already ended (") + StateName(job->status.state()) +
                "); kill re-sent to every node";
    } else {
      TransitionLocked(*job, KILLED, "killed by request");
    }
  }
  LOG_INFO << "killing job " << job_id << " (grace " << grace_ms << " ms)";
  KillOutcome outcome = KillOn(job_id, nodes, /*generation=*/-1, grace_ms, 0);
  reply->set_job_id(job_id);
  reply->set_confirmed_clean(outcome.clean);
  for (const std::string& h : outcome.unconfirmed) reply->add_unconfirmed_hosts(h);
  std::vector<std::string> parts;
  if (!already.empty()) parts.push_back(already);
  parts.insert(parts.end(), outcome.errors.begin(), outcome.errors.end());
  reply->set_message(Join(parts, "; "));
  return Status::Ok();
}

JobManager::KillOutcome JobManager::KillEverywhere(const std::string& job_id, int generation,
                                                   int grace_ms) {
  std::vector<HostEntry> hosts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosts = FindLocked(job_id)->plan.hosts;
  }
  return KillOn(job_id, hosts, generation, grace_ms, 0);
}

JobManager::KillOutcome JobManager::KillOn(const std::string& job_id,
                                           const std::vector<HostEntry>& hosts, int generation,
                                           int grace_ms, int deadline_ms) {
  if (deadline_ms <= 0) deadline_ms = grace_ms + kKillSlackMs;
  std::vector<AgentClient*> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const HostEntry& h : hosts) clients.push_back(links_.at(h.Target())->client.get());
  }
  agent::KillRequest req;
  req.set_job_id(job_id);
  req.set_generation(generation);
  req.set_grace_ms(grace_ms);
  std::vector<StatusOr<agent::KillReply>> replies(clients.size(),
                                                  StatusOr<agent::KillReply>(Internal("")));
  internal::ParallelFor(static_cast<int>(clients.size()), [&](int i) {
    size_t n = static_cast<size_t>(i);
    replies[n] = clients[n]->Kill(req, deadline_ms);
  });
  KillOutcome out;
  for (size_t n = 0; n < replies.size(); ++n) {
    std::string error;
    if (replies[n].ok()) out.signalled += replies[n]->ranks_signalled();
    if (!replies[n].ok()) {
      error = replies[n].status().ToString();
    } else if (replies[n]->survivors() > 0) {
      std::vector<std::string> pids;
      for (int pid : replies[n]->survivor_pids()) pids.push_back(std::to_string(pid));
      error = std::to_string(replies[n]->survivors()) + " processes survived the kill (pids " +
              Join(pids, " ") + ")";
    }
    if (error.empty()) continue;
    out.clean = false;
    out.unconfirmed.push_back(hosts[n].Target());
    out.errors.push_back(hosts[n].Target() + ": " + error);
    LOG_WARN << "job " << job_id << ": kill on " << hosts[n].Target() << ": " << error;
  }
  return out;
}

Status JobManager::GetJob(const GetJobRequest& request, JobStatus* reply) {
  std::unique_lock<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Job * job, ResolveLocked(request.job_id()));
  // A failure's stderr tail arrives a few ms after the state; a status read right after
  // the failure should show it.
  cv_.wait_for(lock, std::chrono::milliseconds(kDetailsWaitMs),
               [job] { return !job->details_pending; });
  if (request.rank_limit() < 0 || request.rank_offset() < 0 || request.slowest() < 0) {
    return InvalidArgument("rank_limit, rank_offset and slowest must not be negative");
  }
  if (request.slowest() > 0) {
    if (request.rank_limit() > 0) {
      return InvalidArgument("slowest and rank_limit exclude each other (a view or a page)");
    }
    CopySlowest(&job->status, request.slowest(), reply);
    return Status::Ok();
  }
  CopyPage(&job->status, request.rank_limit(), request.rank_offset(), reply);
  return Status::Ok();
}

Status JobManager::ListJobs(const ListJobsRequest& request, ListJobsReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : order_) {
    JobStatus* job = &jobs_.at(id)->status;
    if (request.summary()) {
      CopyWithoutTables(job, reply->add_jobs());
    } else {
      CopyPage(job, 0, 0, reply->add_jobs());
    }
  }
  return Status::Ok();
}

std::vector<JobSnapshot> JobManager::Snapshot() {
  std::vector<JobSnapshot> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(order_.size());
  for (const std::string& id : order_) {
    const Job& job = *jobs_.at(id);
    JobSnapshot& s = out.emplace_back();
    s.status = job.status;
    s.name = job.plan.name;
    s.progress = job.last_progress;
  }
  return out;
}

std::vector<JobSnapshot> JobManager::SnapshotSummaries() {
  std::vector<JobSnapshot> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(order_.size());
  for (const std::string& id : order_) {
    Job& job = *jobs_.at(id);
    JobSnapshot& s = out.emplace_back();
    CopyWithoutTables(&job.status, &s.status);
    s.name = job.plan.name;
  }
  return out;
}

StatusOr<JobSnapshot> JobManager::SnapshotJobNodes(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = FindLocked(job_id);
  if (job == nullptr) return NotFound("no job '" + job_id + "'");
  JobSnapshot out;
  CopyWithoutTables(&job->status, &out.status);
  *out.status.mutable_nodes() = job->status.nodes();
  out.name = job->plan.name;
  return out;
}

StatusOr<JobSnapshot> JobManager::SnapshotJobPage(const std::string& job_id, int limit,
                                                  int offset) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = FindLocked(job_id);
  if (job == nullptr) return NotFound("no job '" + job_id + "'");
  JobSnapshot out;
  out.name = job->plan.name;
  out.paged = true;
  out.page_limit = limit;
  out.page_offset = offset;
  CopyPage(&job->status, limit, offset, &out.status);
  out.trouble = TroubleRanks(job->status, job->last_progress, limit, &out.trouble_total);
  // Progress records of the page's ranks and of the troubled ones only.
  auto copy_progress = [&](int rank) {
    auto p = job->last_progress.find(rank);
    if (p != job->last_progress.end()) out.progress.insert(*p);
  };
  for (const agent::RankStatus& r : out.status.ranks()) copy_progress(r.rank());
  for (const RankTrouble& t : out.trouble) copy_progress(t.status.rank());
  return out;
}

// ---------------------------------------------------------------------------------------
// StreamLogs

Status JobManager::StreamLogs(const StreamLogsRequest& request, const LogSink& sink,
                              const CancelledFn& cancelled) {
  std::vector<int> nodes;
  std::vector<AgentClient*> clients;
  JobPlan plan;
  agent::TailLogsRequest base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Job * job, ResolveLocked(request.job_id()));
    plan = job->plan;
    clients = ClientsLocked(plan);
    base.set_job_id(job->status.job_id());
    base.set_generation(job->status.generation());
  }
  if (request.rank() >= plan.world_size) {
    return InvalidArgument("rank " + std::to_string(request.rank()) + " is not in job '" +
                           base.job_id() + "' (world size " + std::to_string(plan.world_size) +
                           ")");
  }
  base.set_rank(request.rank() >= 0 ? request.rank() : -1);
  base.set_stream(request.stream());
  base.set_follow(request.follow());
  base.set_tail_lines(request.tail_lines());
  if (request.rank() >= 0) {
    nodes.push_back(request.rank() / plan.nproc_per_node);  // only that rank's node is asked
  } else {
    for (size_t n = 0; n < plan.hosts.size(); ++n) nodes.push_back(static_cast<int>(n));
  }

  std::mutex sink_mu;
  std::atomic<bool> reader_gone{false};
  auto stop = [&] { return reader_gone.load() || (cancelled && cancelled()); };
  std::vector<Status> results(nodes.size());
  internal::ParallelFor(static_cast<int>(nodes.size()), [&](int i) {
    const int node = nodes[static_cast<size_t>(i)];
    const HostEntry& host = plan.hosts[static_cast<size_t>(node)];
    auto on_batch = [&](const agent::LogBatch& in) {
      LogBatch out;
      for (const agent::LogLine& l : in.lines()) {
        LogLine* line = out.add_lines();
        line->set_host(host.host);
        line->set_node_rank(node);
        line->set_rank(l.rank());
        line->set_stream(l.stream());
        line->set_text(l.text());
      }
      std::lock_guard<std::mutex> lock(sink_mu);
      if (!reader_gone && !sink(out)) reader_gone = true;
    };
    results[static_cast<size_t>(i)] = clients[static_cast<size_t>(node)]->TailLogs(
        base, request.follow() ? 0 : kTailTimeoutMs, on_batch, stop);
  });
  if (stop()) return Status(StatusCode::kCancelled, "log stream cancelled");
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!results[i].ok()) {
      return Status(results[i].code(),
                    "logs of " + NodeName(plan, nodes[i]) + ": " + results[i].message());
    }
  }
  return Status::Ok();
}

}  // namespace coord::coordinator
