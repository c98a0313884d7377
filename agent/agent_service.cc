// AgentService RPC logic (see agent_service.h): Launch, Kill, Watch, TailLogs,
// ListJobs, Ping, ReservePort. State tracking and restart recovery live in
// agent_state.cc. Runs in coord-agent on gRPC threads.
#include "agent/agent_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <set>

#include "agent/cgroup.h"
#include "agent/gen_monitor.h"
#include "agent/log_tailer.h"
#include "agent/rank_env.h"
#include "common/disk_space.h"
#include "common/fs.h"
#include "common/logging.h"

namespace coord::agent {
namespace {

constexpr int kMaxRanksPerNode = 4096;
constexpr int kMaxGraceMs = 3600 * 1000;

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

std::string RandomId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%08x%08x", rd(), rd());
  return buf;
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// The agent's own environment minus what belongs to the agent process alone.
std::vector<std::string> BaseEnviron() {
  std::vector<std::string> out;
  for (auto& e : CurrentEnviron()) {
    if (e.compare(0, 14, "NOTIFY_SOCKET=") == 0 || e.compare(0, 11, "LISTEN_FDS=") == 0 ||
        e.compare(0, 11, "LISTEN_PID=") == 0 || e.compare(0, 14, "COORD_JOB_TAG=") == 0) {
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

AgentService::AgentService(const AgentServiceOptions& options)
    : options_(options),
      clock_(options.clock ? options.clock : SystemClock()),
      processes_(options.processes ? options.processes
                                   : MakeRealNodeProcesses(options.supervisor_path)),
      hostname_(Hostname()),
      agent_id_(RandomId()),
      agent_tag_(AgentTag(options.state_dir)),
      start_time_ms_(clock_->WallMs()),
      system_(options.system ? options.system : env_check::MakeRealSystem()),
      hub_(agent_id_, clock_),
      ports_(60000, clock_) {}

AgentService::~AgentService() { Shutdown(); }

StatusOr<std::unique_ptr<AgentService>> AgentService::Create(const AgentServiceOptions& options) {
  if (options.state_dir.empty() || options.state_dir[0] != '/') {
    return InvalidArgument("state dir must be an absolute path");
  }
  std::unique_ptr<AgentService> s(new AgentService(options));
  RETURN_IF_ERROR(s->Init());
  return s;
}

Status AgentService::Init() {
  RETURN_IF_ERROR(MakeDirs(JobsDir(options_.state_dir), 0700));
  GenWatcher::Callbacks cb;
  cb.on_file = [this](uint64_t key, const std::string& name) { OnFile(key, name); };
  cb.on_pid_exit = [this](uint64_t key) { OnPidExit(key); };
  cb.on_overflow = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, gen] : by_key_) SyncFromDiskLocked(*gen);
  };
  cb.on_tick = [this] { OnTick(); };
  constexpr int kTickMs = 250;
  ASSIGN_OR_RETURN(monitor_, options_.make_watcher
                                 ? options_.make_watcher(std::move(cb), kTickMs, clock_)
                                 : GenMonitor::Create(std::move(cb), kTickMs, clock_));
  Recover();
  return Status::Ok();
}

void AgentService::Shutdown() {
  if (shutting_down_.exchange(true)) return;
  hub_.Close();
  if (monitor_) monitor_->Stop();
}

// --- Ping, ReservePort, ListJobs ------------------------------------------------

Status AgentService::Ping(const PingRequest&, PingReply* reply) {
  reply->set_hostname(hostname_);
  reply->set_agent_id(agent_id_);
  reply->set_version(kVersion);
  reply->set_start_time_ms(start_time_ms_);
  reply->set_time_ms(clock_->WallMs());
  return Status::Ok();
}

Status AgentService::ReservePort(const ReservePortRequest& req, ReservePortReply* reply) {
  RETURN_IF_ERROR(ValidateJobId(req.job_id()));
  if (req.ttl_ms() < 0 || req.ttl_ms() > 24 * 3600 * 1000) {
    return InvalidArgument("ttl_ms must be in [0, 1 day]");
  }
  ASSIGN_OR_RETURN(int port, ports_.Reserve(req.job_id(), req.ttl_ms()));
  reply->set_port(port);
  return Status::Ok();
}

Status AgentService::ListJobs(const ListJobsRequest&, ListJobsReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [job_id, gens] : jobs_) {
    for (const auto& [g, gen] : gens) {
      JobGeneration* jg = reply->add_jobs();
      jg->set_job_id(job_id);
      jg->set_generation(g);
      jg->set_log_dir(gen->dir);
      for (const auto& r : gen->ranks) *jg->add_ranks() = MakeRankStatusLocked(*gen, r);
      bool all_exited = !gen->ranks.empty();
      for (const auto& r : gen->ranks) all_exited = all_exited && r.state == RANK_EXITED;
      jg->set_finished(HasEnded(gen->state) || (all_exited && !IsLaunching(gen->state)));
    }
  }
  return Status::Ok();
}

// --- Launch ----------------------------------------------------------------------

Status AgentService::ValidateLaunch(const LaunchRequest& req) const {
  RETURN_IF_ERROR(ValidateJobId(req.job_id()));
  if (req.generation() < 0) return InvalidArgument("generation must be >= 0");
  if (req.num_nodes() < 1) return InvalidArgument("num_nodes must be >= 1");
  if (req.node_rank() < 0 || req.node_rank() >= req.num_nodes()) {
    return InvalidArgument("node_rank " + std::to_string(req.node_rank()) + " is not in [0, " +
                           std::to_string(req.num_nodes()) + ")");
  }
  if (req.world_size() < 1) return InvalidArgument("world_size must be >= 1");
  if (req.ranks_size() == 0) return InvalidArgument("no ranks to launch");
  if (req.ranks_size() > kMaxRanksPerNode || req.ranks_size() > req.world_size()) {
    return InvalidArgument(std::to_string(req.ranks_size()) + " ranks on one node but world_size " +
                           std::to_string(req.world_size()));
  }
  std::set<int> seen;
  for (int r : req.ranks()) {
    if (r < 0 || r >= req.world_size()) {
      return InvalidArgument("rank " + std::to_string(r) +
                             " is not in [0, world_size=" + std::to_string(req.world_size()) + ")");
    }
    if (!seen.insert(r).second)
      return InvalidArgument("rank " + std::to_string(r) + " listed twice");
  }
  if (req.master_addr().empty() || HasNul(req.master_addr())) {
    return InvalidArgument("master_addr is empty or contains NUL");
  }
  if (req.master_port() < 1 || req.master_port() > 65535) {
    return InvalidArgument("master_port " + std::to_string(req.master_port()) +
                           " is not in 1..65535");
  }
  if (req.max_restarts() < 0) return InvalidArgument("max_restarts must be >= 0");
  if (req.argv_size() == 0 || req.argv(0).empty()) return InvalidArgument("argv is empty");
  for (const auto& a : req.argv()) {
    if (HasNul(a)) return InvalidArgument("argv contains a NUL character");
  }
  for (const auto& [k, v] : req.env()) RETURN_IF_ERROR(ValidateEnvEntry(k, v));
  if (req.workdir().empty() || req.workdir()[0] != '/' || HasNul(req.workdir()) ||
      !IsDirectory(req.workdir())) {
    return FailedPrecondition(
        "workdir " + (req.workdir().empty() ? "''" : req.workdir()) + " does not exist on node " +
        hostname_ +
        (req.workdir().empty() || req.workdir()[0] == '/' ? "" : " (it must be an absolute path)"));
  }
  return Status::Ok();
}

StatusOr<GenSpec> AgentService::BuildSpec(const LaunchRequest& req, const std::string& tag,
                                          const std::string& cgroup_dir) const {
  GenSpec spec;
  spec.job_id = req.job_id();
  spec.generation = req.generation();
  spec.node_rank = req.node_rank();
  spec.tag = tag;
  spec.workdir = req.workdir();
  spec.cgroup_dir = cgroup_dir;
  std::vector<std::string> base = BaseEnviron();
  std::map<std::string, std::string> job_env(req.env().begin(), req.env().end());
  for (int i = 0; i < req.ranks_size(); ++i) {
    RankEnvInput in;
    in.job_id = req.job_id();
    in.generation = req.generation();
    in.node_rank = req.node_rank();
    in.num_nodes = req.num_nodes();
    in.world_size = req.world_size();
    in.rank = req.ranks(i);
    in.local_rank = i;
    in.local_world_size = req.ranks_size();
    in.master_addr = req.master_addr();
    in.master_port = req.master_port();
    in.max_restarts = req.max_restarts();
    in.job_tag = tag;
    in.node_name = req.node_name();
    in.flight_record = JoinPath(GenDir(options_.state_dir, req.job_id(), req.generation()),
                                RankFlightName(req.ranks(i)));
    RankSpec rs;
    rs.rank = req.ranks(i);
    rs.local_rank = i;
    rs.argv.assign(req.argv().begin(), req.argv().end());
    rs.env = BuildRankEnv(base, job_env, in);
    spec.ranks.push_back(std::move(rs));
  }
  return spec;
}

void AgentService::DropGeneration(const GenPtr& gen) {
  monitor_->UnwatchDir(gen->key);
  (void)RemoveTree(gen->dir);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(gen->job_id);
  if (it != jobs_.end()) {
    it->second.erase(gen->generation);
    if (it->second.empty()) jobs_.erase(it);
  }
  by_key_.erase(gen->key);
  SetGenStateLocked(*gen, GenState::kDropped);
  launch_cv_.notify_all();
}

Status AgentService::Launch(const LaunchRequest& req, LaunchReply* reply) {
  if (shutting_down_) return Unavailable("agent on " + hostname_ + " is shutting down");
  RETURN_IF_ERROR(ValidateLaunch(req));
  RETURN_IF_ERROR(CheckRoomForLaunch());
  std::string dir = GenDir(options_.state_dir, req.job_id(), req.generation());
  auto gen = std::make_shared<Generation>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (FindLocked(req.job_id(), req.generation()) || PathExists(dir)) {
      return AlreadyExists("job " + req.job_id() + " generation " +
                           std::to_string(req.generation()) + " already exists on node " +
                           hostname_);
    }
    gen->key = next_key_++;
    gen->job_id = req.job_id();
    gen->generation = req.generation();
    gen->node_rank = req.node_rank();
    gen->dir = dir;
    gen->tag = JobTag(agent_tag_, req.job_id(), req.generation());
    if (!options_.cgroup_parent.empty()) {
      gen->cgroup_dir = GenCgroupDir(options_.cgroup_parent, req.job_id(), req.generation());
    }
    for (int i = 0; i < req.ranks_size(); ++i) {
      Rank r;
      r.rank = req.ranks(i);
      r.local_rank = i;
      gen->ranks.push_back(r);
    }
    gen->state = GenState::kLaunching;  // its first state: not yet visible to anyone
    jobs_[gen->job_id][gen->generation] = gen;
    by_key_[gen->key] = gen;
  }
  Status st = StartGeneration(req, gen, reply);
  std::lock_guard<std::mutex> lock(mu_);
  FinishLaunchLocked(*gen);
  launch_cv_.notify_all();
  return st;
}

