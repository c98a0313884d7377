// AgentService state tracking: applying the records supervisors write (via the
// GenWatcher's callbacks: inotify and pidfds in production), restart recovery (re-adopt live
// generations, kill what nobody supervises), RankStatus building and the two
// lifecycle setters. Runs in coord-agent: Recover() at start, the On* callbacks
// on the watcher's thread.
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "agent/agent_service.h"
#include "agent/cgroup.h"
#include "common/fs.h"
#include "common/logging.h"

namespace coord::agent {

// --- lifecycles ----------------------------------------------------------------------

bool AgentService::SetGenStateLocked(Generation& gen, GenState to) {
  if (!IsValidTransition(gen.state, to)) {
    LOG_ERROR << "internal error: job " << gen.job_id << " g" << gen.generation
              << ": generation state " << GenStateName(gen.state) << " -> " << GenStateName(to)
              << " is not an edge of the lifecycle; staying " << GenStateName(gen.state);
    return false;
  }
  gen.state = to;
  return true;
}

bool AgentService::SetRankStateLocked(const Generation& gen, Rank& r, RankState to) {
  if (!IsValidTransition(r.state, to)) {
    LOG_ERROR << "internal error: job " << gen.job_id << " g" << gen.generation << " rank "
              << r.rank << ": " << RankStateName(r.state) << " -> " << RankStateName(to)
              << " is not an edge of the lifecycle; staying " << RankStateName(r.state);
    return false;
  }
  r.state = to;
  return true;
}

void AgentService::FinishLaunchLocked(Generation& gen) {
  switch (gen.state) {
    case GenState::kLaunching:
      SetGenStateLocked(gen, GenState::kRunning);
      break;
    case GenState::kLaunchingEnded:
      SetGenStateLocked(gen, GenState::kEnded);
      break;
    case GenState::kDropped:  // the failed launch already forgot it
      break;
    default:
      LOG_ERROR << "internal error: job " << gen.job_id << " g" << gen.generation
                << ": a launch ended in state " << GenStateName(gen.state);
      break;
  }
}

// --- lookups and events ------------------------------------------------------------

AgentService::GenPtr AgentService::FindLocked(const std::string& job_id, int generation) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.empty()) return nullptr;
  if (generation < 0) return it->second.rbegin()->second;  // the latest
  auto g = it->second.find(generation);
  return g == it->second.end() ? nullptr : g->second;
}

RankStatus AgentService::MakeRankStatusLocked(const Generation& gen, const Rank& r) const {
  RankStatus s;
  s.set_job_id(gen.job_id);
  s.set_generation(gen.generation);
  s.set_node_rank(gen.node_rank);
  s.set_rank(r.rank);
  s.set_local_rank(r.local_rank);
  s.set_pid(r.proc.pid);
  s.set_state(r.state);
  s.set_start_time_ms(r.start_ms);
  if (r.state == RANK_EXITED) {
    s.set_exit_code(r.exit.exit_code);
    s.set_signal(r.exit.signal);
    s.set_end_time_ms(r.exit.end_ms);
    s.set_error(r.exit.error);
  }
  return s;
}

void AgentService::PublishLocked(const Generation& gen, const Rank& r) {
  AgentEvent ev;
  *ev.mutable_rank() = MakeRankStatusLocked(gen, r);
  hub_.Publish(std::move(ev));
}

KillTarget AgentService::MakeKillTargetLocked(const Generation& gen) const {
  KillTarget t;
  t.tag = gen.tag;
  t.cgroup_dir = gen.cgroup_dir;
  for (const auto& r : gen.ranks) {
    if (r.state == RANK_RUNNING) t.rank_mains.push_back(r.proc);
  }
  return t;
}

// --- applying records ----------------------------------------------------------------

// A record may be seen twice (read by a resync, then its inotify event): only
// the first sighting changes the state, and a record that is already reflected
// is no transition at all.
void AgentService::ApplyStartedLocked(Generation& gen, int rank) {
  for (auto& r : gen.ranks) {
    if (r.rank != rank || r.state != RANK_STATE_UNKNOWN) continue;
    RankStarted rec;
    if (!ReadRecord(JoinPath(gen.dir, RankStartedName(rank)), &rec).ok()) return;
    if (!SetRankStateLocked(gen, r, RANK_RUNNING)) return;
    r.proc = rec.proc;
    r.start_ms = rec.start_ms;
    PublishLocked(gen, r);
  }
}

