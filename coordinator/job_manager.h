// JobManager: owns every job, its state machine (job_state.h: PENDING -> LAUNCHING ->
// RUNNING -> SUCCEEDED | FAILED | KILLED; RESTARTING -> LAUNCHING for the next
// generation) and its nodes' states (node_state.h); launches generations through the
// agents, supervises them over one shared Watch stream per agent, and journals every
// transition. Code: job_manager.cc (jobs, launch), job_supervision.cc (events,
// deadlines, failures), job_restart.cc (kill, re-check, relayout, relaunch).
// Threads: gRPC handler threads (StartJob runs the launch, with one thread per node for
// the parallel RPCs), the agents' watch threads (OnAgentEvent), one monitor thread
// (heartbeat and progress deadlines, opening/re-opening watches) and short task threads
// (stderr fetch and kill after a failure). Never sees grpcpp: agents are reached via
// AgentClient.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "coordinator/agent_client.h"
#include "coordinator/coordinator_handler.h"
#include "coordinator/job_history.h"
#include "coordinator/job_plan.h"
#include "coordinator/job_view.h"
#include "coordinator/check_memo.h"
#include "coordinator/journal.h"
#include "coordinator/progress_deadline.h"
#include "coordinator/straggler.h"
#include "proto/coordinator.pb.h"

namespace coord::coordinator {

struct JobManagerOptions {
  std::string state_dir;  // the journal lives here (required)
  int connect_timeout_ms = 5000;
  int launch_timeout_ms = 60000;
  int heartbeat_ms = 500;            // asked of the agents' Watch
  int missed_heartbeats = 4;         // then the node is lost (2 s by default)
  AgentClientFactory agent_factory;  // required
  /// Hosts are resolved with DNS (ResolveHosts) unless false (tests use made-up names).
  bool resolve_hosts = true;
  /// Every deadline, heartbeat age and timestamp; null: the machine's (SystemClock()).
  /// Tests pass a FakeClock and advance it instead of sleeping.
  std::shared_ptr<const Clock> clock;
  /// Straggler detection over the ranks' progress records (straggler.h).
  StragglerOptions straggler;
  /// The journal is compacted (journal.h) once it is this large and at least twice its
  /// last snapshot, so a restart replays a snapshot plus a short tail.
  uint64_t journal_compact_bytes = 16ull << 20;
  /// At compaction, finished jobs beyond the newest this many, that ended over
  /// forget_after_ms ago, are forgotten (journal and memory): coordd's state is bounded.
  int keep_finished_jobs = 1000;
  int64_t forget_after_ms = 3600 * 1000;
  /// A job started on the same nodes with the same spec reuses checks that passed this
  /// recently on the same agent processes (check_memo.h); 0: check every time.
  int64_t check_reuse_ms = 300 * 1000;
};

/// A copy of one job for read-only views (the /metrics page, the status page).
struct JobSnapshot {
  JobStatus status;
  std::string name;  // the spec's "name" (id-safe)
  /// Each rank's newest progress record of the current generation, by global rank: the
  /// rank's own text is there too (step time_ms, tokens_per_s, whatever it reports).
  std::map<int, coord::agent::RankProgress> progress;
  /// A paged snapshot (SnapshotJobPage): status holds ranks [page_offset, page_offset +
  /// page_limit) and their nodes (job_view.h CopyPage), `progress` only theirs and the
  /// troubled ranks'; `trouble` the ranks worth a look anywhere in the job (at most
  /// page_limit of trouble_total).
  bool paged = false;
  int page_limit = 0;
  int page_offset = 0;
  std::vector<RankTrouble> trouble;
  int trouble_total = 0;
};

/// Thread-safe. Lock order: mu_ -> Journal::mu_ (journal writes happen under mu_ so that
/// records are in transition order). mu_ is never held across an agent RPC or while
/// destroying a WatchHandle (whose thread may be waiting for mu_).
class JobManager final : public CoordinatorHandler {
 public:
  /// Replays the journal in options.state_dir: terminal jobs are restored as they were;
  /// RUNNING jobs are supervised again (their agents' watch snapshots tell what happened
  /// while coordd was down); jobs caught mid-launch are FAILED and their generation killed.
  static StatusOr<std::unique_ptr<JobManager>> Create(const JobManagerOptions& options);
  ~JobManager();  // Shutdown()
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  /// Validates, assigns ranks and launches. Invalid hosts/spec or an overlap with a running
  /// job are errors (no job is made); a failed launch is a job in state FAILED (OK status).
  /// Returns once the job is RUNNING or has ended.
  Status StartJob(const StartJobRequest& request, StartJobReply* reply) override;
  /// Kills the job's processes on every node (always, even if the job already ended, so a
  /// kill is safe to repeat) and marks a live job KILLED.
  Status KillJob(const KillJobRequest& request, KillJobReply* reply) override;
  /// \param request.job_id empty: the most recent job.
  Status GetJob(const GetJobRequest& request, JobStatus* reply) override;
  /// Every job, oldest first.
  Status ListJobs(const ListJobsRequest& request, ListJobsReply* reply) override;
  /// Fans in TailLogs from the job's nodes (one thread each) into `sink`; returns when all
  /// node streams have ended or `cancelled()` turns true. Runs on the caller's thread.
  Status StreamLogs(const StreamLogsRequest& request, const LogSink& sink,
                    const CancelledFn& cancelled) override;