// A launch needs room for its records and the ranks' first logs; on a fuller disk it is
// refused with the reason, while running generations go on (their last records have a
// reserve of their own: state_dir.h).
Status AgentService::CheckRoomForLaunch() const {
  if (options_.min_free_mb <= 0) return Status::Ok();
  ASSIGN_OR_RETURN(const uint64_t free_bytes, FreeBytes(options_.state_dir));
  if (free_bytes >= static_cast<uint64_t>(options_.min_free_mb) << 20) return Status::Ok();
  return ResourceExhausted(
      "node " + hostname_ + ": state dir " + options_.state_dir + " has only " +
      std::to_string(free_bytes / 1024) + " KiB free, and coord-agent wants " +
      std::to_string(options_.min_free_mb) + " MiB (--min-free-mb) for a launch's logs and " +
      "records; free space there (old jobs' logs go with --keep-jobs) to launch on this node "
      "(running jobs are still supervised)");
}

// Writes the spec, starts the supervisor and waits for its handshake.
Status AgentService::StartGeneration(const LaunchRequest& req, const GenPtr& gen,
                                     LaunchReply* reply) {
  const std::string what = "job " + gen->job_id + " generation " + std::to_string(gen->generation) +
                           " on node " + hostname_;
  const int64_t t_start = clock_->MonoMs();
  Status st = MakeDirs(Dirname(gen->dir), 0755);
  if (st.ok() && mkdir(gen->dir.c_str(), 0755) != 0) st = ErrnoStatus("mkdir " + gen->dir, errno);
  StatusOr<GenSpec> spec = BuildSpec(req, gen->tag, gen->cgroup_dir);
  if (st.ok() && !spec.ok()) st = spec.status();
  if (st.ok()) st = CreateRecordReserve(gen->dir);
  if (st.ok()) st = WriteRecord(JoinPath(gen->dir, kSpecFile), ToJson(*spec));
  // Watch before the supervisor exists, so no record it writes can be missed.
  if (st.ok()) st = monitor_->WatchDir(gen->key, gen->dir);
  // The reserved MASTER_PORT is freed right before the ranks may bind it.
  if (st.ok()) ports_.Release(req.job_id(), req.master_port());
  StatusOr<SpawnedSupervisor> sup =
      st.ok() ? processes_->SpawnSupervisor(gen->dir) : StatusOr<SpawnedSupervisor>(st);
  if (!sup.ok()) {
    DropGeneration(gen);
    return sup.status().WithContext("cannot launch " + what);
  }
  {
    // Watched from now on: a supervisor that dies at any point is noticed.
    std::lock_guard<std::mutex> lock(mu_);
    gen->supervisor = {sup->pid, processes_->StartTicks(sup->pid)};
    Status w = monitor_->WatchPid(gen->key, sup->pid, gen->supervisor.start_ticks);
    if (!w.ok()) {
      LOG_DEBUG << w.ToString();  // already gone: OnTick notices it after the handshake
    }
  }
  const int64_t t_spawned = clock_->MonoMs();
  LaunchAck ack = processes_->WaitLaunchAck(*sup, options_.launch_timeout_ms);
  LOG_DEBUG << "launch of " << what << ": supervisor started in " << (t_spawned - t_start)
            << " ms, ranks exec'd " << (clock_->MonoMs() - t_spawned) << " ms later";
  Launched launched;
  Status rec = ReadRecord(JoinPath(gen->dir, kLaunchedFile), &launched);
  std::unique_lock<std::mutex> lock(mu_);
  SyncFromDiskLocked(*gen);
  if (HasEnded(gen->state)) monitor_->UnwatchDir(gen->key);
  if (ack == LaunchAck::kOk) {
    for (const auto& r : gen->ranks) {
      RankInfo* info = reply->add_ranks();
      info->set_rank(r.rank);
      info->set_local_rank(r.local_rank);
      info->set_pid(r.proc.pid);
    }
    reply->set_log_dir(gen->dir);
    LOG_INFO << "launched " << what << ": " << gen->ranks.size() << " ranks";
    return Status::Ok();
  }
  if (ack == LaunchAck::kFail && rec.ok()) {
    LOG_WARN << "launch of " << what << " failed: " << launched.error;
    return FailedPrecondition("node " + hostname_ + ": job " + gen->job_id + ": " + launched.error);
  }
  // The supervisor died or hung: make sure nothing of the generation survives.
  // Not reaped yet (OnPidExit leaves launching generations alone), so this pid
  // is still the supervisor's, alive or a zombie.
  processes_->SigKill(sup->pid);
  KillTarget target = MakeKillTargetLocked(*gen);
  lock.unlock();
  KillOutcome killed = processes_->KillGenerations({target}, 0);
  processes_->ReapIfOurChild(sup->pid);
  auto log_tail = ReadFile(JoinPath(gen->dir, kSupervisorLog));
  std::string tail =
      log_tail.ok() ? log_tail->substr(log_tail->size() > 400 ? log_tail->size() - 400 : 0) : "";
  LOG_ERROR << "supervisor of " << what << " failed; killed " << killed.killed.size()
            << " processes; its log ends: " << tail;
  if (ack == LaunchAck::kTimeout) {
    return DeadlineExceeded("launch of " + what + " did not finish within " +
                            std::to_string(options_.launch_timeout_ms) + " ms");
  }
  return Internal("the supervisor of " + what + " exited before launching: " + tail);
}

