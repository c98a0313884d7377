// The gRPC edge of coord-agent: converts between grpc and AgentHandler (which
// holds all logic). Runs on gRPC's sync-server threads.
//
// Why the sync API and not the callback API of style rule 2: Watch and TailLogs
// are long blocking loops (wait for an event, write it, repeat) whose natural
// form is one thread per stream, with Write() providing flow control; with few
// streams per agent (one coordinator, a few log tails) the thread per stream is
// cheap, and the handler code stays free of reactor state machines.
#pragma once

#include <grpcpp/grpcpp.h>

#include "agent/agent_service.h"
#include "proto/agent.grpc.pb.h"

namespace coord::agent {

class AgentGrpcService final : public Agent::Service {
 public:
  explicit AgentGrpcService(AgentHandler* handler) : handler_(handler) {}

  grpc::Status Ping(grpc::ServerContext* ctx, const PingRequest* req, PingReply* reply) override;
  grpc::Status ReservePort(grpc::ServerContext* ctx, const ReservePortRequest* req,
                           ReservePortReply* reply) override;
  grpc::Status Launch(grpc::ServerContext* ctx, const LaunchRequest* req,
                      LaunchReply* reply) override;
  grpc::Status Kill(grpc::ServerContext* ctx, const KillRequest* req, KillReply* reply) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const WatchRequest* req,
                     grpc::ServerWriter<AgentEvent>* writer) override;
  grpc::Status TailLogs(grpc::ServerContext* ctx, const TailLogsRequest* req,
                        grpc::ServerWriter<LogBatch>* writer) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const ListJobsRequest* req,
                        ListJobsReply* reply) override;
  grpc::Status CheckNode(grpc::ServerContext* ctx, const CheckNodeRequest* req,
                         CheckNodeReply* reply) override;
  grpc::Status SharedTokens(grpc::ServerContext* ctx, const SharedTokensRequest* req,
                            SharedTokensReply* reply) override;
  grpc::Status RankSnapshots(grpc::ServerContext* ctx, const RankSnapshotsRequest* req,
                             RankSnapshotsReply* reply) override;

 private:
  AgentHandler* handler_;  // not owned; outlives the server
};

}  // namespace coord::agent