  /// Every job, oldest first, copied under the lock with every rank (the /metrics scrape).
  std::vector<JobSnapshot> Snapshot();
  /// Every job, oldest first, without rank, node or spare tables and without progress
  /// records: what the jobs list needs, so a poll of it copies O(jobs), not O(ranks).
  std::vector<JobSnapshot> SnapshotSummaries();
  /// One job by its exact id (no "most recent" default) with its node table only (no
  /// rank tables, no progress records); NotFound when unknown.
  StatusOr<JobSnapshot> SnapshotJobNodes(const std::string& job_id);
  /// One job with its rank tables paged (limit > 0 ranks from `offset`), as the status
  /// page polls it: the copy under the lock is the page's size, not the job's.
  StatusOr<JobSnapshot> SnapshotJobPage(const std::string& job_id, int limit, int offset);
  /// Curves and state changes over the jobs' lives, for the status page (job_history.h).
  const JobHistory& history() const { return history_; }

  /// The first half of Shutdown, safe while requests are in flight: no new job is
  /// admitted and every agent call in flight ends now (a StartJob stuck dialling frozen
  /// nodes returns at once, so the gRPC server can stop). A launch cut short this way
  /// is left LAUNCHING in the journal: the next coordd kills what started and restarts.
  void BeginShutdown();
  /// Stops the monitor, closes the watches and waits for task threads. Jobs keep running
  /// on the agents. Idempotent. Callers must have stopped calling the methods above.
  void Shutdown();

 private:
  struct Job;
  struct AgentLink;
  // What must be done outside mu_ after a transition (agent RPCs).
  using Followup = std::function<void()>;

  explicit JobManager(const JobManagerOptions& options);
  Status Restore(std::vector<JournaledJob> jobs);

  // --- launch (StartJob's thread) ---
  // The pre-launch checks (or a recent passing result of them, check_memo.h) into
  // reply->checks; false: a FAIL, the job must not start. *every_node_answered: each
  // agent answered a Ping during the checks (Launch need not ask again).
  StatusOr<bool> CheckBeforeLaunch(PlanResult* plan, StartJobReply* reply,
                                   bool* every_node_answered);
  StatusOr<std::string> AdmitLocked(const PlanResult& plan);
  // ping: ask every node first, so none is launched when one is known to be down.
  void Launch(const std::string& job_id, bool ping = true);
  Status PingAll(const std::string& job_id, const std::vector<AgentClient*>& clients);
  StatusOr<int> ReserveMasterPort(const std::string& job_id, AgentClient* node0);
  StatusOr<int> ApplyMasterPort(const std::string& job_id, const StatusOr<int>& port);
  void LaunchAll(const std::string& job_id, const std::vector<AgentClient*>& clients,
                 int master_port);
  int ApplyLaunchRepliesLocked(Job& job,
                               const std::vector<StatusOr<coord::agent::LaunchReply>>& replies);

  // --- supervision (watch, monitor and task threads) ---
  void OnAgentEvent(const std::string& target, uint64_t epoch, const coord::agent::AgentEvent& e);
  void OnWatchEnd(const std::string& target, uint64_t epoch, const Status& status);
  Followup OnRankStatusLocked(Job& job, const coord::agent::RankStatus& rank);
  void OnProgressLocked(const coord::agent::RankProgress& progress, int64_t age_ms);
  void OnNodeUsageLocked(const std::string& target, const coord::agent::NodeUsage& usage);
  // The straggler scores after new progress: status.rank_timings and stragglers, and a
  // log line when a rank is named or cleared.
  void UpdateStragglersLocked(Job& job);
  // Before a hung job's generation is killed: asks every node where its ranks are and
  // adds the answer to the failure's message (hang_report.h). Task thread.
  void ReportHang(const std::string& job_id, int generation);
  void MonitorLoop();
  int64_t CheckHeartbeatsLocked(int64_t now, std::vector<Followup>* followups);
  ProgressSeen ProgressSeenLocked(const Job& job) const;
  // The targets whose Watch stream is wanted now; lowers *next_check to when that changes.
  std::unordered_set<std::string> WantedLinksLocked(int64_t now, int64_t* next_check) const;