// --- Kill ------------------------------------------------------------------------

void AgentService::WaitForLaunchesLocked(std::unique_lock<std::mutex>& lock,
                                         const std::vector<GenPtr>& gens, int64_t deadline_ms) {
  auto launching = [&] {
    for (const auto& g : gens) {
      if (IsLaunching(g->state)) return true;
    }
    return false;
  };
  // Woken by launch_cv_; the slices let a deadline on the injected clock pass.
  while (launching()) {
    const int64_t left = deadline_ms - clock_->MonoMs();
    if (left <= 0) return;
    launch_cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 100)));
  }
}

Status AgentService::Kill(const KillRequest& req, KillReply* reply) {
  RETURN_IF_ERROR(ValidateJobId(req.job_id()));
  if (req.generation() < -1) return InvalidArgument("generation must be >= -1");
  if (req.grace_ms() < 0 || req.grace_ms() > kMaxGraceMs) {
    return InvalidArgument("grace_ms must be in [0, " + std::to_string(kMaxGraceMs) + "]");
  }
  int grace = req.grace_ms() > 0 ? req.grace_ms() : options_.default_grace_ms;
  std::vector<KillTarget> targets;
  std::vector<GenPtr> gens;
  bool job_known = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = jobs_.find(req.job_id());
    job_known = it != jobs_.end();
    if (job_known) {
      for (auto& [g, gen] : it->second) {
        if (req.generation() == -1 || req.generation() == g) gens.push_back(gen);
      }
    }
    // A generation still being launched is killed once its ranks exist, so no
    // rank can start after the kill has looked.
    WaitForLaunchesLocked(lock, gens, clock_->MonoMs() + options_.launch_timeout_ms + 5000);
    for (auto& g : gens) targets.push_back(MakeKillTargetLocked(*g));
  }
  reply->set_job_known(job_known);
  if (gens.empty()) {
    // Nothing known here, but never leave a stray with our tag for this job.
    std::set<std::string> tags;
    for (const auto& p : processes_->FindTagged(agent_tag_ + ":" + req.job_id() + ":g")) {
      LOG_WARN << "kill of " << req.job_id() << ": found stray pid " << p.pid << " (" << p.tag
               << ") of no known generation";
      tags.insert(p.tag);
    }
    for (const auto& tag : tags) {
      KillTarget t;
      t.tag = tag;
      targets.push_back(t);
    }
    if (targets.empty()) return Status::Ok();
  }
  for (auto& g : gens) {
    (void)WriteRecordOrUseReserve(g->dir, JoinPath(g->dir, kKilledFile),
                      "{\"time_ms\":" + std::to_string(clock_->WallMs()) + "}\n");
  }
  int64_t t0 = clock_->MonoMs();
  KillOutcome out = processes_->KillGenerations(targets, grace);
  reply->set_ranks_signalled(out.ranks_signalled);
  reply->set_sigkilled(out.sigkilled);
  reply->set_survivors(static_cast<int>(out.survivors.size()));
  for (int pid : out.survivors) reply->add_survivor_pids(pid);
  for (auto& t : targets) {
    if (!t.cgroup_dir.empty() && out.survivors.empty()) RemoveCgroupTree(t.cgroup_dir);
  }
  LogMessage(out.survivors.empty() ? LogLevel::kInfo : LogLevel::kError)
      << "kill " << req.job_id() << " g" << req.generation() << ": " << out.ranks_signalled
      << " ranks signalled, " << out.sigkilled << " SIGKILLed, " << out.survivors.size()
      << " survivors, " << (clock_->MonoMs() - t0) << " ms";
  return Status::Ok();
}

