// The fake node of AgentService's unit tests (see fake_node.h).
#include "tests/unit/agent/fake_node.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <iterator>

#include "agent/state_dir.h"
#include "common/fs.h"

namespace coord::agent {

// --- the two interfaces the service sees ------------------------------------------

class FakeNode::Processes final : public NodeProcesses {
 public:
  explicit Processes(std::shared_ptr<FakeNode> node) : node_(std::move(node)) {}
  StatusOr<SpawnedSupervisor> SpawnSupervisor(const std::string& gen_dir) override {
    return node_->Spawn(gen_dir);
  }
  LaunchAck WaitLaunchAck(const SpawnedSupervisor& sup, int timeout_ms) override {
    return node_->WaitAck(sup, timeout_ms);
  }
  void ReapIfOurChild(int) override {}
  uint64_t StartTicks(int pid) override {
    Proc p = node_->process(pid);
    return p.alive ? p.start_ticks : 0;
  }
  bool Alive(const ProcId& proc) override {
    Proc p = node_->process(proc.pid);
    return p.alive && p.start_ticks == proc.start_ticks;
  }
  void SigKill(int pid) override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    node_->sigkilled_.push_back(pid);
    node_->DieLocked(pid);
  }
  std::vector<TaggedProc> FindTagged(const std::string& prefix) override {
    std::vector<TaggedProc> out;
    for (int pid : node_->LiveTagged(prefix)) out.push_back({pid, node_->process(pid).tag});
    return out;
  }
  KillOutcome KillGenerations(const std::vector<KillTarget>& targets, int grace_ms) override {
    return node_->Kill(targets, grace_ms);
  }

 private:
  const std::shared_ptr<FakeNode> node_;
};

class FakeNode::Watcher final : public GenWatcher {
 public:
  Watcher(std::shared_ptr<FakeNode> node, int id) : node_(std::move(node)), id_(id) {}
  ~Watcher() override { Stop(); }
  Status WatchDir(uint64_t key, const std::string& dir) override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    if (!IsDirectory(dir)) return NotFound("no directory " + dir);
    node_->dir_keys_[dir] = key;
    return Status::Ok();
  }
  void UnwatchDir(uint64_t key) override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    EraseKey(node_->dir_keys_, key);
  }
  Status WatchPid(uint64_t key, int pid, uint64_t start_ticks) override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    auto it = node_->procs_.find(pid);
    if (it == node_->procs_.end() || !it->second.alive || it->second.start_ticks != start_ticks) {
      return NotFound("process " + std::to_string(pid) + " is gone");
    }
    node_->pid_keys_[pid] = key;
    return Status::Ok();
  }
  void UnwatchPid(uint64_t key) override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    EraseKey(node_->pid_keys_, key);
  }
  void Stop() override {
    std::lock_guard<std::mutex> lock(node_->mu_);
    if (node_->watcher_id_ != id_) return;  // a later agent's watcher is current
    node_->watching_ = false;
    node_->callbacks_ = {};
  }

 private:
  template <typename Map>
  static void EraseKey(Map& m, uint64_t key) {
    for (auto it = m.begin(); it != m.end();) {
      it = it->second == key ? m.erase(it) : std::next(it);
    }
  }
  const std::shared_ptr<FakeNode> node_;
  const int id_;
};

std::shared_ptr<NodeProcesses> FakeNode::processes() {
  return std::make_shared<Processes>(shared_from_this());
}

GenWatcherFactory FakeNode::watcher_factory() {
  std::shared_ptr<FakeNode> node = shared_from_this();
  return [node](GenWatcher::Callbacks callbacks, int,
                std::shared_ptr<const Clock>) -> StatusOr<std::unique_ptr<GenWatcher>> {
    std::lock_guard<std::mutex> lock(node->mu_);
    // A new agent incarnation: nothing of the previous one's watches survives.
    node->callbacks_ = std::move(callbacks);
    node->watching_ = true;
    node->dir_keys_.clear();
    node->pid_keys_.clear();
    return std::unique_ptr<GenWatcher>(new Watcher(node, ++node->watcher_id_));
  };
}

// --- the process table and the fake supervisor --------------------------------------

void FakeNode::SetScript(const Script& script) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = script;
}

void FakeNode::ReleaseAck() {
  std::lock_guard<std::mutex> lock(mu_);
  ack_released_ = true;
  ack_cv_.notify_all();
}

