// Simulated coord-agents (see sim_agents.h): one SimAgent per address, each a
// CallbackService on its own grpc::Server; the ticker writes progress and heartbeats.
// Lock order: SimAgent::mu_ -> SimWatch::mu_. gRPC reactions take SimWatch::mu_ only,
// so a write that completes inline never waits for an agent's lock.
#include "tests/programs/sim_agents.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "common/rpc_util.h"
#include "proto/agent.grpc.pb.h"

namespace coord::sim {

namespace agent = coord::agent;

namespace {

// The ticker's period: heartbeats and progress are due on multiples of it at the latest.
constexpr int kTickMs = 20;
// A stream that falls this far behind is ended, as the real agent's EventHub does.
constexpr size_t kMaxQueued = 100000;
// Timings a heartbeat carries per rank at most (agent.proto: the newest 64).
constexpr int64_t kMaxTimings = 64;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t MonoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(int n) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s += kHex[rng() % 16];
  return s;
}

std::string Address(int first_octet, int i) {
  return "127." + std::to_string(first_octet + i / 62500) + "." +
         std::to_string((i / 250) % 250) + "." + std::to_string(i % 250 + 1);
}

struct SimRank {
  agent::RankStatus status;
  int64_t records = 0;    // bytes of progress written so far
  int64_t iteration = 0;  // the last record's; 0: none yet
  int64_t record_ms = 0;  // wall time of the last record
};

struct SimGeneration {
  std::vector<SimRank> ranks;  // by local rank; never resized after Launch
  bool finished = false;
};

std::string RecordText(const SimRank& r, double loss) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "{\"iteration\": %lld, \"loss\": %.4f, \"time_ms\": 50.0}",
                static_cast<long long>(r.iteration), loss);
  return buf;
}

double LossAt(int64_t iteration) { return 10.0 / (1.0 + 0.01 * static_cast<double>(iteration)); }

}  // namespace

// ---------------------------------------------------------------------------------------
// One Watch stream: a queue the agent fills (under its mu_) and gRPC drains one write at
// a time. Deleted by the agent's sweep once gRPC is done with it (done_).

class SimWatch final : public grpc::ServerWriteReactor<agent::AgentEvent> {
 public:
  SimWatch(int heartbeat_ms, int64_t first_hb_mono)
      : heartbeat_ms(heartbeat_ms), next_hb_mono(first_hb_mono) {}

  // Queues `ev`; starts a write unless one is in flight.
  void Push(agent::AgentEvent ev) {
    const agent::AgentEvent* first = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) return;
      if (queue_.size() >= kMaxQueued) {
        FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "watcher too slow"));
        return;
      }
      queue_.push_back(std::move(ev));
      if (writing_) return;
      writing_ = true;
      first = &queue_.front();  // deque: stays put while later events are appended
    }
    StartWrite(first);
  }
  // Ends the stream (the node is lost); gRPC then calls OnDone.
  void End() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "node lost"));
    ending_ = true;
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

  void OnWriteDone(bool ok) override {
    const agent::AgentEvent* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      if (!ok || ending_ || cancelled_) {
        writing_ = false;
        FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream ended"));
        return;
      }
      if (queue_.empty()) {
        writing_ = false;
        return;
      }
      next = &queue_.front();
    }
    StartWrite(next);
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }

  const int heartbeat_ms;
  int64_t next_hb_mono;                          // guarded by the agent's mu_
  std::map<const SimRank*, int64_t> timed_upto;  // iterations whose timings were sent; agent's mu_

 private:
  void FinishLocked(const grpc::Status& status) {
    if (finishing_) return;
    finishing_ = true;
    Finish(status);
  }

  std::mutex mu_;
  std::deque<agent::AgentEvent> queue_;  // front: being written while writing_
  bool writing_ = false;
  bool finishing_ = false;
  bool ending_ = false;
  bool cancelled_ = false;
  bool done_ = false;
};

// A TailLogs with nothing to tell: simulated ranks write no log lines.
class EmptyLogStream final : public grpc::ServerWriteReactor<agent::LogBatch> {
 public:
  EmptyLogStream() { Finish(grpc::Status::OK); }
  void OnDone() override { delete this; }
};