// --- Watch -----------------------------------------------------------------------

Status AgentService::Watch(const WatchRequest& req, const StreamWriter& write,
                           const CancelledFn& cancelled) {
  if (req.heartbeat_ms() < 0) return InvalidArgument("heartbeat_ms must be >= 0");
  int hb = req.heartbeat_ms() > 0 ? std::max(10, std::min(req.heartbeat_ms(), 600000))
                                  : options_.heartbeat_ms;
  std::shared_ptr<EventHub::Subscription> sub;
  std::vector<AgentEvent> snapshot;
  {
    // Subscribing and snapshotting under mu_ (which every publisher holds) means
    // each change is either in the snapshot or queued after it, never both/neither.
    std::lock_guard<std::mutex> lock(mu_);
    sub = hub_.Subscribe();
    for (const auto& [job_id, gens] : jobs_) {
      for (const auto& [g, gen] : gens) {
        for (const auto& r : gen->ranks) {
          if (r.state == RANK_STATE_UNKNOWN) continue;
          AgentEvent ev;
          ev.set_replay(true);
          *ev.mutable_rank() = MakeRankStatusLocked(*gen, r);
          snapshot.push_back(hub_.Stamp(std::move(ev)));
        }
      }
    }
  }
  struct Unsub {
    EventHub* hub;
    std::shared_ptr<EventHub::Subscription> sub;
    ~Unsub() { hub->Unsubscribe(sub); }
  } unsub{&hub_, sub};
  for (const auto& ev : snapshot) {
    if (!write(ev)) return Status(StatusCode::kCancelled, "watcher went away");
  }
  int64_t next_hb = clock_->MonoMs();  // a first heartbeat right after the snapshot marks its end
  int64_t next_usage = next_hb;
  std::map<std::string, int64_t> progress_sent;  // per rank: the records its timings covered
  for (;;) {
    if (cancelled()) return Status(StatusCode::kCancelled, "watcher went away");
    int64_t now = clock_->MonoMs();
    if (now >= next_hb) {
      AgentEvent ev;
      int running = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [id, gens] : jobs_) {
          for (const auto& [g, gen] : gens) {
            for (const auto& r : gen->ranks) running += r.state == RANK_RUNNING;
          }
        }
        CollectProgressLocked(ev.mutable_heartbeat(), &progress_sent);
      }
      ev.mutable_heartbeat()->set_running_ranks(running);
      // Read without mu_: /proc and NVML must not stall launches and kills.
      if (options_.sample_usage && options_.usage_ms > 0 && now >= next_usage) {
        options_.sample_usage(ev.mutable_heartbeat()->mutable_usage());
        next_usage = now + options_.usage_ms;
      }
      if (!write(hub_.Stamp(std::move(ev)))) {
        return Status(StatusCode::kCancelled, "watcher went away");
      }
      next_hb = now + hb;
    }
    AgentEvent ev;
    int wait_ms = static_cast<int>(std::min<int64_t>(100, std::max<int64_t>(1, next_hb - now)));
    switch (hub_.Next(sub, wait_ms, &ev)) {
      case EventHub::Wait::kEvent:
        if (!write(ev)) return Status(StatusCode::kCancelled, "watcher went away");
        break;
      case EventHub::Wait::kClosed:
        return Unavailable("agent on " + hostname_ + " is shutting down");
      case EventHub::Wait::kOverflow:
        return Status(StatusCode::kResourceExhausted, "watcher fell too far behind; watch again");
      case EventHub::Wait::kTimeout:
        break;
    }
  }
}