void AgentService::ApplyExitLocked(Generation& gen, int rank) {
  for (auto& r : gen.ranks) {
    if (r.rank != rank || r.state == RANK_EXITED) continue;
    RankExit rec;
    if (!ReadRecord(JoinPath(gen.dir, RankExitName(rank)), &rec).ok()) return;
    // An exec failure has no started record; the exit still counts as the end.
    if (!SetRankStateLocked(gen, r, RANK_EXITED)) return;
    r.exit = rec;
    PublishLocked(gen, r);
  }
}

void AgentService::CheckDoneLocked(Generation& gen) {
  if (!HasEnded(gen.state) && PathExists(JoinPath(gen.dir, kDoneFile))) {
    SetGenStateLocked(gen, EndedStateFrom(gen.state));
    if (gen.state == GenState::kEnded) PruneStateLocked();
  }
}

void AgentService::PruneStateLocked() {
  if (options_.keep_jobs < 0) return;
  // Finished jobs (every generation ended, Launch returned), newest last rank exit first.
  std::vector<std::pair<int64_t, std::string>> finished;
  for (const auto& [job_id, gens] : jobs_) {
    bool ended = true;
    int64_t last_ms = 0;
    for (const auto& [g, gen] : gens) {
      ended = ended && gen->state == GenState::kEnded;
      for (const Rank& r : gen->ranks) last_ms = std::max(last_ms, r.exit.end_ms);
    }
    if (ended) finished.emplace_back(last_ms, job_id);
  }
  if (finished.size() <= static_cast<size_t>(options_.keep_jobs)) return;
  std::sort(finished.rbegin(), finished.rend());
  for (size_t i = static_cast<size_t>(options_.keep_jobs); i < finished.size(); ++i) {
    const std::string& job_id = finished[i].second;
    auto& gens = jobs_[job_id];
    for (auto it = gens.begin(); it != gens.end();) {
      const Generation& gen = *it->second;
      bool clean = true;  // every rank exited 0: nothing anyone needs to read again
      for (const Rank& r : gen.ranks) {
        clean = clean && r.state == RANK_EXITED && r.exit.exit_code == 0 && r.exit.signal == 0 &&
                r.exit.error.empty();
      }
      if (!clean) {
        ++it;
        continue;
      }
      Status removed = RemoveTree(gen.dir);
      if (!removed.ok()) {
        LOG_WARN << "state retention: " << removed.ToString();
        ++it;
        continue;
      }
      LOG_INFO << "state retention: removed " << gen.dir << " (job " << job_id
               << " is older than the newest " << options_.keep_jobs << " finished jobs)";
      monitor_->UnwatchDir(gen.key);
      by_key_.erase(gen.key);
      it = gens.erase(it);
    }
    if (gens.empty()) {
      (void)rmdir(JoinPath(JobsDir(options_.state_dir), job_id).c_str());
      jobs_.erase(job_id);
    }
  }
}

void AgentService::SyncFromDiskLocked(Generation& gen) {
  if (gen.supervisor.pid == 0) {
    (void)ReadRecord(JoinPath(gen.dir, kSupervisorFile), &gen.supervisor);
  }
  for (size_t i = 0; i < gen.ranks.size(); ++i) {
    int rank = gen.ranks[i].rank;
    if (gen.ranks[i].state == RANK_STATE_UNKNOWN) ApplyStartedLocked(gen, rank);
    if (gen.ranks[i].state != RANK_EXITED) ApplyExitLocked(gen, rank);
  }
  CheckDoneLocked(gen);
}

void AgentService::OnFile(uint64_t key, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Generation& gen = *it->second;
  int rank;
  if ((rank = ParseRankRecordName(name, ".started")) >= 0) {
    ApplyStartedLocked(gen, rank);
  } else if ((rank = ParseRankRecordName(name, ".exit")) >= 0) {
    ApplyExitLocked(gen, rank);
  } else if (name == kDoneFile) {
    CheckDoneLocked(gen);
  } else if (name == kSupervisorFile && gen.supervisor.pid == 0) {
    (void)ReadRecord(JoinPath(gen.dir, kSupervisorFile), &gen.supervisor);
  }
}

// A supervisor ended. Normally it wrote `done` first; if not, it was killed and
// its ranks (if any are left) are orphans that nobody supervises.
void AgentService::OnPidExit(uint64_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  Generation& gen = *it->second;
  // While launching, Launch sees the broken handshake, kills and reaps; reaping
  // here first would free the pid for reuse before Launch's kill(pid).
  if (IsLaunching(gen.state)) return;
  processes_->ReapIfOurChild(gen.supervisor.pid);
  SyncFromDiskLocked(gen);
  if (!HasEnded(gen.state)) {
    CleanupOrphanLocked(gen,
                        "its supervisor (pid " + std::to_string(gen.supervisor.pid) + ") died");
  }
  monitor_->UnwatchDir(key);
}

