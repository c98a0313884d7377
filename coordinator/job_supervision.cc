// JobManager's supervision side: agent events (watch threads), the monitor thread
// (heartbeat deadlines; opening, re-opening with backoff and closing the one Watch stream
// per agent), the state transitions and what follows a failure (stderr tail, kill).
// An exit reaches the job state on the watch thread that read it: no polling anywhere.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "common/clock.h"
#include "common/json_file.h"
#include "common/logging.h"
#include "coordinator/hang_report.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_manager_internal.h"
#include "coordinator/job_state.h"
#include "coordinator/node_state.h"

namespace coord::coordinator {

namespace agent = coord::agent;

namespace {

// The learning rate of a rank's record, when it carries one ("lr"); NaN otherwise. The
// record is the rank's own text: never trusted, parsed only when it names the key.
double RecordLr(const std::string& text) {
  if (text.find("\"lr\"") == std::string::npos) return std::nan("");
  // The shared parser: nesting bounded, 1e400 an error (NaN here), never a throw.
  const StatusOr<nlohmann::json> j = ParseJson(text, "progress record");
  if (!j.ok() || !j->is_object()) return std::nan("");
  auto it = j->find("lr");
  return it != j->end() && it->is_number() ? JsonGet<double>(*it) : std::nan("");
}

constexpr int kMinBackoffMs = 100;
constexpr int kMaxBackoffMs = 2000;
constexpr int kStderrTailLines = 10;
constexpr int kStderrTimeoutMs = 2000;
// After a job ends, its agents' streams stay open this long beyond the kill grace while
// ranks still show as running, so the status shows how the killed ranks ended.
constexpr int kLingerSlackMs = 10000;
// JobStatus.failures keeps this many (a job with thousands of restarts stays small).
constexpr int kMaxFailureHistory = 100;
// The hang report's RankSnapshots calls: a node that does not answer by then is named
// as silent, and the kill goes ahead.
constexpr int kSnapshotTimeoutMs = 2000;
// A job's straggler scores are refreshed at most this often, however many agents send
// heartbeats (a re-score of 64 ranks costs ~0.2 ms of CPU) ...
constexpr int64_t kStragglerRefreshMs = 100;
// ... and the re-scores of a job take at most 1/kStragglerCpuShare of a core: a re-score
// is O(ranks x window) (10,000 ranks: ~30 ms), so a big job waits this many times its
// last re-score's cost before the next one (10,000 ranks: about every 0.6 s; 64: 100 ms).
constexpr int64_t kStragglerCpuShare = 20;

bool Failed(const agent::RankStatus& r) {
  return r.state() == agent::RANK_EXITED && (r.exit_code() != 0 || r.signal() != 0);
}

std::string DescribeExit(const agent::RankStatus& r) {
  if (r.signal() != 0) {
    const char* name = sigabbrev_np(r.signal());
    return "was killed by signal " + std::to_string(r.signal()) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "exited with code " + std::to_string(r.exit_code());
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Transitions (mu_ held)

void JobManager::TransitionLocked(Job& job, JobState to, const std::string& message) {
  JobState from = job.status.state();
  COORD_CHECK(IsValidTransition(from, to), std::string("job ") + job.status.job_id() +
                                               ": invalid transition " + StateName(from) + " -> " +
                                               StateName(to));
  job.status.set_state(to);
  job.status.set_message(message);
  history_.OnState(job.status.job_id(), clock_->WallMs(), job.status.generation(), from, to,
                   message);
  if (to == RUNNING) job.status.set_started_ms(clock_->WallMs());
  if (IsTerminal(to)) {
    job.status.set_ended_ms(clock_->WallMs());
    job.ended_mono = clock_->MonoMs();
  }
  JournalStateLocked(job);
  LOG_INFO << "job " << job.status.job_id() << ": " << StateName(from) << " -> " << StateName(to)
           << (message.empty() ? "" : ": " + message);
  cv_.notify_all();  // the monitor re-evaluates watches and deadlines
}

void JobManager::JournalStateLocked(Job& job) {
  // The rank table (10,000 ranks: megabytes of JSON) goes into the record only when the
  // journal does not have it already: rank records keep it current in between.
  google::protobuf::RepeatedPtrField<agent::RankStatus> ranks;
  const bool omit_ranks = !job.ranks_dirty;
  if (omit_ranks) ranks.Swap(job.status.mutable_ranks());
  Status st = journal_->AppendState(job.status, /*sync=*/job.status.state() != LAUNCHING,
                                    /*ranks_unchanged=*/omit_ranks);
  if (omit_ranks) ranks.Swap(job.status.mutable_ranks());
  if (st.ok()) job.ranks_dirty = false;
  // The in-memory state is already the truth; a restart would miss this record.
  if (!st.ok()) {
    LOG_ERROR << "journal: " << st.ToString();
  }
  MaybeCompactJournalLocked();
}

void JobManager::MaybeCompactJournalLocked() {
  const uint64_t size = journal_->size_bytes();
  if (size < options_.journal_compact_bytes || size < 2 * journal_->snapshot_bytes()) return;
  // Forget the oldest finished jobs beyond the limit; only long-ended ones, so no task
  // still running for a job (a kill, a stderr fetch) finds it gone.
  int finished = 0;
  for (const std::string& id : order_) finished += IsTerminal(jobs_.at(id)->status.state());
  const int64_t now = clock_->WallMs();  // ended_ms survives coordd restarts
  std::vector<std::string> kept;
  int forgotten = 0;
  for (const std::string& id : order_) {
    const Job& job = *jobs_.at(id);
    if (finished - forgotten > options_.keep_finished_jobs && IsTerminal(job.status.state()) &&
        job.status.ended_ms() > 0 && now - job.status.ended_ms() > options_.forget_after_ms) {
      jobs_.erase(id);
      ++forgotten;
      continue;
    }
    kept.push_back(id);
  }
  order_ = std::move(kept);
  std::vector<JournaledJob> snapshot;
  snapshot.reserve(order_.size());
  for (const std::string& id : order_) {
    const Job& job = *jobs_.at(id);
    snapshot.push_back({job.plan, job.status});
  }
  const auto t0 = std::chrono::steady_clock::now();
  Status st = journal_->Compact(snapshot);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!st.ok()) {
    LOG_ERROR << "journal: " << st.ToString();
    return;
  }
  LOG_INFO << "journal compacted from " << size << " to " << journal_->size_bytes() << " bytes ("
           << order_.size() << " jobs, " << forgotten << " finished ones forgotten) in " << ms
           << " ms";
}

JobManager::Followup JobManager::FailLocked(Job& job, Failure failure, bool fetch_stderr,
                                            bool may_restart) {
  failure.set_time_ms(clock_->WallMs());
  if (failure.occurred_ms() == 0 || failure.occurred_ms() > failure.time_ms()) {
    failure.set_occurred_ms(failure.time_ms());
  }
  job.details_pending = fetch_stderr;
  const JobState from = job.status.state();
  const bool restart = may_restart && (from == RUNNING || from == LAUNCHING) &&
                       job.status.restarts() < job.plan.max_restarts;
  const int next = job.status.restarts() + 1;
  failure.set_action(restart ? "restart " + std::to_string(next) + " of " +
                                   std::to_string(job.plan.max_restarts)
                     : job.plan.max_restarts > 0 && may_restart
                         ? "failed: all " + std::to_string(job.plan.max_restarts) +
                               " restarts used (launch.max_restarts)"
                         : "failed");
  *job.status.mutable_failure() = failure;
  *job.status.add_failures() = failure;
  if (job.status.failures_size() > kMaxFailureHistory) {
    job.status.mutable_failures()->DeleteSubrange(0, 1);
  }
  LOG_WARN << "job " << job.status.job_id() << ": " << failure.message() << " (detected in "
           << failure.time_ms() - failure.occurred_ms() << " ms; " << failure.action() << ")";
  if (restart) {
    TransitionLocked(job, RESTARTING,
                     "restart " + std::to_string(next) + " of " +
                         std::to_string(job.plan.max_restarts) + " after: " + failure.message());
    const std::string id = job.status.job_id();
    const int generation = job.status.generation();
    const int grace_ms = job.plan.kill_grace_ms;
    // restart_backoff x 2^(k-1), at most a minute: a node that fails at once does not
    // get hammered, and the first restart is quick.
    const int64_t backoff = std::min<int64_t>(
        static_cast<int64_t>(job.plan.restart_backoff_ms) << std::min(next - 1, 16), 60000);
    return [this, id, generation, grace_ms, fetch_stderr, backoff] {
      if (fetch_stderr) FetchStderrTail(id);
      Restart(id, generation, grace_ms, static_cast<int>(backoff));
    };
  }
  TransitionLocked(job, FAILED, failure.message());
  // While StartJob is still launching, it kills once its Launch RPCs return (a kill now
  // could overtake a Launch still on its way).
  const bool kill = !job.launching;
  if (!fetch_stderr && !kill) return nullptr;
  const std::string id = job.status.job_id();
  const int generation = job.status.generation();
  const int grace_ms = job.plan.kill_grace_ms;
  return [this, id, generation, grace_ms, fetch_stderr, kill] {
    if (fetch_stderr) FetchStderrTail(id);
    if (kill) KillEverywhere(id, generation, grace_ms);
  };
}

void JobManager::UpdateFailureLocked(Job& job, const std::function<void(Failure*)>& edit) {
  edit(job.status.mutable_failure());
  const int n = job.status.failures_size();
  if (n > 0) *job.status.mutable_failures(n - 1) = job.status.failure();
  Status journaled = journal_->AppendFailure(job.status.job_id(), job.status.failure());
  if (!journaled.ok()) {
    LOG_ERROR << "journal: " << journaled.ToString();
  }
}

void JobManager::MaybeSucceedLocked(Job& job) {
  if (job.status.state() != RUNNING) return;
  for (const agent::RankStatus& r : job.status.ranks()) {
    if (r.state() != agent::RANK_EXITED || Failed(r)) return;
  }
  TransitionLocked(job, SUCCEEDED,
                   "all " + std::to_string(job.status.world_size()) + " ranks exited 0");
}

void JobManager::ReportHang(const std::string& job_id, int generation) {
  std::vector<NodeSnapshots> nodes;
  std::vector<AgentClient*> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = *FindLocked(job_id);
    std::map<std::string, int> hosts_seen;  // two agents on one host: name them host:port
    for (const HostEntry& h : job.plan.hosts) ++hosts_seen[h.host];
    for (size_t n = 0; n < job.plan.hosts.size(); ++n) {
      const HostEntry& h = job.plan.hosts[n];
      NodeSnapshots ns;
      ns.name = hosts_seen[h.host] > 1 ? h.Target() : h.host;
      ns.ranks = RanksOfNode(job.plan, static_cast<int>(n));
      nodes.push_back(std::move(ns));
      clients.push_back(links_.at(h.Target())->client.get());
    }
  }
  agent::RankSnapshotsRequest req;
  req.set_job_id(job_id);
  req.set_generation(generation);
  internal::ParallelFor(static_cast<int>(nodes.size()), [&](int i) {
    auto reply = clients[static_cast<size_t>(i)]->RankSnapshots(req, kSnapshotTimeoutMs);
    nodes[static_cast<size_t>(i)].status = reply.status();
    if (reply.ok()) nodes[static_cast<size_t>(i)].reply = std::move(*reply);
  });
  const std::string summary = SummarizeHang(nodes);
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = *FindLocked(job_id);
  if (!summary.empty() && job.status.generation() == generation) {
    const std::string before = job.status.failure().message();
    UpdateFailureLocked(job, [&](Failure* f) { f->set_message(f->message() + "; " + summary); });
    // The state's message quotes the failure ("restart 1 of 3 after: hang: ...").
    const std::string& m = job.status.message();
    if (m.size() >= before.size() && m.compare(m.size() - before.size(), before.size(), before) == 0) {
      job.status.set_message(m + "; " + summary);
    }
    LOG_WARN << "job " << job_id << ": hang report: " << summary;
  }
  job.details_pending = false;
  cv_.notify_all();
}

// Runs on a task thread after a rank failed: its last stderr lines into the Failure.
void JobManager::FetchStderrTail(const std::string& job_id) {
  agent::TailLogsRequest req;
  AgentClient* client = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = *FindLocked(job_id);
    const Failure& f = job.status.failure();
    client = links_.at(job.plan.hosts[static_cast<size_t>(f.node_rank())].Target())->client.get();
    req.set_job_id(job_id);
    req.set_generation(job.status.generation());
    req.set_rank(f.rank());
    req.set_stream(agent::LOG_STDERR);
    req.set_tail_lines(kStderrTailLines);
  }
  std::vector<std::string> lines;
  Status st = client->TailLogs(
      req, kStderrTimeoutMs,
      [&](const agent::LogBatch& b) {
        for (const agent::LogLine& l : b.lines()) lines.push_back(l.text());
      },
      nullptr);
  if (!st.ok()) {
    LOG_WARN << "job " << job_id << ": cannot read the failed rank's stderr: " << st.ToString();
  }
  if (lines.size() > static_cast<size_t>(kStderrTailLines)) {
    lines.erase(lines.begin(), lines.end() - kStderrTailLines);
  }
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = *FindLocked(job_id);
  UpdateFailureLocked(job, [&](Failure* f) {
    f->clear_stderr_tail();
    for (std::string& l : lines) f->add_stderr_tail(std::move(l));
  });
  job.details_pending = false;
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------
// Agent events (watch threads)

void JobManager::OnAgentEvent(const std::string& target, uint64_t epoch,
                              const agent::AgentEvent& event) {
  Followup followup;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = links_.find(target);
    if (it == links_.end() || it->second->epoch != epoch) return;  // a closed stream
    AgentLink& link = *it->second;
    link.last_heard_mono = clock_->MonoMs();
    link.backoff_ms = 0;
    if (event.has_heartbeat()) {
      if (event.heartbeat().has_usage()) OnNodeUsageLocked(target, event.heartbeat().usage());
      std::set<Job*> touched;
      for (const agent::RankProgress& p : event.heartbeat().progress()) {
        // How old the record was when the agent sent it, on the agent's own clock:
        // no clock offset between nodes enters the hang deadline.
        OnProgressLocked(p, std::max<int64_t>(0, event.time_ms() - p.time_ms()));
        Job* job = FindLocked(p.job_id());
        if (job != nullptr && p.timings_size() > 0) touched.insert(job);
      }
      const int64_t now = clock_->MonoMs();
      for (Job* job : touched) {
        const int64_t wait_ms =
            std::max(kStragglerRefreshMs, kStragglerCpuShare * job->stragglers_cost_us / 1000);
        if (now - job->stragglers_scored_mono < wait_ms) continue;
        job->stragglers_scored_mono = now;
        const auto t0 = std::chrono::steady_clock::now();  // CPU spent, not the job's clock
        UpdateStragglersLocked(*job);
        job->stragglers_cost_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count();
      }
      return;
    }
    if (!event.has_rank()) return;
    const agent::RankStatus& rank = event.rank();
    Job* job = FindLocked(rank.job_id());
    if (!job) return;  // a job this coordd does not know (another coordd's, or forgotten)
    if (rank.generation() != job->status.generation()) return;  // an old generation
    const JobPlan& plan = job->plan;
    if (rank.rank() < 0 || rank.rank() >= plan.world_size ||
        plan.hosts[static_cast<size_t>(rank.rank() / plan.nproc_per_node)].Target() != target) {
      LOG_WARN << "agent " << target << " reported rank " << rank.rank() << " of job "
               << rank.job_id() << ", which is not on that node; ignored";
      return;
    }
    followup = OnRankStatusLocked(*job, rank);
  }
  RunTask(std::move(followup));
}

JobManager::Followup JobManager::OnRankStatusLocked(Job& job, const agent::RankStatus& in) {
  agent::RankStatus& cur = *job.status.mutable_ranks(in.rank());
  // Idempotent: replayed snapshots repeat what we know, and an exit is final (a stale
  // "running" never brings a rank back).
  if (cur.state() == agent::RANK_EXITED) return nullptr;
  if (in.state() == agent::RANK_RUNNING && cur.state() == agent::RANK_RUNNING &&
      cur.pid() == in.pid()) {
    return nullptr;
  }
  if (in.state() == agent::RANK_STATE_UNKNOWN) return nullptr;
  const int node_rank = cur.node_rank();
  const int local_rank = cur.local_rank();
  cur = in;
  cur.set_node_rank(node_rank);
  cur.set_local_rank(local_rank);
  Status journaled = journal_->AppendRank(job.status.job_id(), cur);
  if (!journaled.ok()) {
    LOG_ERROR << "journal: " << journaled.ToString();
  }
  if (cur.state() != agent::RANK_EXITED) return nullptr;

  bool node_done = true;
  for (int r : RanksOfNode(job.plan, node_rank)) {
    if (job.status.ranks(r).state() != agent::RANK_EXITED) node_done = false;
  }
  NodeStatus* node = job.status.mutable_nodes(node_rank);
  // "lost" or "failed" explain a failure and stay; only a healthy node becomes "done".
  if (node_done && node->state() == NODE_LAUNCHED) SetNodeState(job.status.job_id(), node, NODE_DONE);
  if (IsTerminal(job.status.state()) || job.status.state() == RESTARTING) {
    // Ranks dying after a kill or after another rank's failure change nothing more, but
    // the monitor may now close streams kept open for them.
    if (node_done) cv_.notify_all();
    return nullptr;
  }
  if (!Failed(cur)) {
    MaybeSucceedLocked(job);
    return nullptr;
  }
  const HostEntry& host = job.plan.hosts[static_cast<size_t>(node_rank)];
  Failure f;
  f.set_rank(cur.rank());
  f.set_host(host.host);
  f.set_node_rank(node_rank);
  f.set_exit_code(cur.signal() == 0 ? cur.exit_code() : 0);
  f.set_signal(cur.signal());
  f.set_kind(FAILURE_RANK_EXIT);
  f.set_occurred_ms(cur.end_time_ms());
  f.set_message("rank " + std::to_string(cur.rank()) + " on " + host.Target() + " (node " +
                std::to_string(node_rank) + ") " + DescribeExit(cur) +
                (cur.error().empty() ? "" : ": " + cur.error()));
  return FailLocked(job, f, /*fetch_stderr=*/true);
}

void JobManager::OnProgressLocked(const agent::RankProgress& p, int64_t age_ms) {
  Job* job = FindLocked(p.job_id());
  if (!job || p.generation() != job->status.generation() || job->status.state() != RUNNING) return;
  int64_t& seen = job->progress_records[p.rank()];
  if (p.records() <= seen) return;  // nothing new from this rank
  // A rank's first record may end the start-up, and the hang deadline that follows can be
  // sooner than the startup deadline the monitor sleeps towards: wake it.
  if (seen == 0) cv_.notify_all();
  seen = p.records();
  if (p.rank() >= 0 && p.rank() < job->plan.world_size) job->last_progress[p.rank()] = p;
  job->last_progress_mono = std::max(job->last_progress_mono, clock_->MonoMs() - age_ms);
  job->status.set_last_progress_ms(clock_->WallMs());
  if (p.iteration() > job->status.iteration()) job->status.set_iteration(p.iteration());
  if (p.rank() == 0 && !std::isnan(p.loss())) job->status.set_loss(p.loss());
  if (p.checkpoint() > job->status.last_checkpoint_iteration()) {
    job->status.set_last_checkpoint_iteration(p.checkpoint());
    history_.OnCheckpoint(p.job_id(), clock_->WallMs(), p.generation(), p.checkpoint());
  }
  if (p.rank() == 0 && p.iteration() >= 0) {
    history_.OnProgress(p.job_id(), clock_->WallMs(), p.generation(), p.iteration(), p.loss(),
                        RecordLr(p.text()), p.tokens_per_s() > 0 ? p.tokens_per_s() : std::nan(""));
  }
  if (p.rank() < 0 || p.rank() >= job->plan.world_size) return;  // not a rank of this job
  if (p.train_iters() > 0) job->status.set_train_iters(p.train_iters());
  if (p.rank() == 0 && std::isfinite(p.tokens_per_s())) job->status.set_tokens_per_s(p.tokens_per_s());
  int64_t& malformed = job->malformed_records[p.rank()];
  if (p.malformed_records() != malformed) {
    job->status.set_malformed_progress_records(job->status.malformed_progress_records() +
                                               p.malformed_records() - malformed);
    malformed = p.malformed_records();
  }
  const int64_t ignored = job->stragglers.ignored_samples();
  for (const agent::IterationTiming& t : p.timings()) job->stragglers.Add(p.rank(), p.stage(), t);
  if (job->stragglers.ignored_samples() > ignored && ignored == 0) {
    LOG_WARN << "job " << p.job_id() << ": ignored an invalid timing sample of rank " << p.rank()
             << " (not a finite time, or an iteration already seen); counting from now on";
  }
}

// A heartbeat's node counters go to the history of every live job on that node.
void JobManager::OnNodeUsageLocked(const std::string& target, const agent::NodeUsage& usage) {
  const int64_t now = clock_->WallMs();
  for (const auto& [id, job] : jobs_) {
    if (IsTerminal(job->status.state())) continue;
    for (const HostEntry& h : job->plan.hosts) {
      if (h.Target() != target) continue;
      history_.OnNodeUsage(id, target, now, usage);
      break;
    }
  }
}

void JobManager::UpdateStragglersLocked(Job& job) {
  const std::vector<StragglerRecord> before = job.stragglers.stragglers();
  job.stragglers.Update(clock_->WallMs());
  JobStatus& st = job.status;
  const int nproc = std::max(1, job.plan.nproc_per_node);
  st.clear_rank_timings();
  for (const RankScore& s : job.stragglers.scores()) {
    RankTiming* t = st.add_rank_timings();
    t->set_rank(s.rank);
    t->set_node_rank(s.rank / nproc);
    t->set_stage(s.stage);
    t->set_iteration(s.iteration);
    t->set_samples(s.samples);
    t->set_step_ms(s.step_ms);
    t->set_compute_ms(s.compute_ms);
    t->set_wait_ms(s.wait_ms);
    t->set_data_ms(s.data_ms);
    t->set_optimizer_ms(s.optimizer_ms);
    t->set_score(s.score);
    if (s.rank == 0) st.set_step_ms(s.step_ms);
  }
  st.clear_stragglers();
  for (const StragglerRecord& r : job.stragglers.stragglers()) {
    const HostEntry& host = job.plan.hosts[static_cast<size_t>(r.rank / nproc)];
    Straggler* s = st.add_stragglers();
    s->set_rank(r.rank);
    s->set_host(host.host);
    s->set_node_rank(r.rank / nproc);
    s->set_score(r.score);
    s->set_compute_ms(r.compute_ms);
    s->set_peers_compute_ms(r.peers_compute_ms);
    s->set_since_iteration(r.since_iteration);
    s->set_since_ms(r.since_ms);
    const bool was = std::any_of(before.begin(), before.end(),
                                 [&](const StragglerRecord& b) { return b.rank == r.rank; });
    if (!was) {
      char score[32];
      std::snprintf(score, sizeof(score), "%.2f", r.score);
      LOG_WARN << "job " << st.job_id() << ": rank " << r.rank << " on " << host.Target()
               << " is a straggler: compute " << static_cast<int64_t>(r.compute_ms)
               << " ms per iteration against its peers' " << static_cast<int64_t>(r.peers_compute_ms)
               << " ms (score " << score << ") at iteration " << r.since_iteration;
    }
  }
  for (const StragglerRecord& b : before) {
    const auto& now = job.stragglers.stragglers();
    if (std::none_of(now.begin(), now.end(), [&](const StragglerRecord& r) { return r.rank == b.rank; })) {
      LOG_INFO << "job " << st.job_id() << ": rank " << b.rank << " is no longer a straggler";
    }
  }
}

void JobManager::OnWatchEnd(const std::string& target, uint64_t epoch, const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = links_.find(target);
    if (it == links_.end() || it->second->epoch != epoch) return;
    AgentLink& link = *it->second;
    link.broken = true;
    link.backoff_ms =
        link.backoff_ms == 0 ? kMinBackoffMs : std::min(link.backoff_ms * 2, kMaxBackoffMs);
    link.reopen_at_mono = clock_->MonoMs() + link.backoff_ms;
    LOG_WARN << "watch stream to agent " << target << " ended (" << status.ToString()
             << "); re-opening in " << link.backoff_ms << " ms";
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------
// The monitor thread

// A target's stream is wanted while a job on it launches or runs, and for a while after a
// job ended while ranks there still show as running (their kill-exits are still to come).
// One pass over the jobs' nodes for every target at once: the monitor runs this every
// time it wakes, and a target-by-target scan was O(agents x nodes), 1.5 M steps at 1,250.
std::unordered_set<std::string> JobManager::WantedLinksLocked(int64_t now,
                                                              int64_t* next_check) const {
  std::unordered_set<std::string> wanted;
  for (const auto& [id, job] : jobs_) {
    JobState s = job->status.state();
    const bool live = s == LAUNCHING || s == RUNNING;
    const int64_t linger_end = job->ended_mono + job->plan.kill_grace_ms + kLingerSlackMs;
    if (!live && !(IsTerminal(s) && job->ended_mono > 0 && now < linger_end)) continue;
    for (size_t n = 0; n < job->plan.hosts.size(); ++n) {
      if (live) {
        wanted.insert(job->plan.hosts[n].Target());
        continue;
      }
      for (int r : RanksOfNode(job->plan, static_cast<int>(n))) {
        if (job->status.ranks(r).state() == agent::RANK_RUNNING) {
          *next_check = std::min(*next_check, linger_end);
          wanted.insert(job->plan.hosts[n].Target());
          break;
        }
      }
    }
  }
  return wanted;
}

// The progress deadlines' view of a RUNNING job. A rank that exited (0, or a failure
// handled on its own) is not waited for.
ProgressSeen JobManager::ProgressSeenLocked(const Job& job) const {
  ProgressSeen seen;
  seen.running_since_mono = job.running_since_mono;
  seen.last_progress_mono = job.last_progress_mono;
  for (int r = 0; r < job.plan.world_size; ++r) {
    if (job.status.ranks(r).state() == agent::RANK_EXITED) continue;
    auto it = job.progress_records.find(r);
    if (it == job.progress_records.end() || it->second <= 0) seen.starting.push_back(r);
  }
  return seen;
}

// Fails RUNNING jobs with a silent node or a missed progress deadline; returns the next
// deadline (INT64_MAX: none).
int64_t JobManager::CheckHeartbeatsLocked(int64_t now, std::vector<Followup>* followups) {
  const int64_t allowed = static_cast<int64_t>(options_.heartbeat_ms) * options_.missed_heartbeats;
  int64_t next = INT64_MAX;
  for (const std::string& id : order_) {
    Job& job = *jobs_.at(id);
    if (job.status.state() != RUNNING) continue;
    // Every process alive and nothing moving: a rank that never wrote its first progress
    // record (startup deadline), or no record from any rank since (hang deadline).
    const ProgressSeen seen = ProgressSeenLocked(job);
    const ProgressDeadline d = NextProgressDeadline(job.plan, seen, options_.heartbeat_ms);
    if (d.kind != FAILURE_KIND_UNKNOWN) {
      if (now >= d.fires_mono) {
        const Failure f = ProgressFailure(job.plan, seen, d, now, clock_->WallMs());
        // A rank stuck in start-up usually says why on stderr (a mount, a rendezvous).
        Followup kill = FailLocked(job, f, /*fetch_stderr=*/d.kind == FAILURE_STARTUP);
        if (d.kind == FAILURE_HANG) {
          // Where each rank is, asked before the kill takes the answer away.
          job.details_pending = true;
          followups->push_back([this, id, generation = job.status.generation(), kill] {
            ReportHang(id, generation);
            if (kill) kill();
          });
        } else {
          followups->push_back(std::move(kill));
        }
        continue;
      }
      next = std::min(next, d.fires_mono);
    }
    for (size_t n = 0; n < job.plan.hosts.size(); ++n) {
      const HostEntry& h = job.plan.hosts[n];
      const AgentLink& link = *links_.at(h.Target());
      int64_t heard = std::max(link.last_heard_mono, job.running_since_mono);
      if (now < heard + allowed) {
        next = std::min(next, heard + allowed);
        continue;
      }
      SetNodeState(job.status.job_id(), job.status.mutable_nodes(static_cast<int>(n)), NODE_LOST);
      Failure f;
      f.set_rank(-1);
      f.set_host(h.host);
      f.set_node_rank(static_cast<int>(n));
      f.set_kind(FAILURE_NODE_LOST);
      f.set_occurred_ms(clock_->WallMs() - (now - heard));
      f.set_message("node " + h.Target() + " lost: no heartbeat for " +
                    std::to_string(now - heard) + " ms (" + job.plan.hosts_path + ":" +
                    std::to_string(h.line) + "; is coord-agent running there?)");
      followups->push_back(FailLocked(job, f, /*fetch_stderr=*/false));
      break;
    }
  }
  return next;
}

void JobManager::MonitorLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const int64_t now = clock_->MonoMs();
    std::vector<Followup> followups;
    int64_t next = CheckHeartbeatsLocked(now, &followups);
    std::vector<std::unique_ptr<WatchHandle>> to_close;
    std::vector<std::pair<AgentLink*, uint64_t>> to_open;
    const std::unordered_set<std::string> wanted_links = WantedLinksLocked(now, &next);
    for (auto& [target, link] : links_) {
      const bool wanted = wanted_links.count(target) > 0;
      if (link->watch && (link->broken || !wanted)) {
        to_close.push_back(std::move(link->watch));
        ++link->epoch;  // callbacks still in flight from it are ignored from now on
      }
      if (!wanted) {
        link->broken = false;
        link->backoff_ms = 0;
        continue;
      }
      if (link->watch) continue;
      if (link->broken && now < link->reopen_at_mono) {
        next = std::min(next, link->reopen_at_mono);
        continue;
      }
      link->broken = false;
      to_open.emplace_back(link.get(), ++link->epoch);
    }
    if (followups.empty() && to_close.empty() && to_open.empty()) {
      if (next == INT64_MAX) {
        cv_.wait(lock);
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(std::min(next - now, clock_->MaxSleepMs())));
      }
      continue;
    }
    // RPCs and joins happen without mu_: watch callbacks need it.
    lock.unlock();
    to_close.clear();
    for (Followup& f : followups) RunTask(std::move(f));
    std::vector<std::unique_ptr<WatchHandle>> opened;
    for (auto& [link, epoch] : to_open) {
      const std::string target = link->host.Target();
      opened.push_back(link->client->Watch(
          options_.heartbeat_ms,
          [this, target, epoch = epoch](const agent::AgentEvent& e) {
            OnAgentEvent(target, epoch, e);
          },
          [this, target, epoch = epoch](const Status& st) { OnWatchEnd(target, epoch, st); }));
    }
    lock.lock();
    for (size_t i = 0; i < to_open.size(); ++i) {
      AgentLink* link = to_open[i].first;
      // Only this thread bumps epochs or sets watches, so the slot is still ours; an
      // on_end that already fired marked the link broken and the next pass closes it.
      link->watch = std::move(opened[i]);
    }
  }
}

}  // namespace coord::coordinator