// --- TailLogs --------------------------------------------------------------------

Status AgentService::TailLogs(const TailLogsRequest& req, const LogWriter& write,
                              const CancelledFn& cancelled) {
  RETURN_IF_ERROR(ValidateJobId(req.job_id()));
  if (req.generation() < -1) return InvalidArgument("generation must be >= -1");
  if (req.rank() < -1) return InvalidArgument("rank must be >= -1");
  if (req.tail_lines() < 0) return InvalidArgument("tail_lines must be >= 0");
  if (req.stream() != LOG_BOTH && req.stream() != LOG_STDOUT && req.stream() != LOG_STDERR) {
    return InvalidArgument("unknown log stream " + std::to_string(req.stream()));
  }
  GenPtr gen;
  std::vector<LogSource> sources;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gen = FindLocked(req.job_id(), req.generation());
    if (!gen) {
      return NotFound("job " + req.job_id() +
                      (req.generation() >= 0 ? " generation " + std::to_string(req.generation())
                                             : std::string()) +
                      " is not known on node " + hostname_);
    }
    for (const auto& r : gen->ranks) {
      if (req.rank() >= 0 && r.rank != req.rank()) continue;
      if (req.stream() != LOG_STDERR) {
        sources.push_back({r.rank, LOG_STDOUT, JoinPath(gen->dir, RankOutName(r.rank))});
      }
      if (req.stream() != LOG_STDOUT) {
        sources.push_back({r.rank, LOG_STDERR, JoinPath(gen->dir, RankErrName(r.rank))});
      }
    }
  }
  if (sources.empty()) {
    return NotFound("rank " + std::to_string(req.rank()) + " of job " + req.job_id() +
                    " does not run on node " + hostname_);
  }
  auto finished = [this, gen] {
    std::lock_guard<std::mutex> lock(mu_);
    if (HasEnded(gen->state)) return true;
    if (IsLaunching(gen->state)) return false;
    for (const auto& r : gen->ranks) {
      if (r.state != RANK_EXITED) return false;
    }
    return true;
  };
  auto stop = [this, &cancelled] { return shutting_down_.load() || cancelled(); };
  return StreamLogs(std::move(sources), req.tail_lines(), req.follow(), 50, finished, stop, write);
}

}  // namespace coord::agent
