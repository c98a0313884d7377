// gRPC implementation of AgentClient (see grpc_agent_client.h). The only file of the
// coordinator library, besides grpc_service.cc, that includes grpcpp.
#include "coordinator/grpc_agent_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/rpc_util.h"
#include "common/tsan_handoff.h"
#include "proto/agent.grpc.pb.h"

namespace coord::coordinator {
namespace {

namespace agent = coord::agent;

// How often a blocked TailLogs checks its cancelled predicate; a client that went
// away is noticed within this, which is plenty for a log stream.
constexpr int kCancelPollMs = 100;

// How long Ping lets a channel whose first connect failed try again.
constexpr int kPingRetryMs = 1000;

// The Watch stream as a callback-API reactor: no thread per stream (coordd holds one
// stream per agent, 1,250 and more); gRPC's shared callback threads run on_event and
// on_end, one callback of a stream at a time, in order.
class GrpcWatchHandle final : public WatchHandle,
                              public grpc::ClientReadReactor<agent::AgentEvent> {
 public:
  GrpcWatchHandle(agent::Agent::Stub* stub, int heartbeat_ms, AgentEventFn on_event,
                  WatchEndFn on_end)
      : on_event_(std::move(on_event)), on_end_(std::move(on_end)) {
    request_.set_heartbeat_ms(heartbeat_ms);
    stub->async()->Watch(&ctx_, &request_, this);
    StartRead(&event_);
    HandoffRelease(this);  // to gRPC's callback threads (common/tsan_handoff.h)
    StartCall();
  }
  // Waits for OnDone: after it gRPC touches nothing of this object.
  ~GrpcWatchHandle() override {
    Cancel();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
  }
  void Cancel() override {
    cancelled_ = true;
    ctx_.TryCancel();
  }

  void OnReadDone(bool ok) override {
    HandoffAcquire(this);
    if (!ok) return;  // the stream is over; OnDone follows with its status
    if (!cancelled_) on_event_(event_);
    HandoffRelease(this);  // to the callback that runs next, on any gRPC thread
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    HandoffAcquire(this);
    if (!cancelled_) {
      Status st = FromGrpc(status);
      if (st.ok()) st = Unavailable("agent ended the watch stream");
      on_end_(st);
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    done_cv_.notify_all();
  }

 private:
  grpc::ClientContext ctx_;
  agent::WatchRequest request_;
  agent::AgentEvent event_;  // the read in flight writes here
  std::atomic<bool> cancelled_{false};
  AgentEventFn on_event_;
  WatchEndFn on_end_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool done_ = false;  // guarded by mu_
};

class GrpcAgentClient final : public AgentClient {
 public:
  GrpcAgentClient(const std::string& target, const RpcSecurity& security)
      : target_(target),
        security_(security),
        stub_(agent::Agent::NewStub(MakeChannel(target, security))),
        logs_stub_(agent::Agent::NewStub(MakeChannel(target, security, "logs"))) {}

  StatusOr<agent::PingReply> Ping(int timeout_ms) override {
    const auto start = std::chrono::steady_clock::now();
    auto reply = Unary(&agent::Agent::Stub::Ping, agent::PingRequest(), timeout_ms);
    // One failed connect is not an unreachable node (CI once saw a live agent's first
    // connect fail in 0.2 s): let the channel reconnect for up to kPingRetryMs (its
    // backoff starts at 100 ms: several tries), and keep the first error, which says
    // why, if those fail too.
    if (!reply.ok() && reply.status().code() == StatusCode::kUnavailable) {
      const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      const int left = std::min(kPingRetryMs, timeout_ms - static_cast<int>(spent.count()));
      if (left > 0) {
        auto retry = Unary(&agent::Agent::Stub::Ping, agent::PingRequest(), left,
                           /*wait_for_ready=*/true);
        if (retry.ok()) return retry;
      }
    }
    // A refused TLS handshake looks like "Socket closed"; Ping is the first
    // contact with a node (start, checks), so say why there. Only UNAVAILABLE:
    // a frozen node times out instead and must not cost a probe.
    if (!reply.ok() && security_.tls && reply.status().code() == StatusCode::kUnavailable) {
      std::string why = ExplainConnectFailure(target_, security_, 1000);
      if (!why.empty()) return Unavailable(reply.status().message() + "; " + why);
    }
    return reply;
  }
  StatusOr<agent::ReservePortReply> ReservePort(const agent::ReservePortRequest& request,
                                                int timeout_ms) override {
    return Unary(&agent::Agent::Stub::ReservePort, request, timeout_ms);
  }
  StatusOr<agent::LaunchReply> Launch(const agent::LaunchRequest& request,
                                      int timeout_ms) override {
    return Unary(&agent::Agent::Stub::Launch, request, timeout_ms);
  }
  StatusOr<agent::KillReply> Kill(const agent::KillRequest& request, int timeout_ms) override {
    return Unary(&agent::Agent::Stub::Kill, request, timeout_ms, false, /*cancellable=*/false);
  }
  StatusOr<agent::ListJobsReply> ListJobs(int timeout_ms) override {
    return Unary(&agent::Agent::Stub::ListJobs, agent::ListJobsRequest(), timeout_ms, false,
                 /*cancellable=*/false);
  }
  StatusOr<agent::CheckNodeReply> CheckNode(const agent::CheckNodeRequest& request,
                                            int timeout_ms) override {
    return Unary(&agent::Agent::Stub::CheckNode, request, timeout_ms);
  }
  StatusOr<agent::SharedTokensReply> SharedTokens(const agent::SharedTokensRequest& request,
                                                  int timeout_ms) override {
    return Unary(&agent::Agent::Stub::SharedTokens, request, timeout_ms);
  }
  StatusOr<agent::RankSnapshotsReply> RankSnapshots(const agent::RankSnapshotsRequest& request,
                                                    int timeout_ms) override {
    return Unary(&agent::Agent::Stub::RankSnapshots, request, timeout_ms, false,
                 /*cancellable=*/false);
  }

  std::unique_ptr<WatchHandle> Watch(int heartbeat_ms, AgentEventFn on_event,
                                     WatchEndFn on_end) override {
    return std::make_unique<GrpcWatchHandle>(stub_.get(), heartbeat_ms, std::move(on_event),
                                             std::move(on_end));
  }

  Status TailLogs(const agent::TailLogsRequest& request, int timeout_ms, const LogBatchFn& on_batch,
                  const CancelledFn& cancelled) override;

  void CancelCalls() override {
    std::lock_guard<std::mutex> lock(calls_mu_);
    calls_cancelled_ = true;
    for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
  }

 private:
  // A call's context, known to CancelCalls for as long as the call runs.
  class TrackedCall {
   public:
    TrackedCall(GrpcAgentClient* client, grpc::ClientContext* ctx) : client_(client), ctx_(ctx) {
      std::lock_guard<std::mutex> lock(client_->calls_mu_);
      if (client_->calls_cancelled_) ctx_->TryCancel();  // fails at once once started
      client_->calls_.insert(ctx_);
    }
    ~TrackedCall() {
      std::lock_guard<std::mutex> lock(client_->calls_mu_);
      client_->calls_.erase(ctx_);
    }
    TrackedCall(const TrackedCall&) = delete;
    TrackedCall& operator=(const TrackedCall&) = delete;

   private:
    GrpcAgentClient* client_;
    grpc::ClientContext* ctx_;
  };

  template <typename Req, typename Reply>
  StatusOr<Reply> Unary(grpc::Status (agent::Agent::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                   Reply*),
                        const Req& request, int timeout_ms, bool wait_for_ready = false,
                        bool cancellable = true) {
    std::unique_ptr<grpc::ClientContext> ctx = ContextWithDeadline(timeout_ms);
    ctx->set_wait_for_ready(wait_for_ready);
    std::optional<TrackedCall> tracked;
    if (cancellable) tracked.emplace(this, ctx.get());
    Reply reply;
    grpc::Status status = (stub_.get()->*method)(ctx.get(), request, &reply);
    if (!status.ok()) return FromGrpc(status);
    return reply;
  }

  const std::string target_;
  const RpcSecurity security_;
  std::unique_ptr<agent::Agent::Stub> stub_;
  // Log streams on a connection of their own: megabytes of logs queued on the control
  // connection delayed Watch heartbeats past their deadline (api_load_test).
  std::unique_ptr<agent::Agent::Stub> logs_stub_;
  std::mutex calls_mu_;
  std::set<grpc::ClientContext*> calls_;  // in flight; guarded by calls_mu_
  bool calls_cancelled_ = false;          // guarded by calls_mu_
};

Status GrpcAgentClient::TailLogs(const agent::TailLogsRequest& request, int timeout_ms,
                                 const LogBatchFn& on_batch, const CancelledFn& cancelled) {
  std::unique_ptr<grpc::ClientContext> ctx =
      timeout_ms > 0 ? ContextWithDeadline(timeout_ms) : std::make_unique<grpc::ClientContext>();
  // A blocked Read() cannot look at `cancelled`, so a watcher does and cancels the call.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  std::thread watcher([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      if (cancelled && cancelled()) {
        ctx->TryCancel();
        return;
      }
      cv.wait_for(lock, std::chrono::milliseconds(kCancelPollMs));
    }
  });
  TrackedCall tracked(this, ctx.get());
  std::unique_ptr<grpc::ClientReader<agent::LogBatch>> reader =
      logs_stub_->TailLogs(ctx.get(), request);
  agent::LogBatch batch;
  while (reader->Read(&batch)) on_batch(batch);
  grpc::Status status = reader->Finish();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watcher.join();
  if (cancelled && cancelled()) return Status(StatusCode::kCancelled, "log stream cancelled");
  return FromGrpc(status);
}

