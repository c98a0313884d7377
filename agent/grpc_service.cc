// gRPC adapter for coord-agent (see grpc_service.h).
#include "agent/grpc_service.h"

#include "common/rpc_util.h"

namespace coord::agent {

grpc::Status AgentGrpcService::Ping(grpc::ServerContext*, const PingRequest* req,
                                    PingReply* reply) {
  return ToGrpc(handler_->Ping(*req, reply));
}

grpc::Status AgentGrpcService::ReservePort(grpc::ServerContext*, const ReservePortRequest* req,
                                           ReservePortReply* reply) {
  return ToGrpc(handler_->ReservePort(*req, reply));
}

grpc::Status AgentGrpcService::Launch(grpc::ServerContext*, const LaunchRequest* req,
                                      LaunchReply* reply) {
  return ToGrpc(handler_->Launch(*req, reply));
}

grpc::Status AgentGrpcService::Kill(grpc::ServerContext*, const KillRequest* req,
                                    KillReply* reply) {
  return ToGrpc(handler_->Kill(*req, reply));
}

grpc::Status AgentGrpcService::Watch(grpc::ServerContext* ctx, const WatchRequest* req,
                                     grpc::ServerWriter<AgentEvent>* writer) {
  return ToGrpc(handler_->Watch(
      *req, [writer](const AgentEvent& ev) { return writer->Write(ev); },
      [ctx] { return ctx->IsCancelled(); }));
}

grpc::Status AgentGrpcService::TailLogs(grpc::ServerContext* ctx, const TailLogsRequest* req,
                                        grpc::ServerWriter<LogBatch>* writer) {
  return ToGrpc(handler_->TailLogs(
      *req, [writer](const LogBatch& b) { return writer->Write(b); },
      [ctx] { return ctx->IsCancelled(); }));
}

grpc::Status AgentGrpcService::ListJobs(grpc::ServerContext*, const ListJobsRequest* req,
                                        ListJobsReply* reply) {
  return ToGrpc(handler_->ListJobs(*req, reply));
}

grpc::Status AgentGrpcService::CheckNode(grpc::ServerContext*, const CheckNodeRequest* req,
                                         CheckNodeReply* reply) {
  return ToGrpc(handler_->CheckNode(*req, reply));
}

grpc::Status AgentGrpcService::SharedTokens(grpc::ServerContext*, const SharedTokensRequest* req,
                                            SharedTokensReply* reply) {
  return ToGrpc(handler_->SharedTokens(*req, reply));
}

grpc::Status AgentGrpcService::RankSnapshots(grpc::ServerContext*, const RankSnapshotsRequest* req,
                                             RankSnapshotsReply* reply) {
  return ToGrpc(handler_->RankSnapshots(*req, reply));
}

}  // namespace coord::agent
