// In-memory coord-agents (see fake_agent.h). A Watch subscriber's callbacks run under its
// own mutex, so destroying the handle waits for a delivery in progress, as the gRPC
// handle does.
#include "fake_agent.h"

#include <signal.h>

#include <chrono>
#include <thread>

#include "common/clock.h"

namespace coord::coordinator::testing {

namespace agent = coord::agent;

struct FakeAgent::Subscriber {
  std::mutex call_mu;  // held while a callback runs
  bool active = true;  // guarded by call_mu
  AgentEventFn on_event;
  WatchEndFn on_end;
};

class FakeWatchHandle final : public WatchHandle {
 public:
  FakeWatchHandle(FakeAgent* agent, std::shared_ptr<FakeAgent::Subscriber> sub)
      : agent_(agent), sub_(std::move(sub)) {}
  ~FakeWatchHandle() override {
    Cancel();
    agent_->RemoveSubscriber(sub_.get());
  }
  void Cancel() override {
    std::lock_guard<std::mutex> lock(sub_->call_mu);
    sub_->active = false;
  }

 private:
  FakeAgent* agent_;
  std::shared_ptr<FakeAgent::Subscriber> sub_;
};

namespace {

class FakeAgentClient final : public AgentClient {
 public:
  explicit FakeAgentClient(FakeAgent* agent) : agent_(agent) {}
  StatusOr<agent::PingReply> Ping(int timeout_ms) override { return agent_->Ping(timeout_ms); }
  StatusOr<agent::ReservePortReply> ReservePort(const agent::ReservePortRequest&,
                                                int timeout_ms) override {
    return agent_->ReservePort(timeout_ms);
  }
  StatusOr<agent::LaunchReply> Launch(const agent::LaunchRequest& r, int timeout_ms) override {
    return agent_->Launch(r, timeout_ms);
  }
  StatusOr<agent::KillReply> Kill(const agent::KillRequest& r, int) override {
    return agent_->Kill(r);
  }
  StatusOr<agent::ListJobsReply> ListJobs(int) override { return agent::ListJobsReply(); }
  StatusOr<agent::CheckNodeReply> CheckNode(const agent::CheckNodeRequest& r, int) override {
    return agent_->CheckNode(r);
  }
  StatusOr<agent::SharedTokensReply> SharedTokens(const agent::SharedTokensRequest&, int) override {
    return Unimplemented("fake agents have no shared path");
  }
  StatusOr<agent::RankSnapshotsReply> RankSnapshots(const agent::RankSnapshotsRequest& r,
                                                    int) override {
    return agent_->RankSnapshots(r);
  }
  std::unique_ptr<WatchHandle> Watch(int, AgentEventFn on_event, WatchEndFn on_end) override {
    return agent_->Watch(std::move(on_event), std::move(on_end));
  }
  Status TailLogs(const agent::TailLogsRequest& r, int, const LogBatchFn& on_batch,
                  const CancelledFn&) override {
    return agent_->TailLogs(r, on_batch);
  }

 private:
  FakeAgent* agent_;
};

}  // namespace

FakeAgent::~FakeAgent() = default;

void FakeAgent::SetPingStatus(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  ping_status_ = s;
}
void FakeAgent::SetPingHangs(bool h) {
  std::lock_guard<std::mutex> l(mu_);
  ping_hangs_ = h;
}
void FakeAgent::SetLaunchStatus(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  launch_status_ = s;
}
void FakeAgent::SetLaunchHangs(bool h) {
  std::lock_guard<std::mutex> l(mu_);
  launch_hangs_ = h;
}
void FakeAgent::SetReservedPort(int p) {
  std::lock_guard<std::mutex> l(mu_);
  reserved_port_ = p;
}
void FakeAgent::SetKillSurvivors(int n) {
  std::lock_guard<std::mutex> l(mu_);
  kill_survivors_ = n;
}
void FakeAgent::SetKillStatus(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  kill_status_ = s;
}
void FakeAgent::SetWatchRefused(bool r) {
  std::lock_guard<std::mutex> l(mu_);
  watch_refused_ = r;
}
void FakeAgent::SetStderr(int rank, std::vector<std::string> lines) {
  std::lock_guard<std::mutex> l(mu_);
  stderr_[rank] = std::move(lines);
}

void FakeAgent::SetCheckResults(std::vector<agent::CheckResult> results) {
  std::lock_guard<std::mutex> l(mu_);
  check_results_ = std::move(results);
}

void FakeAgent::SetRankSnapshots(StatusOr<agent::RankSnapshotsReply> reply) {
  std::lock_guard<std::mutex> l(mu_);
  snapshots_ = std::move(reply);
}

StatusOr<agent::RankSnapshotsReply> FakeAgent::RankSnapshots(const agent::RankSnapshotsRequest& r) {
  std::lock_guard<std::mutex> l(mu_);
  snapshot_requests_.push_back(r);
  return snapshots_;
}

std::vector<agent::RankSnapshotsRequest> FakeAgent::snapshot_requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return snapshot_requests_;
}