// An agent coordd may not talk to (no certificate for a node off loopback):
// every call fails with the reason, so the job fails with a message that says
// what to do instead of a plaintext connection being made.
class UnusableAgentClient final : public AgentClient {
 public:
  explicit UnusableAgentClient(Status why) : why_(std::move(why)) {}
  StatusOr<agent::PingReply> Ping(int) override { return why_; }
  StatusOr<agent::ReservePortReply> ReservePort(const agent::ReservePortRequest&, int) override {
    return why_;
  }
  StatusOr<agent::LaunchReply> Launch(const agent::LaunchRequest&, int) override { return why_; }
  StatusOr<agent::KillReply> Kill(const agent::KillRequest&, int) override { return why_; }
  StatusOr<agent::ListJobsReply> ListJobs(int) override { return why_; }
  StatusOr<agent::CheckNodeReply> CheckNode(const agent::CheckNodeRequest&, int) override {
    return why_;
  }
  StatusOr<agent::SharedTokensReply> SharedTokens(const agent::SharedTokensRequest&, int) override {
    return why_;
  }
  StatusOr<agent::RankSnapshotsReply> RankSnapshots(const agent::RankSnapshotsRequest&,
                                                    int) override {
    return why_;
  }
  std::unique_ptr<WatchHandle> Watch(int, AgentEventFn, WatchEndFn on_end) override {
    return std::make_unique<EndedWatch>(why_, std::move(on_end));
  }
  Status TailLogs(const agent::TailLogsRequest&, int, const LogBatchFn&,
                  const CancelledFn&) override {
    return why_;
  }

 private:
  // Ends on its own thread, as a real watch does, so callers' locks are not held.
  class EndedWatch final : public WatchHandle {
   public:
    EndedWatch(Status why, WatchEndFn on_end) : thread_([why, on_end] { on_end(why); }) {}
    ~EndedWatch() override { thread_.join(); }
    void Cancel() override {}

   private:
    std::thread thread_;
  };
  Status why_;
};

}  // namespace

AgentClientFactory MakeGrpcAgentClientFactory(const TlsSettings& tls) {
  return [tls](const HostEntry& entry) -> std::unique_ptr<AgentClient> {
    auto security = ClientSecurity(tls, entry.Target(), "coordd", "agent");
    if (!security.ok()) return std::make_unique<UnusableAgentClient>(security.status());
    return std::make_unique<GrpcAgentClient>(entry.Target(), *security);
  };
}

std::unique_ptr<AgentClient> MakeGrpcAgentClient(const HostEntry& entry) {
  return std::make_unique<GrpcAgentClient>(entry.Target(), RpcSecurity());
}

}  // namespace coord::coordinator
