// The Coordinator gRPC service: adapts each RPC to a CoordinatorHandler (JobManager in
// coordd; neither sees grpcpp).
// Sync API: gRPC's thread pool runs the handlers; StreamLogs blocks its handler thread
// while node threads feed the writer (guarded by a mutex: Write is not thread-safe).
#pragma once

#include "coordinator/coordinator_handler.h"
#include "proto/coordinator.grpc.pb.h"

namespace coord::coordinator {

class CoordinatorGrpcService final : public Coordinator::Service {
 public:
  /// \param jobs must outlive the service (the server is shut down first).
  explicit CoordinatorGrpcService(CoordinatorHandler* jobs) : jobs_(jobs) {}

  grpc::Status StartJob(grpc::ServerContext* context, const StartJobRequest* request,
                        StartJobReply* reply) override;
  grpc::Status KillJob(grpc::ServerContext* context, const KillJobRequest* request,
                       KillJobReply* reply) override;
  grpc::Status GetJob(grpc::ServerContext* context, const GetJobRequest* request,
                      JobStatus* reply) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const ListJobsRequest* request,
                        ListJobsReply* reply) override;
  grpc::Status StreamLogs(grpc::ServerContext* context, const StreamLogsRequest* request,
                          grpc::ServerWriter<LogBatch>* writer) override;

 private:
  CoordinatorHandler* const jobs_;
};

}  // namespace coord::coordinator
