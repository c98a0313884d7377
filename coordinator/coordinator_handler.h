// What coordd's gRPC adapter (grpc_service.h) calls: the Coordinator service's RPCs as
// plain functions on protos, errors as Status. JobManager is the implementation; tests
// of the adapter (and of coordctl against it) may fake it. The agent has the same seam
// (agent/agent_service.h's AgentHandler).
#pragma once

#include <functional>

#include "common/status.h"
#include "proto/coordinator.pb.h"

namespace coord::coordinator {

/// Receives merged log batches; returns false when the reader has gone (stops the stream).
using LogSink = std::function<bool(const LogBatch&)>;
/// True once the caller has gone (its stream can stop); as agent_client.h's.
using CancelledFn = std::function<bool()>;

class CoordinatorHandler {
 public:
  virtual ~CoordinatorHandler() = default;
  virtual Status StartJob(const StartJobRequest& request, StartJobReply* reply) = 0;
  virtual Status KillJob(const KillJobRequest& request, KillJobReply* reply) = 0;
  virtual Status GetJob(const GetJobRequest& request, JobStatus* reply) = 0;
  virtual Status ListJobs(const ListJobsRequest& request, ListJobsReply* reply) = 0;
  virtual Status StreamLogs(const StreamLogsRequest& request, const LogSink& sink,
                            const CancelledFn& cancelled) = 0;
};

}  // namespace coord::coordinator
