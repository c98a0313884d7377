// coordctl's view of coordd: one stub with a deadline on every unary call.
// Errors come back as Status with a message a person can act on (which address
// was tried and how to start a coordinator). One per command; its calls may run on
// two threads at once (start --follow polls GetJob while StreamLogs streams: a gRPC
// stub is thread-safe and each call has its own context).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/tls.h"
#include "proto/coordinator.grpc.pb.h"

namespace coord::cli {

class CoordinatorClient {
 public:
  // The transport follows tls.h's rule for `target`; if it allows none (no
  // certificate for a coordd off loopback), every call returns that error.
  CoordinatorClient(const std::string& target, int timeout_ms, const TlsSettings& tls);

  // Cheap probe (ListJobs with a short deadline): is a coordd there?
  bool Reachable(int timeout_ms);

  StatusOr<coordinator::StartJobReply> StartJob(const coordinator::StartJobRequest& request,
                                                int timeout_ms);
  StatusOr<coordinator::KillJobReply> KillJob(const coordinator::KillJobRequest& request);
  // rank_limit 0: every rank and node; else a page (GetJobRequest).
  StatusOr<coordinator::JobStatus> GetJob(const std::string& job_id, int rank_limit = 0,
                                          int rank_offset = 0);
  StatusOr<coordinator::JobStatus> GetJob(const coordinator::GetJobRequest& request);
  // summary: without each job's rank and node tables (ListJobsRequest).
  StatusOr<coordinator::ListJobsReply> ListJobs(bool summary = false);
  // Streams until the server ends the stream (follow: job ended) or `stop` says so.
  Status StreamLogs(const coordinator::StreamLogsRequest& request,
                    const std::function<void(const coordinator::LogBatch&)>& on_batch);

  const std::string& target() const { return target_; }

 private:
  Status Explain(const Status& status) const;

  std::string target_;
  int timeout_ms_;
  StatusOr<RpcSecurity> security_;
  std::unique_ptr<coordinator::Coordinator::Stub> stub_;
};

}  // namespace coord::cli