int FakeNode::NewProcLocked(const std::string& tag, int rank, const std::string& gen_dir) {
  Proc p;
  p.pid = next_pid_++;
  p.start_ticks = 1000 + static_cast<uint64_t>(p.pid % 1000);
  p.tag = tag;
  p.rank = rank;
  p.gen_dir = gen_dir;
  procs_[p.pid] = p;
  return p.pid;
}

void FakeNode::WriteLocked(const std::string& dir, const std::string& name,
                           const std::string& json) {
  Status s = WriteRecord(JoinPath(dir, name), json);
  if (!s.ok()) ADD_FAILURE_AT(__FILE__, __LINE__) << s.ToString();
  events_.push_back({dir, name, 0});
}

void FakeNode::DieLocked(int pid) {
  auto it = procs_.find(pid);
  if (it == procs_.end() || !it->second.alive) return;
  it->second.alive = false;
  events_.push_back({"", "", pid});
}

StatusOr<SpawnedSupervisor> FakeNode::Spawn(const std::string& gen_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (script_.spawn_fails) return Unavailable("fake: cannot start coord-supervisor");
  ++spawns_;
  gen_scripts_[gen_dir] = script_;
  return SpawnedSupervisor{NewProcLocked("", -1, gen_dir), -1};
}

LaunchAck FakeNode::WaitAck(const SpawnedSupervisor& sup, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  last_ack_timeout_ms_ = timeout_ms;
  const Proc self = procs_.at(sup.pid);
  const std::string dir = self.gen_dir;
  const Script sc = gen_scripts_[dir];
  if (sc.hold_ack) {
    ack_cv_.wait(lock, [this] { return ack_released_; });
    ack_released_ = false;
  }
  WriteLocked(dir, kSupervisorFile, ToJson(ProcId{self.pid, self.start_ticks}));
  if (sc.ack == LaunchAck::kTimeout) return LaunchAck::kTimeout;  // hangs before any fork
  GenSpec spec;
  Status s = ReadRecord(JoinPath(dir, kSpecFile), &spec);
  if (!s.ok()) ADD_FAILURE_AT(__FILE__, __LINE__) << s.ToString();
  Launched launched;
  for (const RankSpec& rs : spec.ranks) {
    if (sc.ack == LaunchAck::kFail && sc.exec_fails.count(rs.rank)) {
      RankExit rec{rs.rank, 127, 0, clock_->WallMs(), "exec 'x': No such file or directory"};
      WriteLocked(dir, RankExitName(rs.rank), ToJson(rec));
      if (launched.ok)
        launched = {false, rs.rank, "rank " + std::to_string(rs.rank) + ": " + rec.error};
      continue;
    }
    int pid = NewProcLocked(spec.tag, rs.rank, dir);
    RankStarted rec{rs.rank, rs.local_rank, {pid, procs_[pid].start_ticks}, clock_->WallMs()};
    WriteLocked(dir, RankStartedName(rs.rank), ToJson(rec));
  }
  if (sc.ack == LaunchAck::kDied) {
    DieLocked(self.pid);
    return LaunchAck::kDied;
  }
  WriteLocked(dir, kLaunchedFile, ToJson(launched));
  if (launched.ok) return LaunchAck::kOk;
  // A generation starts whole or not at all: the ranks that did start are killed.
  for (auto& [pid, p] : procs_) {
    if (p.gen_dir == dir && p.rank >= 0 && p.alive) {
      DieLocked(pid);
      SupervisorReapsLocked(dir, p.rank, 0, SIGKILL);
    }
  }
  return LaunchAck::kFail;
}

void FakeNode::SupervisorReapsLocked(const std::string& gen_dir, int rank, int exit_code,
                                     int signal) {
  int sup = -1;
  for (const auto& [pid, p] : procs_) {
    if (p.gen_dir == gen_dir && p.rank < 0 && p.alive) sup = pid;
  }
  if (sup < 0) return;  // nobody supervises it any more: nothing is recorded
  WriteLocked(gen_dir, RankExitName(rank),
              ToJson(RankExit{rank, exit_code, signal, clock_->WallMs(), ""}));
  GenSpec spec;
  if (!ReadRecord(JoinPath(gen_dir, kSpecFile), &spec).ok()) return;
  for (const RankSpec& rs : spec.ranks) {
    if (!PathExists(JoinPath(gen_dir, RankExitName(rs.rank)))) return;
  }
  WriteLocked(gen_dir, kDoneFile, "{\"end_ms\":" + std::to_string(clock_->WallMs()) + "}\n");
  DieLocked(sup);
}