int FakeAgent::checks() const {
  std::lock_guard<std::mutex> l(mu_);
  return checks_;
}

StatusOr<agent::CheckNodeReply> FakeAgent::CheckNode(const agent::CheckNodeRequest&) {
  std::lock_guard<std::mutex> l(mu_);
  ++checks_;
  agent::CheckNodeReply reply;
  reply.set_hostname(target_);
  for (const agent::CheckResult& r : check_results_) *reply.add_results() = r;
  return reply;
}

int FakeAgent::pings() const {
  std::lock_guard<std::mutex> l(mu_);
  return pings_;
}
int FakeAgent::reserves() const {
  std::lock_guard<std::mutex> l(mu_);
  return reserves_;
}
std::vector<agent::LaunchRequest> FakeAgent::launches() const {
  std::lock_guard<std::mutex> l(mu_);
  return launches_;
}
std::vector<agent::KillRequest> FakeAgent::kills() const {
  std::lock_guard<std::mutex> l(mu_);
  return kills_;
}
std::vector<agent::TailLogsRequest> FakeAgent::tails() const {
  std::lock_guard<std::mutex> l(mu_);
  return tails_;
}
int FakeAgent::open_watches() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(subs_.size());
}
int FakeAgent::watch_opens() const {
  std::lock_guard<std::mutex> l(mu_);
  return watch_opens_;
}

agent::AgentEvent FakeAgent::RankEvent(const agent::RankStatus& rank, bool replay) {
  agent::AgentEvent e;
  e.set_seq(++seq_);
  e.set_agent_id("fake-" + target_);
  e.set_time_ms(WallMs());
  e.set_replay(replay);
  *e.mutable_rank() = rank;
  return e;
}

void FakeAgent::Deliver(const agent::AgentEvent& event) {
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard<std::mutex> l(mu_);
    subs = subs_;
  }
  for (auto& s : subs) {
    std::lock_guard<std::mutex> l(s->call_mu);
    if (s->active) s->on_event(event);
  }
}

void FakeAgent::RemoveSubscriber(Subscriber* sub) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = subs_.begin(); it != subs_.end(); ++it) {
    if (it->get() == sub) {
      subs_.erase(it);
      return;
    }
  }
}

void FakeAgent::PushRankExit(const std::string& job_id, int generation, int rank, int exit_code,
                             int signal) {
  agent::AgentEvent e;
  {
    std::lock_guard<std::mutex> l(mu_);
    agent::RankStatus& r = ranks_[{job_id, generation, rank}];
    r.set_job_id(job_id);
    r.set_generation(generation);
    r.set_rank(rank);
    r.set_state(agent::RANK_EXITED);
    r.set_exit_code(exit_code);
    r.set_signal(signal);
    r.set_end_time_ms(WallMs());
    e = RankEvent(r, false);
  }
  Deliver(e);
}

void FakeAgent::PushHeartbeat() {
  agent::AgentEvent e;
  {
    std::lock_guard<std::mutex> l(mu_);
    e.set_seq(++seq_);
    e.mutable_heartbeat()->set_running_ranks(0);
  }
  Deliver(e);
}

void FakeAgent::PushEvent(const agent::AgentEvent& event) { Deliver(event); }

void FakeAgent::BreakWatches(const Status& why) {
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard<std::mutex> l(mu_);
    subs.swap(subs_);
  }
  for (auto& s : subs) {
    std::lock_guard<std::mutex> l(s->call_mu);
    if (s->active) s->on_end(why);
    s->active = false;
  }
}

StatusOr<agent::PingReply> FakeAgent::Ping(int timeout_ms) {
  bool hangs;
  Status st;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++pings_;
    hangs = ping_hangs_;
    st = ping_status_;
  }
  if (hangs) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return DeadlineExceeded("Deadline Exceeded");
  }
  if (!st.ok()) return st;
  agent::PingReply reply;
  reply.set_hostname(target_);
  reply.set_agent_id("fake-" + target_);
  return reply;
}

StatusOr<agent::ReservePortReply> FakeAgent::ReservePort(int) {
  std::lock_guard<std::mutex> l(mu_);
  ++reserves_;
  agent::ReservePortReply reply;
  reply.set_port(reserved_port_);
  return reply;
}

