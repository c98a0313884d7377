// coordd's gRPC adapter over a fake CoordinatorHandler, on a real loopback server
// (port 0): requests reach the handler as they were sent, a handler's error keeps its
// code and message on the wire, and StreamLogs delivers batches in order and sees the
// client go away.
#include "coordinator/grpc_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "common/rpc_util.h"
#include "proto/coordinator.grpc.pb.h"

namespace coord::coordinator {
namespace {

class FakeHandler final : public CoordinatorHandler {
 public:
  Status StartJob(const StartJobRequest& request, StartJobReply* reply) override {
    if (request.config_path() == "bad.json") {
      return InvalidArgument("bad.json:3: launch.command: expected a list of strings");
    }
    reply->set_job_id("job-" + request.hosts_path());
    return Status::Ok();
  }
  Status KillJob(const KillJobRequest& request, KillJobReply*) override {
    return NotFound("no job '" + request.job_id() + "'");
  }
  Status GetJob(const GetJobRequest& request, JobStatus* reply) override {
    reply->set_job_id(request.job_id());
    reply->set_state(RUNNING);
    return Status::Ok();
  }
  Status ListJobs(const ListJobsRequest&, ListJobsReply* reply) override {
    reply->add_jobs()->set_job_id("a");
    reply->add_jobs()->set_job_id("b");
    return Status::Ok();
  }
  // Batches 0, 1, 2, ... until the sink or the caller says stop.
  Status StreamLogs(const StreamLogsRequest&, const LogSink& sink,
                    const CancelledFn& cancelled) override {
    for (int i = 0; i < 10000; ++i) {
      if (cancelled()) {
        saw_cancel = true;
        return Status(StatusCode::kCancelled, "client went away");
      }
      LogBatch b;
      b.add_lines()->set_text(std::to_string(i));
      if (!sink(b)) {
        saw_cancel = true;
        return Status::Ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::Ok();
  }
  std::atomic<bool> saw_cancel{false};
};

class GrpcServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = std::make_unique<CoordinatorGrpcService>(&handler_);
    auto started = StartGrpcServer("127.0.0.1:0", {service_.get()}, RpcSecurity());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started->server);
    stub_ = Coordinator::NewStub(
        MakeChannel("127.0.0.1:" + std::to_string(started->port), RpcSecurity()));
  }
  void TearDown() override { server_->Shutdown(); }

  FakeHandler handler_;
  std::unique_ptr<CoordinatorGrpcService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Coordinator::Stub> stub_;
};

TEST_F(GrpcServiceTest, RequestsAndRepliesPassThrough) {
  grpc::ClientContext ctx;
  StartJobRequest req;
  req.set_hosts_path("hosts.txt");
  StartJobReply reply;
  ASSERT_TRUE(stub_->StartJob(&ctx, req, &reply).ok());
  EXPECT_EQ(reply.job_id(), "job-hosts.txt");
  grpc::ClientContext ctx2;
  ListJobsReply all;
  ASSERT_TRUE(stub_->ListJobs(&ctx2, ListJobsRequest(), &all).ok());
  ASSERT_EQ(all.jobs_size(), 2);
  EXPECT_EQ(all.jobs(1).job_id(), "b");
}

TEST_F(GrpcServiceTest, AHandlersErrorKeepsItsCodeAndMessage) {
  grpc::ClientContext ctx;
  StartJobRequest req;
  req.set_config_path("bad.json");
  StartJobReply reply;
  grpc::Status st = stub_->StartJob(&ctx, req, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "bad.json:3: launch.command: expected a list of strings");
  grpc::ClientContext ctx2;
  KillJobRequest kill;
  kill.set_job_id("x");
  KillJobReply killed;
  st = stub_->KillJob(&ctx2, kill, &killed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("no job 'x'"));
}

TEST_F(GrpcServiceTest, StreamLogsIsInOrderAndNoticesTheClientLeaving) {
  grpc::ClientContext ctx;
  auto reader = stub_->StreamLogs(&ctx, StreamLogsRequest());
  LogBatch b;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(reader->Read(&b));
    ASSERT_EQ(b.lines_size(), 1);
    EXPECT_EQ(b.lines(0).text(), std::to_string(i));
  }
  ctx.TryCancel();
  while (reader->Read(&b)) {
  }
  (void)reader->Finish();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!handler_.saw_cancel && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(handler_.saw_cancel) << "the handler kept streaming to a client that left";
}

}  // namespace
}  // namespace coord::coordinator