void AgentService::OnTick() {
  ports_.ExpireOld();
  // Safety net for a missed pidfd (e.g. pidfd_open unsupported): a generation
  // whose supervisor is gone but that is not done.
  std::vector<uint64_t> dead;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, gen] : by_key_) {
      if (HasEnded(gen->state) || IsLaunching(gen->state) || gen->supervisor.pid == 0) continue;
      if (!processes_->Alive(gen->supervisor)) dead.push_back(key);
    }
  }
  for (uint64_t key : dead) OnPidExit(key);
}

// --- orphans and recovery ------------------------------------------------------------

void AgentService::CleanupOrphanLocked(Generation& gen, const std::string& why) {
  KillOutcome out = processes_->KillGenerations({MakeKillTargetLocked(gen)}, 0);
  for (int pid : out.killed) {
    LOG_WARN << "killed orphan pid " << pid << " of job " << gen.job_id << " g" << gen.generation
             << ": " << why;
  }
  for (int pid : out.survivors) {
    LOG_ERROR << "orphan pid " << pid << " of job " << gen.job_id << " g" << gen.generation
              << " survived SIGKILL";
  }
  for (auto& r : gen.ranks) {
    if (r.state == RANK_EXITED) continue;
    RankExit rec;
    rec.rank = r.rank;
    rec.signal = SIGKILL;
    rec.end_ms = clock_->WallMs();
    rec.error = (r.state == RANK_RUNNING ? "killed by coord-agent: " : "never started: ") + why;
    Status s = WriteRecordOrUseReserve(gen.dir, JoinPath(gen.dir, RankExitName(r.rank)), ToJson(rec));
    if (!s.ok()) {
      LOG_ERROR << s.ToString();
    }
    ApplyExitLocked(gen, r.rank);
  }
  Status s = WriteRecordOrUseReserve(gen.dir, JoinPath(gen.dir, kDoneFile),
                         "{\"end_ms\":" + std::to_string(clock_->WallMs()) + "}\n");
  if (!s.ok()) {
    LOG_ERROR << s.ToString();
  }
  SetGenStateLocked(gen, GenState::kEnded);
  if (!gen.cgroup_dir.empty()) RemoveCgroupTree(gen.cgroup_dir);
}

AgentService::GenPtr AgentService::LoadGeneration(const std::string& job_id, int generation,
                                                  const std::string& dir) {
  GenSpec spec;
  Status st = ReadRecord(JoinPath(dir, kSpecFile), &spec);
  if (!st.ok()) {
    LOG_WARN << "ignoring " << dir << ": " << st.ToString();
    return nullptr;
  }
  auto gen = std::make_shared<Generation>();
  gen->job_id = job_id;
  gen->generation = generation;
  gen->node_rank = spec.node_rank;
  gen->dir = dir;
  gen->cgroup_dir = spec.cgroup_dir;
  gen->tag = spec.tag;
  gen->state = GenState::kFound;  // its first state: adopted or ended by Recover
  for (const auto& rs : spec.ranks) {
    Rank r;
    r.rank = rs.rank;
    r.local_rank = rs.local_rank;
    gen->ranks.push_back(r);
  }
  return gen;
}

void AgentService::Recover() {
  std::lock_guard<std::mutex> lock(mu_);
  auto jobs = ListDir(JobsDir(options_.state_dir));
  int adopted = 0, finished = 0, orphaned = 0;
  for (const auto& job_id : jobs.ok() ? *jobs : std::vector<std::string>{}) {
    if (!ValidateJobId(job_id).ok()) continue;
    std::string job_dir = JoinPath(JobsDir(options_.state_dir), job_id);
    auto gens = ListDir(job_dir);
    for (const auto& name : gens.ok() ? *gens : std::vector<std::string>{}) {
      int g = ParseGenDirName(name);
      if (g < 0) continue;
      GenPtr gen = LoadGeneration(job_id, g, JoinPath(job_dir, name));
      if (!gen) continue;
      gen->key = next_key_++;
      jobs_[job_id][g] = gen;
      by_key_[gen->key] = gen;
      // Watch first, then read: a record written in between is not missed.
      Status w = monitor_->WatchDir(gen->key, gen->dir);
      if (!w.ok()) {
        LOG_WARN << w.ToString();
      }
      SyncFromDiskLocked(*gen);
      if (HasEnded(gen->state)) {
        monitor_->UnwatchDir(gen->key);
        ++finished;
        continue;
      }
      if (gen->supervisor.pid > 0 &&
          monitor_->WatchPid(gen->key, gen->supervisor.pid, gen->supervisor.start_ticks).ok()) {
        SetGenStateLocked(*gen, GenState::kRunning);
        int running = 0;
        for (const auto& r : gen->ranks) running += r.state == RANK_RUNNING;
        LOG_INFO << "re-adopted job " << job_id << " g" << g << " (supervisor pid "
                 << gen->supervisor.pid << ", " << running << " ranks running)";
        ++adopted;
        continue;
      }
      CleanupOrphanLocked(*gen, "its supervisor died while the agent was down");
      monitor_->UnwatchDir(gen->key);
      ++orphaned;
    }
  }
  KillUnknownTaggedLocked();
  PruneStateLocked();
  LOG_INFO << "state dir " << options_.state_dir << ": " << adopted << " generations re-adopted, "
           << finished << " finished, " << orphaned << " orphaned (killed)";
}