StatusOr<agent::LaunchReply> FakeAgent::Launch(const agent::LaunchRequest& r, int timeout_ms) {
  std::vector<agent::AgentEvent> started;
  agent::LaunchReply reply;
  bool hangs;
  {
    std::lock_guard<std::mutex> l(mu_);
    launches_.push_back(r);
    if (!launch_status_.ok()) return launch_status_;
    hangs = launch_hangs_;
    for (int local = 0; local < r.ranks_size(); ++local) {
      agent::RankStatus& rs = ranks_[{r.job_id(), r.generation(), r.ranks(local)}];
      rs.set_job_id(r.job_id());
      rs.set_generation(r.generation());
      rs.set_node_rank(r.node_rank());
      rs.set_rank(r.ranks(local));
      rs.set_local_rank(local);
      rs.set_pid(1000 + r.ranks(local));
      rs.set_state(agent::RANK_RUNNING);
      started.push_back(RankEvent(rs, false));
      agent::RankInfo* info = reply.add_ranks();
      info->set_rank(r.ranks(local));
      info->set_local_rank(local);
      info->set_pid(rs.pid());
    }
  }
  for (const auto& e : started) Deliver(e);
  if (hangs) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return DeadlineExceeded("Deadline Exceeded");
  }
  return reply;
}

StatusOr<agent::KillReply> FakeAgent::Kill(const agent::KillRequest& r) {
  std::vector<agent::AgentEvent> died;
  agent::KillReply reply;
  {
    std::lock_guard<std::mutex> l(mu_);
    kills_.push_back(r);
    if (!kill_status_.ok()) return kill_status_;
    for (auto& [key, rs] : ranks_) {
      if (std::get<0>(key) != r.job_id()) continue;
      if (r.generation() >= 0 && std::get<1>(key) != r.generation()) continue;
      reply.set_job_known(true);
      if (rs.state() != agent::RANK_RUNNING) continue;
      reply.set_ranks_signalled(reply.ranks_signalled() + 1);
      rs.set_state(agent::RANK_EXITED);
      rs.set_signal(SIGTERM);
      died.push_back(RankEvent(rs, false));
    }
    reply.set_survivors(kill_survivors_);
    for (int i = 0; i < kill_survivors_; ++i) reply.add_survivor_pids(4242 + i);
  }
  for (const auto& e : died) Deliver(e);
  return reply;
}

std::unique_ptr<WatchHandle> FakeAgent::Watch(AgentEventFn on_event, WatchEndFn on_end) {
  auto sub = std::make_shared<Subscriber>();
  sub->on_event = std::move(on_event);
  sub->on_end = std::move(on_end);
  std::vector<agent::AgentEvent> snapshot;
  bool refused;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++watch_opens_;
    refused = watch_refused_;
    if (!refused) {
      subs_.push_back(sub);
      for (const auto& [key, rs] : ranks_) snapshot.push_back(RankEvent(rs, true));
    }
  }
  auto handle = std::make_unique<FakeWatchHandle>(this, sub);
  std::lock_guard<std::mutex> l(sub->call_mu);
  if (refused) {
    sub->on_end(Unavailable("connection refused"));
    sub->active = false;
    return handle;
  }
  for (const auto& e : snapshot) sub->on_event(e);
  return handle;
}

Status FakeAgent::TailLogs(const agent::TailLogsRequest& r, const LogBatchFn& on_batch) {
  agent::LogBatch batch;
  {
    std::lock_guard<std::mutex> l(mu_);
    tails_.push_back(r);
    for (const auto& [rank, lines] : stderr_) {
      if (r.rank() >= 0 && rank != r.rank()) continue;
      size_t from = 0;
      if (r.tail_lines() > 0 && lines.size() > static_cast<size_t>(r.tail_lines())) {
        from = lines.size() - static_cast<size_t>(r.tail_lines());
      }
      for (size_t i = from; i < lines.size(); ++i) {
        agent::LogLine* line = batch.add_lines();
        line->set_rank(rank);
        line->set_stream(agent::LOG_STDERR);
        line->set_text(lines[i]);
      }
    }
  }
  if (batch.lines_size() > 0) on_batch(batch);
  return Status::Ok();
}

FakeAgent* FakeCluster::Agent(const std::string& target) {
  std::lock_guard<std::mutex> l(mu_);
  std::unique_ptr<FakeAgent>& a = agents_[target];
  if (!a) a = std::make_unique<FakeAgent>(target);
  return a.get();
}

AgentClientFactory FakeCluster::Factory() {
  return [this](const HostEntry& h) -> std::unique_ptr<AgentClient> {
    return std::make_unique<FakeAgentClient>(Agent(h.Target()));
  };
}

}  // namespace coord::coordinator::testing
