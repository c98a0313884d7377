// The gRPC edges on loopback: CoordinatorServer (port 0, the adapter's status mapping,
// StreamLogs, journal across a restart) with in-memory agents, and GrpcAgentClient against
// a tiny in-test Agent service (deadlines, Watch streaming and cancel, TailLogs cancel).
#include "coordinator/coordinator_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/fs.h"
#include "common/rpc_util.h"
#include "coordinator/grpc_agent_client.h"
#include "fake_agent.h"
#include "proto/agent.grpc.pb.h"
#include "proto/coordinator.grpc.pb.h"
#include "tests/support/temp_dir.h"

namespace coord::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class CoordinatorServerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path(); }
  void TearDown() override { server_.reset(); }
  void StartServer() {
    CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.state_dir = dir_;
    o.heartbeat_ms = 60000;
    o.agent_factory = cluster_.Factory();
    auto s = CoordinatorServer::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_GT(server_->port(), 0);
    stub_ = Coordinator::NewStub(MakeChannel("127.0.0.1:" + std::to_string(server_->port())));
  }
  static StartJobRequest Request() {
    StartJobRequest r;
    r.set_hosts_text("127.0.0.1:7201\n127.0.0.1:7202\n");
    r.set_config_json(R"({"launch": {"command": ["train"], "nproc_per_node": 2}})");
    return r;
  }

  testing::FakeCluster cluster_;
  coord::testing::TempDir tmp_;
  std::string dir_;  // tmp_'s path
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<Coordinator::Stub> stub_;
};

TEST_F(CoordinatorServerTest, ServesJobsOverGrpcAndRemembersThemAcrossRestart) {
  StartServer();
  StartJobReply started;
  auto ctx = ContextWithDeadline(5000);
  ASSERT_TRUE(stub_->StartJob(ctx.get(), Request(), &started).ok());
  EXPECT_EQ(started.status().state(), RUNNING);
  EXPECT_THAT(started.job_id(), ::testing::StartsWith("job-"));
  EXPECT_EQ(started.status().world_size(), 4);

  StartJobRequest bad = Request();
  bad.set_hosts_text("");
  StartJobReply unused;
  ctx = ContextWithDeadline(5000);
  grpc::Status st = stub_->StartJob(ctx.get(), bad, &unused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  ctx = ContextWithDeadline(5000);
  st = stub_->StartJob(ctx.get(), Request(), &unused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr(started.job_id()));

  cluster_.Agent("127.0.0.1:7202")->SetStderr(3, {"hello from rank 3"});
  StreamLogsRequest logs;
  logs.set_rank(-1);
  ctx = ContextWithDeadline(5000);
  auto reader = stub_->StreamLogs(ctx.get(), logs);
  LogBatch batch;
  std::vector<LogLine> lines;
  while (reader->Read(&batch))
    lines.insert(lines.end(), batch.lines().begin(), batch.lines().end());
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].host(), "127.0.0.1");
  EXPECT_EQ(lines[0].node_rank(), 1);
  EXPECT_EQ(lines[0].text(), "hello from rank 3");

  KillJobReply killed;
  ctx = ContextWithDeadline(5000);
  ASSERT_TRUE(stub_->KillJob(ctx.get(), KillJobRequest(), &killed).ok());
  EXPECT_EQ(killed.job_id(), started.job_id());
  EXPECT_TRUE(killed.confirmed_clean());

  server_->Shutdown();
  server_.reset();
  StartServer();
  JobStatus status;
  ctx = ContextWithDeadline(5000);
  ASSERT_TRUE(stub_->GetJob(ctx.get(), GetJobRequest(), &status).ok());
  EXPECT_EQ(status.job_id(), started.job_id());
  EXPECT_EQ(status.state(), KILLED);
  GetJobRequest missing;
  missing.set_job_id("nope");
  ctx = ContextWithDeadline(5000);
  EXPECT_EQ(stub_->GetJob(ctx.get(), missing, &status).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A raw StartJob (no coordctl in front) with 100,000 hosts: refused at once, naming
// the limit, and the server still answers and shuts down.
TEST_F(CoordinatorServerTest, AHostsListBeyondTheLimitIsRefusedAtOnce) {
  StartServer();
  StartJobRequest huge = Request();
  std::string hosts;
  for (int i = 0; i < 100000; ++i)
    hosts += "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
             std::to_string(i % 256) + "\n";
  huge.set_hosts_text(hosts);
  huge.set_hosts_path("huge.txt");
  StartJobReply reply;
  auto ctx = ContextWithDeadline(60000);
  const auto t0 = std::chrono::steady_clock::now();
  grpc::Status st = stub_->StartJob(ctx.get(), huge, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(),
              AllOf(HasSubstr("huge.txt:4097: host number 4097"), HasSubstr("at most 4096 nodes")));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  ctx = ContextWithDeadline(5000);
  EXPECT_TRUE(stub_->StartJob(ctx.get(), Request(), &reply).ok());
}

TEST_F(CoordinatorServerTest, CreateFailsClearlyWithoutStateDir) {
  CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  auto s = CoordinatorServer::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("state dir"));
}

