// coord-supervisor logic (see supervisor.h). One process per job generation per
// node; single-threaded. Ranks are started by RankSpawner (rank_spawn.h) from
// strings prepared before the first spawn.
#include "agent/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "agent/cgroup.h"
#include "agent/proc_scan.h"
#include "agent/rank_spawn.h"
#include "agent/state_dir.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/logging.h"

namespace coord::agent {

// --- exec path resolution ------------------------------------------------------

std::string ResolveExecutable(const std::string& prog, const std::string& path_env,
                              const std::string& workdir, int* err) {
  *err = ENOENT;
  if (prog.empty()) return "";
  if (prog.find('/') != std::string::npos) {
    *err = 0;
    return prog;
  }
  std::string path = path_env.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_env;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(pos, end - pos);
    pos = end + 1;
    if (dir.empty()) dir = ".";
    if (dir[0] != '/') dir = JoinPath(workdir, dir);  // relative PATH entries: from workdir
    std::string cand = JoinPath(dir, prog);
    struct stat st;
    if (stat(cand.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (access(cand.c_str(), X_OK) == 0) {
      *err = 0;
      return cand;
    }
    *err = EACCES;  // found but not executable: keep looking, report EACCES if nothing better
  }
  return "";
}

namespace {

// Everything a rank's spawn needs, prepared before the first one (RankSpawner's
// child allocates nothing).
struct RankProc {
  RankSpec spec;
  std::string exe;
  std::string cgroup_dir;    // rank cgroup, "" without cgroups
  std::string cgroup_procs;  // <cgroup_dir>/cgroup.procs
  std::string out_path, err_path, progress_path;
  std::vector<char*> argv, envp;
  int pid = 0;
  int resolve_err = 0;  // errno when exe could not be found in the rank's PATH
  bool ended = false;
};

std::string SpawnErrorText(const RankProc& r, const GenSpec& spec, const SpawnResult& res) {
  const char* what = std::strerror(res.err);
  switch (res.failed) {
    case SpawnStage::kCgroup:
      return "join cgroup " + r.cgroup_dir + ": " + what;
    case SpawnStage::kStdio:
      return "open " + r.out_path + " / .err: " + what;
    case SpawnStage::kChdir:
      return "chdir " + spec.workdir + ": " + what;
    case SpawnStage::kClone:
      return std::string("clone: ") + what;
    default:
      return "exec '" + r.spec.argv[0] + "': " + what;
  }
}

class Supervisor {
 public:
  Supervisor(std::string dir, int notify_fd) : dir_(std::move(dir)), notify_fd_(notify_fd) {}
  int Run();

 private:
  Status Prepare();
  void StartAll();
  void RecordStarts();
  void Notify(const Launched& launched);
  void KillRankLeftovers(const RankProc& r);
  void RecordExit(RankProc& r, int status, const std::string& error);
  void ReapUntilAllEnded();
  void FinalCleanup();

  std::string dir_;
  int notify_fd_;
  GenSpec spec_;
  std::vector<RankProc> ranks_;
  int live_ = 0;
  Launched launched_;
  int64_t start_ms_ = 0;
};

Status Supervisor::Prepare() {
  RETURN_IF_ERROR(ReadRecord(JoinPath(dir_, kSpecFile), &spec_));
  SetLogTag("supervisor " + spec_.job_id + " g" + std::to_string(spec_.generation));
  ProcId self{getpid(), ProcStartTicks(getpid())};
  RETURN_IF_ERROR(WriteRecord(JoinPath(dir_, kSupervisorFile), ToJson(self)));
  std::vector<int> rank_ids;
  for (const auto& rs : spec_.ranks) rank_ids.push_back(rs.rank);
  if (!spec_.cgroup_dir.empty()) RETURN_IF_ERROR(CreateGenCgroup(spec_.cgroup_dir, rank_ids));
  ranks_.resize(spec_.ranks.size());
  for (size_t i = 0; i < spec_.ranks.size(); ++i) {
    RankProc& r = ranks_[i];
    r.spec = spec_.ranks[i];
    if (r.spec.argv.empty())
      return InvalidArgument("rank " + std::to_string(r.spec.rank) + ": empty argv");
    if (!spec_.cgroup_dir.empty()) {
      r.cgroup_dir = RankCgroupDir(spec_.cgroup_dir, r.spec.rank);
      r.cgroup_procs = JoinPath(r.cgroup_dir, "cgroup.procs");
    }
    r.out_path = JoinPath(dir_, RankOutName(r.spec.rank));
    r.err_path = JoinPath(dir_, RankErrName(r.spec.rank));
    r.progress_path = JoinPath(dir_, RankProgressName(r.spec.rank));
    for (auto& a : r.spec.argv) r.argv.push_back(a.data());
    r.argv.push_back(nullptr);
    std::string path_env;
    for (auto& e : r.spec.env) {
      r.envp.push_back(e.data());
      if (e.compare(0, 5, "PATH=") == 0) path_env = e.substr(5);
    }
    r.envp.push_back(nullptr);
    r.exe = ResolveExecutable(r.spec.argv[0], path_env, spec_.workdir, &r.resolve_err);
  }
  return Status::Ok();
}

// Starts the ranks in order and stops at the first that cannot start (a generation
// starts whole or not at all: Run() then kills the ones already running). Their
// records come after the last spawn, so the slow file writes never hold up a rank.
void Supervisor::StartAll() {
  RankSpawner spawner;
  for (auto& r : ranks_) {
    std::string error;
    if (r.exe.empty()) {
      error = "exec '" + r.spec.argv[0] + "': " + std::strerror(r.resolve_err);
    } else {
      RankExec exec;
      exec.exe = r.exe.c_str();
      exec.argv = r.argv.data();
      exec.envp = r.envp.data();
      exec.cgroup_procs = r.cgroup_procs.c_str();
      exec.out_path = r.out_path.c_str();
      exec.err_path = r.err_path.c_str();
      exec.progress_path = r.progress_path.c_str();
      exec.workdir = spec_.workdir.c_str();
      SpawnResult res = spawner.Spawn(exec);
      if (res.pid > 0) {
        r.pid = res.pid;
        ++live_;
        continue;
      }
      error = SpawnErrorText(r, spec_, res);
    }
    launched_ = {false, r.spec.rank,
                 "rank " + std::to_string(r.spec.rank) + " (local rank " +
                     std::to_string(r.spec.local_rank) + "): " + error};
    RecordExit(r, -1, error);
    return;
  }
}

void Supervisor::RecordStarts() {
  for (auto& r : ranks_) {
    if (r.pid <= 0) continue;
    // The rank may already have exited (a zombie until we reap it), so read its
    // start time without the liveness filter.
    ProcStat st;
    RankStarted rec{r.spec.rank, r.spec.local_rank, {r.pid, 0}, WallMs()};
    if (ReadProcStat(r.pid, &st)) rec.proc.start_ticks = st.start_ticks;
    Status s = WriteRecord(JoinPath(dir_, RankStartedName(r.spec.rank)), ToJson(rec));
    if (!s.ok()) {
      LOG_ERROR << s.ToString();
    }
    LOG_INFO << "rank " << r.spec.rank << " started, pid " << r.pid;
  }
}

void Supervisor::Notify(const Launched& launched) {
  Status s = WriteRecord(JoinPath(dir_, kLaunchedFile), ToJson(launched));
  if (!s.ok()) {
    LOG_ERROR << s.ToString();
  }
  if (notify_fd_ < 0) return;
  const char* line = launched.ok ? "ok\n" : "fail\n";
  ssize_t ignored = write(notify_fd_, line, std::strlen(line));  // EPIPE: the agent is gone
  (void)ignored;
  close(notify_fd_);
  notify_fd_ = -1;
}

// A rank's own children die with it: everything left in its cgroup, its process
// group, and (without cgroups) whatever still carries its tag and RANK.
void Supervisor::KillRankLeftovers(const RankProc& r) {
  if (!r.cgroup_dir.empty()) {
    Status s = CgroupKill(r.cgroup_dir);
    if (!s.ok()) {
      LOG_WARN << s.ToString();
    }
  }
  kill(-r.pid, SIGKILL);
  if (r.cgroup_dir.empty()) {
    for (const auto& p : FindTagged(spec_.tag, true, r.spec.rank)) kill(p.pid, SIGKILL);
  }
}

void Supervisor::RecordExit(RankProc& r, int status, const std::string& error) {
  RankExit rec;
  rec.rank = r.spec.rank;
  rec.end_ms = WallMs();
  rec.error = error;
  if (!error.empty()) {
    rec.exit_code = 127;
  } else if (WIFSIGNALED(status)) {
    rec.signal = WTERMSIG(status);
  } else {
    rec.exit_code = WEXITSTATUS(status);
  }
  r.ended = true;
  Status s = WriteRecordOrUseReserve(dir_, JoinPath(dir_, RankExitName(r.spec.rank)), ToJson(rec));
  if (!s.ok()) {
    LOG_ERROR << s.ToString();
  }
  LOG_INFO << "rank " << r.spec.rank << " ended: "
           << (!error.empty() ? error
               : rec.signal   ? "signal " + std::to_string(rec.signal)
                              : "exit code " + std::to_string(rec.exit_code));
}

void Supervisor::ReapUntilAllEnded() {
  while (live_ > 0) {
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    // WNOWAIT: look before reaping, so the rank's pid (= its process group id)
    // cannot be reused while we kill what is left of its group.
    if (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      LOG_ERROR << "waitid: " << std::strerror(errno);
      break;
    }
    pid_t pid = info.si_pid;
    RankProc* rank = nullptr;
    for (auto& r : ranks_) {
      if (r.pid == pid && !r.ended) rank = &r;
    }
    if (rank) KillRankLeftovers(*rank);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (rank) {
      RecordExit(*rank, status, "");
      --live_;
    }
  }
}

void Supervisor::FinalCleanup() {
  if (!spec_.cgroup_dir.empty()) {
    Status s = CgroupKill(spec_.cgroup_dir);
    if (!s.ok()) {
      LOG_WARN << s.ToString();
    }
  }
  // Orphans re-parented to us (we are a subreaper) are reaped here.
  int64_t deadline = MonoMs() + 2000;
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p < 0 && errno == ECHILD) break;
    bool cgroup_empty = spec_.cgroup_dir.empty() || RemoveCgroupTree(spec_.cgroup_dir);
    if (p == 0 && cgroup_empty) break;
    if (MonoMs() > deadline) {
      LOG_WARN << "still have children or a busy cgroup after 2 s; leaving them";
      break;
    }
    if (p == 0) usleep(2000);
  }
  if (!spec_.cgroup_dir.empty() && !RemoveCgroupTree(spec_.cgroup_dir)) {
    LOG_WARN << "cannot remove cgroup " << spec_.cgroup_dir << ": " << std::strerror(errno);
  }
}

int Supervisor::Run() {
  start_ms_ = MonoMs();
  Status s = Prepare();
  if (!s.ok()) {
    LOG_ERROR << s.ToString();
    Notify({false, -1, s.message()});
    if (!spec_.cgroup_dir.empty()) RemoveCgroupTree(spec_.cgroup_dir);
    (void)WriteRecordOrUseReserve(dir_, JoinPath(dir_, kDoneFile), "{\"end_ms\":" + std::to_string(WallMs()) + "}\n");
    return 1;
  }
  int64_t t0 = MonoMs();
  StartAll();
  int64_t t1 = MonoMs();
  RecordStarts();
  LOG_INFO << "started " << live_ << " of " << ranks_.size() << " ranks: spec read in "
           << (t0 - start_ms_) << " ms, spawns " << (t1 - t0) << " ms, records written "
           << (MonoMs() - t1) << " ms later";
  if (!launched_.ok) {
    // A generation starts whole or not at all.
    LOG_ERROR << "launch failed: " << launched_.error << "; killing the ranks already started";
    for (auto& r : ranks_) {
      if (r.pid > 0 && !r.ended) KillRankLeftovers(r);
    }
  }
  Notify(launched_);
  ReapUntilAllEnded();
  FinalCleanup();
  s = WriteRecordOrUseReserve(dir_, JoinPath(dir_, kDoneFile), "{\"end_ms\":" + std::to_string(WallMs()) + "}\n");
  if (!s.ok()) {
    LOG_ERROR << s.ToString();
  }
  LOG_INFO << "all ranks ended";
  return 0;
}

}  // namespace

int RunSupervisor(const std::string& gen_dir, int notify_fd) {
  // Subreaper: a rank's orphaned (daemonized) children re-parent to us, not init,
  // so we can reap them and they stay inside what we kill.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // We live as long as the ranks; only SIGKILL ends us early (the agent then
  // cleans up). Children reset these before exec.
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  Supervisor sup(gen_dir, notify_fd);
  return sup.Run();
}

}  // namespace coord::agent