// Processes with this agent's tag prefix whose generation is unknown or finished,
// and cgroups under our parent that belong to no live generation: nobody will
// ever supervise them, so they go. Nothing else is touched.
void AgentService::KillUnknownTaggedLocked() {
  for (const auto& p : processes_->FindTagged(agent_tag_ + ":")) {
    std::string agent_tag, job_id;
    int g = -1;
    GenPtr gen;
    if (ParseJobTag(p.tag, &agent_tag, &job_id, &g)) gen = FindLocked(job_id, g);
    if (gen && !HasEnded(gen->state)) continue;
    LOG_WARN << "killing pid " << p.pid << " (COORD_JOB_TAG=" << p.tag << "): its generation is "
             << (gen ? "finished" : "unknown");
    processes_->SigKill(p.pid);
  }
  if (options_.cgroup_parent.empty()) return;
  auto names = ListDir(options_.cgroup_parent);
  for (const auto& n : names.ok() ? *names : std::vector<std::string>{}) {
    std::string dir = JoinPath(options_.cgroup_parent, n);
    if (!IsDirectory(dir)) continue;
    bool live = false;
    for (const auto& [key, gen] : by_key_) {
      live = live || (!HasEnded(gen->state) && gen->cgroup_dir == dir);
    }
    if (live) continue;
    std::vector<int> pids = CgroupProcs(dir);
    if (!pids.empty()) {
      LOG_WARN << "killing " << pids.size() << " processes in stale cgroup " << dir;
      (void)CgroupKill(dir);
    }
    RemoveCgroupTree(dir);
  }
}

// Progress records: ranks append lines to rank-R.progress (COORD_PROGRESS_FD). A
// heartbeat carries each running rank's latest one, and the timings of the records
// written since this stream's last heartbeat; a file only grows, so its size says
// whether anything new was written. Malformed records are ignored and counted, with a
// warning for a rank's first and then every 1000th.
void AgentService::CollectProgressLocked(Heartbeat* hb, std::map<std::string, int64_t>* sent) {
  for (auto& [id, gens] : jobs_) {
    for (auto& [g, gen] : gens) {
      for (Rank& r : gen->ranks) {
        if (r.state != RANK_RUNNING) continue;
        const std::string path = JoinPath(gen->dir, RankProgressName(r.rank));
        const int64_t before = r.progress.malformed_records();
        ProgressReader::Poll poll = r.progress_reader.Read(path, &r.progress);
        if (poll.grew) {
          r.progress.set_job_id(gen->job_id);
          r.progress.set_generation(gen->generation);
          r.progress.set_rank(r.rank);
        }
        if (poll.malformed > 0) {
          malformed_progress_records_ += poll.malformed;
          const int64_t after = r.progress.malformed_records();
          if (before == 0 || after / 1000 != before / 1000) {
            LOG_WARN << "job " << gen->job_id << " rank " << r.rank << ": ignored "
                     << poll.malformed << " malformed progress record(s) in " << path << " ("
                     << poll.first_error << "); " << after << " so far";
          }
        }
        if (r.progress.records() == 0) continue;
        RankProgress* out = hb->add_progress();
        *out = r.progress;
        int64_t& last = (*sent)[gen->job_id + "/" + std::to_string(gen->generation) + "/" +
                                std::to_string(r.rank)];
        if (last == r.progress.records()) out->clear_timings();  // this stream has them
        last = r.progress.records();
      }
    }
  }
}

std::vector<RunningRank> AgentService::RunningRanks() const {
  std::vector<RunningRank> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, gens] : jobs_) {
    for (const auto& [g, gen] : gens) {
      for (const Rank& r : gen->ranks) {
        if (r.state == RANK_RUNNING && r.proc.pid > 0) {
          out.push_back({gen->job_id, gen->generation, r.rank, r.local_rank, r.proc});
        }
      }
    }
  }
  return out;
}

}  // namespace coord::agent