// --- GrpcAgentClient against a minimal agent -------------------------------------------

class TinyAgent final : public agent::Agent::Service {
 public:
  grpc::Status Ping(grpc::ServerContext*, const agent::PingRequest*,
                    agent::PingReply* reply) override {
    reply->set_hostname("tiny");
    return grpc::Status::OK;
  }
  grpc::Status Launch(grpc::ServerContext* ctx, const agent::LaunchRequest*,
                      agent::LaunchReply*) override {
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return grpc::Status::CANCELLED;  // never answers in time: the client's deadline fires
  }
  grpc::Status Watch(grpc::ServerContext* ctx, const agent::WatchRequest* req,
                     grpc::ServerWriter<agent::AgentEvent>* writer) override {
    agent::AgentEvent e;
    e.mutable_heartbeat()->set_running_ranks(req->heartbeat_ms());
    writer->Write(e);
    while (!ctx->IsCancelled() && !end_watch_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "agent going away");
  }
  grpc::Status TailLogs(grpc::ServerContext* ctx, const agent::TailLogsRequest*,
                        grpc::ServerWriter<agent::LogBatch>* writer) override {
    agent::LogBatch b;
    b.add_lines()->set_text("first");
    writer->Write(b);
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return grpc::Status::OK;
  }
  std::atomic<bool> end_watch_{false};
};

std::unique_ptr<AgentClient> ClientOn(int port) {
  HostEntry h;
  h.host = "127.0.0.1";
  h.port = port;
  return MakeGrpcAgentClient(h);
}

TEST(GrpcAgentClientTest, UnaryCallsStreamsDeadlinesAndCancellation) {
  TinyAgent service;
  auto started = StartGrpcServer("127.0.0.1:0", {&service});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto client = ClientOn(started->port);

  auto ping = client->Ping(2000);
  ASSERT_TRUE(ping.ok()) << ping.status().ToString();
  EXPECT_EQ(ping->hostname(), "tiny");
  auto launch = client->Launch(agent::LaunchRequest(), 100);
  EXPECT_EQ(launch.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client->ReservePort(agent::ReservePortRequest(), 1000).status().code(),
            StatusCode::kUnimplemented);

  std::atomic<int> events{0};
  std::atomic<int> ends{0};
  Status end_status;
  auto watch = client->Watch(
      42, [&](const agent::AgentEvent& e) { events += e.heartbeat().running_ranks() == 42; },
      [&](const Status& st) {
        end_status = st;
        ++ends;
      });
  for (int i = 0; i < 2000 && events == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(events, 1);
  service.end_watch_ = true;  // the agent ends the stream: on_end reports it
  for (int i = 0; i < 2000 && ends == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(ends, 1);
  EXPECT_THAT(end_status.message(), HasSubstr("agent going away"));
  watch.reset();
  service.end_watch_ = false;
  auto cancelled_watch = client->Watch(
      10, [](const agent::AgentEvent&) {}, [&](const Status&) { ++ends; });
  cancelled_watch.reset();  // cancel: returns promptly and reports no end
  EXPECT_EQ(ends, 1);

  std::atomic<bool> stop{false};
  int batches = 0;
  auto t0 = std::chrono::steady_clock::now();
  Status tail = client->TailLogs(
      agent::TailLogsRequest(), 0,
      [&](const agent::LogBatch&) {
        ++batches;
        stop = true;
      },
      [&] { return stop.load(); });
  EXPECT_EQ(batches, 1);
  EXPECT_EQ(tail.code(), StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));

  started->server->Shutdown(std::chrono::system_clock::now());
  // Nobody listens any more: an error within the deadline, not a hang.
  auto gone = client->Ping(500);
  EXPECT_FALSE(gone.ok());
}

// Shutdown's lever: a Launch that would wait out a 60 s deadline ends as soon as
// CancelCalls runs, and launch-path calls made after it fail at once; a Kill still goes.
TEST(GrpcAgentClientTest, CancelCallsEndsCallsInFlightAndRefusesLaterOnes) {
  TinyAgent service;
  auto started = StartGrpcServer("127.0.0.1:0", {&service});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto client = ClientOn(started->port);
  ASSERT_TRUE(client->Ping(2000).ok());

  StatusOr<agent::LaunchReply> launch = Internal("not returned");
  std::thread caller([&] { launch = client->Launch(agent::LaunchRequest(), 60000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the call go out
  const auto t0 = std::chrono::steady_clock::now();
  client->CancelCalls();
  caller.join();
  EXPECT_EQ(launch.status().code(), StatusCode::kCancelled) << launch.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(client->Ping(60000).status().code(), StatusCode::kCancelled);
  // A kill is never cut short: it reaches the agent (which does not implement it).
  EXPECT_EQ(client->Kill(agent::KillRequest(), 5000).status().code(),
            StatusCode::kUnimplemented);
  started->server->Shutdown(std::chrono::system_clock::now());
}

}  // namespace
}  // namespace coord::coordinator