  // --- transitions and helpers (mu_ held) ---
  void TransitionLocked(Job& job, JobState to, const std::string& message);
  // FAILED, or RESTARTING when the job has restarts left (and may_restart): the
  // followup then kills the generation and launches the next one (Restart).
  Followup FailLocked(Job& job, Failure failure, bool fetch_stderr, bool may_restart = true);
  // Edits the last failure (and its copy in the history) and journals it.
  void UpdateFailureLocked(Job& job, const std::function<void(Failure*)>& edit);
  // Kills generation `failed` everywhere and re-checks the failed node; a node that does
  // not confirm or fails its checks is replaced by a spare, dropped (elastic) or waited
  // for; after the backoff, launches generation failed + 1 unless the job was killed
  // meanwhile. Runs on a task thread (job_restart.cc).
  void Restart(const std::string& job_id, int failed, int grace_ms, int backoff_ms);
  // What the restart knows about the old layout's nodes (job_restart.cc).
  struct RestartProgress {
    bool recheck = false;                             // the job runs the node checks
    std::set<std::string> unconfirmed;                // kill not confirmed ("host:port")
    std::map<std::string, std::string> check_failed;  // failed the re-check: why
    std::set<std::string> Bad() const;
  };
  // Restart's steps. Each returns false when the job was killed (or gave up) meanwhile.
  bool KillAndRecheck(const std::string& job_id, int failed, int grace_ms,
                      RestartProgress* progress);
  // A layout without the bad nodes (spares, elastic), or waits for them to come back.
  bool ChooseLayout(const std::string& job_id, int failed, int grace_ms, int backoff_ms,
                    RestartProgress* progress, Relayout* layout);
  void RelaunchAfterBackoff(const std::string& job_id, int failed, int64_t not_before,
                            int64_t kill_ms, Relayout layout);
  std::vector<HostEntry> SparesThatPassTheirChecks(const std::string& job_id, bool recheck);
  void SayWaitingLocked(Job& job, const Relayout& layout, const RestartProgress& progress);
  // The nodes among `hosts` that answer and fail the node checks, with why (logged).
  std::map<std::string, std::string> RecheckNodes(const std::string& job_id,
                                                  const std::vector<HostEntry>& hosts);
  // Spares that answer a Ping, in hosts-file order.
  std::vector<HostEntry> LiveSpares(const std::string& job_id);
  // Makes `hosts` the job's nodes for generation `generation` (fresh rank table); nodes
  // of the old layout left out become "excluded" spares. Returns those, for the log.
  std::vector<std::string> SetLayoutLocked(Job& job, std::vector<HostEntry> hosts, int generation);
  // A node a restart left out may still run ranks of an old generation (a network cut:
  // the kill never reached it). Kills every generation of the job there as soon as it
  // answers again, asking every 0.2 to 2 s until the agent confirms (job_restart.cc).
  // Task thread; ends with the kill confirmed or coordd stopping.
  void KillLeftOutWhenBack(const std::string& job_id, const HostEntry& node);
  void MaybeSucceedLocked(Job& job);
  void JournalStateLocked(Job& job);
  // Compacts the journal when it has grown enough (JobManagerOptions), forgetting old
  // finished jobs beyond keep_finished_jobs first.
  void MaybeCompactJournalLocked();
  Job* FindLocked(const std::string& job_id);
  StatusOr<Job*> ResolveLocked(const std::string& job_id);
  std::vector<AgentClient*> ClientsLocked(const JobPlan& plan);
  void EnsureLinksLocked(const JobPlan& plan);

  // --- agent fan-out (no lock) ---
  struct KillOutcome {
    bool clean = true;
    std::vector<std::string> unconfirmed;  // "host:port"
    std::vector<std::string> errors;       // one line per node that did not confirm
    int signalled = 0;                     // ranks still running when the kill began
  };
  // On the job's current nodes.
  KillOutcome KillEverywhere(const std::string& job_id, int generation, int grace_ms);
  // deadline_ms: for each Kill RPC; 0: the grace plus a generous slack.
  KillOutcome KillOn(const std::string& job_id, const std::vector<HostEntry>& hosts, int generation,
                     int grace_ms, int deadline_ms);
  void FetchStderrTail(const std::string& job_id);
  void RunTask(Followup task);

  // Waits on cv_ until clock_ reaches until_mono or done() holds (re-reading a fake
  // clock every MaxSleepMs).
  void WaitUntilLocked(std::unique_lock<std::mutex>& lock, int64_t until_mono,
                       const std::function<bool()>& done);

  const JobManagerOptions options_;
  const std::shared_ptr<const Clock> clock_;
  std::unique_ptr<Journal> journal_;
  JobHistory history_;  // its own leaf lock (after mu_)
  CheckMemo check_memo_;  // its own leaf lock; used without mu_

  std::mutex mu_;
  std::condition_variable cv_;  // monitor wakeups and GetJob's wait for failure details
  bool stopping_ = false;       // guarded by mu_
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // guarded by mu_
  std::vector<std::string> order_;                    // job ids, oldest first; guarded by mu_
  // Agent targets ("host:port") -> link. Links are never removed, so the AgentClient* they
  // hold stay valid for the JobManager's life and are used outside mu_.
  std::map<std::string, std::unique_ptr<AgentLink>> links_;  // guarded by mu_

  std::thread monitor_;

  std::mutex tasks_mu_;                      // leaf lock
  std::vector<std::thread> tasks_;           // guarded by tasks_mu_
  std::vector<std::thread::id> done_tasks_;  // finished, to be joined; guarded by tasks_mu_
};

}  // namespace coord::coordinator
