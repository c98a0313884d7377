// gRPC client for coordd used by coordctl.
#include "coordinator/cli/coordinator_client.h"

#include "common/rpc_util.h"

namespace coord::cli {

CoordinatorClient::CoordinatorClient(const std::string& target, int timeout_ms,
                                     const TlsSettings& tls)
    : target_(target),
      timeout_ms_(timeout_ms),
      security_(ClientSecurity(tls, target, "coordctl", "coordd")),
      // No stub without an allowed transport: nothing may go out in plaintext.
      stub_(security_.ok() ? coordinator::Coordinator::NewStub(MakeChannel(target, *security_))
                           : nullptr) {}

Status CoordinatorClient::Explain(const Status& status) const {
  if (!security_.ok()) return security_.status();
  if (status.code() == StatusCode::kUnavailable ||
      (status.code() == StatusCode::kDeadlineExceeded && status.message() == "Deadline Exceeded")) {
    // Something listens but the TLS handshake failed: say why (expired, another CA, plaintext).
    std::string tls = ExplainConnectFailure(target_, *security_);
    if (!tls.empty()) return Status(status.code(), "cannot talk to coordd at " + target_ + ": " + tls);
    return Status(status.code(), "cannot reach coordd at " + target_ + " (" + status.message() +
                                     "); start it with `coordd --listen " + target_ +
                                     " --state-dir DIR`, or set --coordinator / COORD_ADDR");
  }
  return status;
}

bool CoordinatorClient::Reachable(int timeout_ms) {
  if (!stub_) return false;
  auto ctx = ContextWithDeadline(timeout_ms);
  ctx->set_wait_for_ready(false);
  coordinator::ListJobsRequest req;
  req.set_summary(true);  // a probe: no job's tables
  coordinator::ListJobsReply reply;
  return stub_->ListJobs(ctx.get(), req, &reply).ok();
}

StatusOr<coordinator::StartJobReply> CoordinatorClient::StartJob(
    const coordinator::StartJobRequest& request, int timeout_ms) {
  if (!stub_) return security_.status();
  auto ctx = ContextWithDeadline(timeout_ms);
  coordinator::StartJobReply reply;
  Status st = FromGrpc(stub_->StartJob(ctx.get(), request, &reply));
  if (!st.ok()) return Explain(st);
  return reply;
}

StatusOr<coordinator::KillJobReply> CoordinatorClient::KillJob(
    const coordinator::KillJobRequest& request) {
  if (!stub_) return security_.status();
  // A kill waits for the grace period on every node, so allow for it.
  auto ctx = ContextWithDeadline(timeout_ms_ + request.grace_ms());
  coordinator::KillJobReply reply;
  Status st = FromGrpc(stub_->KillJob(ctx.get(), request, &reply));
  if (!st.ok()) return Explain(st);
  return reply;
}

StatusOr<coordinator::JobStatus> CoordinatorClient::GetJob(const std::string& job_id,
                                                           int rank_limit, int rank_offset) {
  coordinator::GetJobRequest req;
  req.set_job_id(job_id);
  req.set_rank_limit(rank_limit);
  req.set_rank_offset(rank_offset);
  return GetJob(req);
}

StatusOr<coordinator::JobStatus> CoordinatorClient::GetJob(
    const coordinator::GetJobRequest& request) {
  if (!stub_) return security_.status();
  auto ctx = ContextWithDeadline(timeout_ms_);
  coordinator::JobStatus reply;
  Status st = FromGrpc(stub_->GetJob(ctx.get(), request, &reply));
  if (!st.ok()) return Explain(st);
  return reply;
}

StatusOr<coordinator::ListJobsReply> CoordinatorClient::ListJobs(bool summary) {
  if (!stub_) return security_.status();
  auto ctx = ContextWithDeadline(timeout_ms_);
  coordinator::ListJobsRequest req;
  req.set_summary(summary);
  coordinator::ListJobsReply reply;
  Status st = FromGrpc(stub_->ListJobs(ctx.get(), req, &reply));
  if (!st.ok()) return Explain(st);
  return reply;
}

Status CoordinatorClient::StreamLogs(
    const coordinator::StreamLogsRequest& request,
    const std::function<void(const coordinator::LogBatch&)>& on_batch) {
  if (!stub_) return security_.status();
  grpc::ClientContext ctx;  // no deadline: a followed stream lasts as long as the job
  auto reader = stub_->StreamLogs(&ctx, request);
  coordinator::LogBatch batch;
  while (reader->Read(&batch)) on_batch(batch);
  Status st = FromGrpc(reader->Finish());
  return st.ok() ? st : Explain(st);
}

}  // namespace coord::cli