// ---------------------------------------------------------------------------------------
// One simulated node.

class SimAgent final : public agent::Agent::CallbackService {
 public:
  SimAgent(int index, std::string address)
      : index_(index),
        address_(std::move(address)),
        hostname_("sim-" + std::to_string(index)),
        agent_id_(RandomHex(16)),
        start_ms_(WallMs()) {}

  ~SimAgent() override {
    Stop();
    std::lock_guard<std::mutex> lock(mu_);
    for (SimWatch* w : watches_) delete w;
  }

  Status Start() {
    ASSIGN_OR_RETURN(StartedServer s, StartGrpcServer(address_ + ":0", {this}));
    server_ = std::move(s.server);
    port_ = s.port;
    return Status::Ok();
  }
  // Ends the streams and shuts the server down (its port closes).
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      lost_ = true;
      for (SimWatch* w : watches_) w->End();
    }
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  std::string target() const { return address_ + ":" + std::to_string(port_); }
  bool lost() {
    std::lock_guard<std::mutex> lock(mu_);
    return lost_;
  }

  // --- the ticker ---
  void Tick(int64_t mono, int64_t wall, int progress_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    SweepLocked();
    if (lost_) return;
    for (auto& [key, gen] : gens_) {
      if (gen.finished) continue;
      for (SimRank& r : gen.ranks) {
        if (r.status.state() != agent::RANK_RUNNING || wall - r.record_ms < progress_ms) continue;
        ++r.iteration;
        r.record_ms = wall;
        r.records += static_cast<int64_t>(RecordText(r, LossAt(r.iteration)).size()) + 1;
      }
    }
    for (SimWatch* w : watches_) {
      if (mono < w->next_hb_mono) continue;
      w->next_hb_mono = mono + w->heartbeat_ms;
      w->Push(HeartbeatLocked(w, wall));
      ++heartbeats_;
    }
  }

  // --- commands ---
  bool ExitRankLocked(const std::string& job_id, int rank, int code, int signal) {
    for (auto it = gens_.rbegin(); it != gens_.rend(); ++it) {
      if (!job_id.empty() && it->first.first != job_id) continue;
      for (SimRank& r : it->second.ranks) {
        if (r.status.rank() != rank || r.status.state() != agent::RANK_RUNNING) continue;
        EndRankLocked(&r, code, signal);
        MaybeFinishedLocked(&it->second);
        return true;
      }
    }
    return false;
  }
  bool ExitRank(const std::string& job_id, int rank, int code) {
    std::lock_guard<std::mutex> lock(mu_);
    return !lost_ && ExitRankLocked(job_id, rank, code, 0);
  }
  int64_t FinishAll() {
    std::lock_guard<std::mutex> lock(mu_);
    if (lost_) return 0;
    int64_t n = 0;
    for (auto& [key, gen] : gens_) {
      for (SimRank& r : gen.ranks) {
        if (r.status.state() != agent::RANK_RUNNING) continue;
        EndRankLocked(&r, 0, 0);
        ++n;
      }
      MaybeFinishedLocked(&gen);
    }
    return n;
  }
  void AddCounts(SimCounts* c) {
    std::lock_guard<std::mutex> lock(mu_);
    c->lost += lost_;
    for (SimWatch* w : watches_) c->watches += !w->done();
    // A lost node's ranks are gone with it, as far as anyone can tell.
    for (auto& [key, gen] : lost_ ? decltype(gens_)() : gens_) {
      for (SimRank& r : gen.ranks) {
        c->running += r.status.state() == agent::RANK_RUNNING;
        c->exited += r.status.state() == agent::RANK_EXITED;
      }
    }
    c->launches += launches_;
    c->kills += kills_;
    c->heartbeats += heartbeats_;
  }

  // --- the service ---
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const agent::PingRequest*,
                                 agent::PingReply* reply) override {
    reply->set_hostname(hostname_);
    reply->set_agent_id(agent_id_);
    reply->set_version("sim");
    reply->set_start_time_ms(start_ms_);
    reply->set_time_ms(WallMs());
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ReservePort(grpc::CallbackServerContext* ctx,
                                        const agent::ReservePortRequest*,
                                        agent::ReservePortReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    reply->set_port(20000 + (next_port_++ % 20000));
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* Launch(grpc::CallbackServerContext* ctx,
                                   const agent::LaunchRequest* req,
                                   agent::LaunchReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++launches_;
    auto key = std::make_pair(req->job_id(), req->generation());
    if (gens_.count(key)) {
      return Done(ctx, grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "generation launched"));
    }
    SimGeneration& gen = gens_[key];
    gen.ranks.resize(static_cast<size_t>(req->ranks_size()));
    const int64_t now = WallMs();
    for (int local = 0; local < req->ranks_size(); ++local) {
      SimRank& r = gen.ranks[static_cast<size_t>(local)];
      agent::RankStatus& s = r.status;
      s.set_job_id(req->job_id());
      s.set_generation(req->generation());
      s.set_node_rank(req->node_rank());
      s.set_rank(req->ranks(local));
      s.set_local_rank(local);
      s.set_pid(next_pid_++);
      s.set_state(agent::RANK_RUNNING);
      s.set_start_time_ms(now);
      r.record_ms = now;  // the first record after one period, as a rank that starts up
      agent::RankInfo* info = reply->add_ranks();
      info->set_rank(s.rank());
      info->set_local_rank(local);
      info->set_pid(s.pid());
      PublishRankLocked(s);
    }
    reply->set_log_dir("/sim/" + hostname_ + "/" + req->job_id());
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* Kill(grpc::CallbackServerContext* ctx, const agent::KillRequest* req,
                                 agent::KillReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++kills_;
    for (auto& [key, gen] : gens_) {
      if (key.first != req->job_id()) continue;
      if (req->generation() >= 0 && key.second != req->generation()) continue;
      reply->set_job_known(true);
      for (SimRank& r : gen.ranks) {
        if (r.status.state() != agent::RANK_RUNNING) continue;
        reply->set_ranks_signalled(reply->ranks_signalled() + 1);
        EndRankLocked(&r, 0, SIGTERM);
      }
      MaybeFinishedLocked(&gen);
    }
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerWriteReactor<agent::AgentEvent>* Watch(grpc::CallbackServerContext*,
                                                     const agent::WatchRequest* req) override {
    const int hb = req->heartbeat_ms() > 0 ? std::max(10, req->heartbeat_ms()) : 1000;
    auto* w = new SimWatch(hb, MonoMs());  // a heartbeat right after the snapshot
    std::lock_guard<std::mutex> lock(mu_);
    watches_.push_back(w);
    if (lost_) {
      w->End();
      return w;
    }
    for (auto& [key, gen] : gens_) {
      for (const SimRank& r : gen.ranks) {
        agent::AgentEvent ev = StampLocked();
        ev.set_replay(true);
        *ev.mutable_rank() = r.status;
        w->Push(std::move(ev));
      }
    }
    return w;
  }
  grpc::ServerWriteReactor<agent::LogBatch>* TailLogs(grpc::CallbackServerContext*,
                                                      const agent::TailLogsRequest*) override {
    return new EmptyLogStream();
  }
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const agent::ListJobsRequest*,
                                     agent::ListJobsReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, gen] : gens_) {
      agent::JobGeneration* g = reply->add_jobs();
      g->set_job_id(key.first);
      g->set_generation(key.second);
      g->set_finished(gen.finished);
      for (const SimRank& r : gen.ranks) *g->add_ranks() = r.status;
    }
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* CheckNode(grpc::CallbackServerContext* ctx,
                                      const agent::CheckNodeRequest*,
                                      agent::CheckNodeReply* reply) override {
    reply->set_hostname(hostname_);  // no checks: every one of none passed
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* SharedTokens(grpc::CallbackServerContext* ctx,
                                         const agent::SharedTokensRequest* req,
                                         agent::SharedTokensReply* reply) override {
    for (const std::string& p : req->paths()) {
      agent::SharedToken* t = reply->add_tokens();
      t->set_path(p);
      t->set_ok(req->remove());
      if (!req->remove()) t->set_error("a simulated node has no shared path");
    }
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* RankSnapshots(grpc::CallbackServerContext* ctx,
                                          const agent::RankSnapshotsRequest* req,
                                          agent::RankSnapshotsReply* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    reply->set_hostname(hostname_);
    const int64_t now = WallMs();
    for (const auto& [key, gen] : gens_) {
      if (key.first != req->job_id()) continue;
      if (req->generation() >= 0 && key.second != req->generation()) continue;
      for (const SimRank& r : gen.ranks) {
        if (r.status.state() != agent::RANK_RUNNING) continue;
        agent::RankSnapshot* s = reply->add_ranks();
        s->set_rank(r.status.rank());
        s->set_pid(r.status.pid());
        s->set_process_state("running");
        s->set_iteration(r.iteration + 1);
        s->set_phase("forward");
        s->set_micro_batch(-1);
        s->set_phase_ms(now - r.record_ms);
        s->set_time_ms(now);
      }
    }
    return Done(ctx, grpc::Status::OK);
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx,
                                        const grpc::Status& status) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(status);
    return r;
  }

  agent::AgentEvent StampLocked() {
    agent::AgentEvent ev;
    ev.set_seq(++seq_);
    ev.set_agent_id(agent_id_);
    ev.set_time_ms(WallMs());
    return ev;
  }
  void PublishRankLocked(const agent::RankStatus& s) {
    for (SimWatch* w : watches_) {
      agent::AgentEvent ev = StampLocked();
      *ev.mutable_rank() = s;
      w->Push(std::move(ev));
    }
  }
  void EndRankLocked(SimRank* r, int code, int signal) {
    r->status.set_state(agent::RANK_EXITED);
    r->status.set_exit_code(signal == 0 ? code : 0);
    r->status.set_signal(signal);
    r->status.set_end_time_ms(WallMs());
    PublishRankLocked(r->status);
  }
  static void MaybeFinishedLocked(SimGeneration* gen) {
    for (const SimRank& r : gen->ranks) {
      if (r.status.state() != agent::RANK_EXITED) return;
    }
    gen->finished = true;
  }
  // Every running rank's latest record, with the timings of iterations this stream has
  // not carried yet (oldest first, kMaxTimings at most).
  agent::AgentEvent HeartbeatLocked(SimWatch* w, int64_t wall) {
    agent::AgentEvent ev = StampLocked();
    agent::Heartbeat* hb = ev.mutable_heartbeat();
    int running = 0;
    for (auto& [key, gen] : gens_) {
      if (gen.finished) continue;
      for (const SimRank& r : gen.ranks) {
        if (r.status.state() != agent::RANK_RUNNING) continue;
        ++running;
        if (r.records == 0) continue;
        agent::RankProgress* p = hb->add_progress();
        p->set_job_id(key.first);
        p->set_generation(key.second);
        p->set_rank(r.status.rank());
        p->set_records(r.records);
        p->set_time_ms(r.record_ms);
        p->set_iteration(r.iteration);
        p->set_loss(LossAt(r.iteration));
        p->set_text(RecordText(r, p->loss()));
        p->set_checkpoint(-1);
        p->set_train_iters(-1);
        p->set_stage(-1);
        int64_t& upto = w->timed_upto[&r];
        for (int64_t it = std::max(upto + 1, r.iteration - kMaxTimings + 1); it <= r.iteration;
             ++it) {
          agent::IterationTiming* t = p->add_timings();
          t->set_iteration(it);
          t->set_time_ms(50.0);
          t->set_compute_ms(40.0);
          t->set_wait_ms(8.0);
          t->set_data_ms(1.0);
          t->set_optimizer_ms(1.0);
        }
        upto = r.iteration;
      }
    }
    hb->set_running_ranks(running);
    (void)wall;
    return ev;
  }
  // Deletes the streams gRPC is done with.
  void SweepLocked() {
    std::vector<SimWatch*> live;
    for (SimWatch* w : watches_) {
      if (w->done()) {
        delete w;
      } else {
        live.push_back(w);
      }
    }
    watches_.swap(live);
  }

  const int index_;
  const std::string address_;
  const std::string hostname_;
  const std::string agent_id_;
  const int64_t start_ms_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex mu_;
  bool lost_ = false;                                              // guarded by mu_
  uint64_t seq_ = 0;                                               // guarded by mu_
  int next_pid_ = 100000;                                          // guarded by mu_
  int next_port_ = 0;                                              // guarded by mu_
  std::map<std::pair<std::string, int>, SimGeneration> gens_;      // guarded by mu_
  std::vector<SimWatch*> watches_;                                 // owned; guarded by mu_
  int64_t launches_ = 0, kills_ = 0, heartbeats_ = 0;              // guarded by mu_
};

// ---------------------------------------------------------------------------------------
// SimCluster

StatusOr<std::unique_ptr<SimCluster>> SimCluster::Create(const SimOptions& options) {
  if (options.agents < 1 || options.agents > 250000) {
    return InvalidArgument("--agents must be in [1, 250000]");
  }
  if (options.progress_ms < 1) return InvalidArgument("--progress-ms must be positive");
  std::unique_ptr<SimCluster> c(new SimCluster(options));
  for (int i = 0; i < options.agents; ++i) {
    auto a = std::make_unique<SimAgent>(i, Address(options.first_octet, i));
    RETURN_IF_ERROR(a->Start());
    c->agents_.push_back(std::move(a));
  }
  c->ticker_ = std::thread([p = c.get()] { p->TickLoop(); });
  return c;
}

SimCluster::SimCluster(const SimOptions& options) : options_(options) {}

SimCluster::~SimCluster() {
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
  for (auto& a : agents_) a->Stop();
  agents_.clear();
}

void SimCluster::TickLoop() {
  while (!stop_) {
    const int64_t mono = MonoMs();
    const int64_t wall = WallMs();
    for (auto& a : agents_) a->Tick(mono, wall, options_.progress_ms);
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
        std::chrono::milliseconds(mono + kTickMs)));
  }
}