KillOutcome FakeNode::Kill(const std::vector<KillTarget>& targets, int grace_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  kill_calls_.push_back({targets, grace_ms});
  KillOutcome out;
  for (const KillTarget& t : targets) {
    for (const ProcId& m : t.rank_mains) {
      auto it = procs_.find(m.pid);
      out.ranks_signalled +=
          it != procs_.end() && it->second.alive && it->second.start_ticks == m.start_ticks;
    }
    // These ranks honour SIGTERM: with a grace period nothing needs a SIGKILL.
    for (auto& [pid, p] : procs_) {
      if (!p.alive || p.tag.empty() || p.tag != t.tag) continue;
      DieLocked(pid);
      if (grace_ms == 0) out.killed.push_back(pid);
      if (p.rank >= 0)
        SupervisorReapsLocked(p.gen_dir, p.rank, 0, grace_ms > 0 ? SIGTERM : SIGKILL);
    }
  }
  out.sigkilled = static_cast<int>(out.killed.size());
  return out;
}

// --- what happens on the node -------------------------------------------------------

void FakeNode::RankExits(const std::string& gen_dir, int rank, int exit_code) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [pid, p] : procs_) {
    if (p.gen_dir == gen_dir && p.rank == rank && p.alive) {
      DieLocked(pid);
      SupervisorReapsLocked(gen_dir, rank, exit_code, 0);
    }
  }
}

void FakeNode::KillSupervisor(const std::string& gen_dir, bool notify) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [pid, p] : procs_) {
    if (p.gen_dir != gen_dir || p.rank >= 0 || !p.alive) continue;
    DieLocked(pid);
    if (!notify) events_.pop_back();  // the pid event DieLocked queued
  }
}

int FakeNode::AddTaggedProcess(const std::string& tag) {
  std::lock_guard<std::mutex> lock(mu_);
  return NewProcLocked(tag, -1, "");
}

// --- the watcher's events ---------------------------------------------------------------

void FakeNode::Deliver() {
  for (;;) {
    std::function<void()> call;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (events_.empty()) return;
      Event ev = events_.front();
      events_.pop_front();
      if (!watching_) continue;
      if (ev.pid == 0) {
        auto it = dir_keys_.find(ev.dir);
        if (it == dir_keys_.end() || !callbacks_.on_file) continue;
        call = [cb = callbacks_.on_file, key = it->second, name = ev.name] { cb(key, name); };
      } else {
        auto it = pid_keys_.find(ev.pid);
        if (it == pid_keys_.end() || !callbacks_.on_pid_exit) continue;
        uint64_t key = it->second;
        pid_keys_.erase(it);  // one-shot, as a pidfd
        call = [cb = callbacks_.on_pid_exit, key] { cb(key); };
      }
    }
    call();
  }
}

void FakeNode::Tick() {
  std::function<void()> tick;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (watching_) tick = callbacks_.on_tick;
  }
  if (tick) tick();
}

// --- for assertions ---------------------------------------------------------------------

FakeNode::Proc FakeNode::process(int pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(pid);
  if (it == procs_.end()) {
    Proc none;
    none.alive = false;
    return none;
  }
  return it->second;
}

int FakeNode::supervisor_pid(const std::string& gen_dir) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [pid, p] : procs_) {
    if (p.gen_dir == gen_dir && p.rank < 0) return pid;
  }
  return -1;
}

int FakeNode::rank_pid(const std::string& gen_dir, int rank) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [pid, p] : procs_) {
    if (p.gen_dir == gen_dir && p.rank == rank) return pid;
  }
  return -1;
}

std::vector<int> FakeNode::LiveTagged(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> out;
  for (const auto& [pid, p] : procs_) {
    if (p.alive && !p.tag.empty() && p.tag.compare(0, prefix.size(), prefix) == 0) {
      out.push_back(pid);
    }
  }
  return out;
}

std::vector<int> FakeNode::sigkilled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sigkilled_;
}

std::vector<FakeNode::KillCall> FakeNode::kill_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kill_calls_;
}

int FakeNode::spawns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spawns_;
}

int FakeNode::last_ack_timeout_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_ack_timeout_ms_;
}

bool FakeNode::DirWatched(const std::string& dir) const {
  std::lock_guard<std::mutex> lock(mu_);
  return dir_keys_.count(dir) > 0;
}

}  // namespace coord::agent
