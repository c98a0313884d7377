// Coordinator gRPC adapter (see grpc_service.h): proto in, the handler, proto + status out.
#include "coordinator/grpc_service.h"

#include <mutex>

#include "common/rpc_util.h"

namespace coord::coordinator {

grpc::Status CoordinatorGrpcService::StartJob(grpc::ServerContext*, const StartJobRequest* request,
                                              StartJobReply* reply) {
  return ToGrpc(jobs_->StartJob(*request, reply));
}

grpc::Status CoordinatorGrpcService::KillJob(grpc::ServerContext*, const KillJobRequest* request,
                                             KillJobReply* reply) {
  return ToGrpc(jobs_->KillJob(*request, reply));
}

grpc::Status CoordinatorGrpcService::GetJob(grpc::ServerContext*, const GetJobRequest* request,
                                            JobStatus* reply) {
  return ToGrpc(jobs_->GetJob(*request, reply));
}

grpc::Status CoordinatorGrpcService::ListJobs(grpc::ServerContext*, const ListJobsRequest* request,
                                              ListJobsReply* reply) {
  return ToGrpc(jobs_->ListJobs(*request, reply));
}

grpc::Status CoordinatorGrpcService::StreamLogs(grpc::ServerContext* context,
                                                const StreamLogsRequest* request,
                                                grpc::ServerWriter<LogBatch>* writer) {
  std::mutex write_mu;
  auto sink = [&](const LogBatch& batch) {
    std::lock_guard<std::mutex> lock(write_mu);
    return writer->Write(batch);  // false: the client went away
  };
  return ToGrpc(jobs_->StreamLogs(*request, sink, [context] { return context->IsCancelled(); }));
}

}  // namespace coord::coordinator