std::string SimCluster::Target(int i) const { return agents_.at(static_cast<size_t>(i))->target(); }

std::string SimCluster::HostsText() const {
  std::string out;
  for (const auto& a : agents_) out += a->target() + "\n";
  return out;
}

Status SimCluster::ExitRank(const std::string& job_id, int rank, int code) {
  for (auto& a : agents_) {
    if (a->ExitRank(job_id, rank, code)) return Status::Ok();
  }
  return NotFound("no agent runs rank " + std::to_string(rank) +
                  (job_id.empty() ? "" : " of job " + job_id));
}

int64_t SimCluster::FinishAll() {
  int64_t n = 0;
  for (auto& a : agents_) n += a->FinishAll();
  return n;
}

Status SimCluster::LoseNode(int i) {
  if (i < 0 || i >= size()) return InvalidArgument("no agent " + std::to_string(i));
  agents_[static_cast<size_t>(i)]->Stop();
  return Status::Ok();
}

SimCounts SimCluster::Counts() const {
  SimCounts c;
  c.agents = size();
  for (const auto& a : agents_) a->AddCounts(&c);
  return c;
}

std::string SimCluster::Command(const std::string& line) {
  std::istringstream in(line);
  std::string verb;
  in >> verb;
  if (verb == "exit") {
    int rank = -1, code = 0;
    std::string job;
    if (!(in >> rank >> code)) return "error usage: exit RANK CODE [JOB]";
    in >> job;
    Status st = ExitRank(job, rank, code);
    return st.ok() ? "ok" : "error " + st.message();
  }
  if (verb == "finish") return "ok " + std::to_string(FinishAll());
  if (verb == "lose") {
    int i = -1;
    if (!(in >> i)) return "error usage: lose AGENT";
    Status st = LoseNode(i);
    return st.ok() ? "ok" : "error " + st.message();
  }
  if (verb == "stats") {
    SimCounts c = Counts();
    return "ok agents " + std::to_string(c.agents) + " lost " + std::to_string(c.lost) +
           " watches " + std::to_string(c.watches) + " running " + std::to_string(c.running) +
           " exited " + std::to_string(c.exited) + " launches " + std::to_string(c.launches) +
           " kills " + std::to_string(c.kills) + " heartbeats " + std::to_string(c.heartbeats);
  }
  if (verb == "hosts") return "ok " + std::to_string(size());
  return "error unknown command '" + verb + "' (exit, finish, lose, stats, hosts)";
}

}  // namespace coord::sim
