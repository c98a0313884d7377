// AgentClient over gRPC: one channel and stub per agent target. Unary calls carry a
// deadline; Watch reads on a thread owned by its handle; TailLogs blocks the caller
// and is cancelled from a small watcher thread. Thread-safe (gRPC stubs are).
#pragma once

#include <memory>

#include "coordinator/agent_client.h"

namespace coord::coordinator {

/// The default AgentClientFactory: a plaintext channel to entry.Target().
std::unique_ptr<AgentClient> MakeGrpcAgentClient(const HostEntry& entry);

}  // namespace coord::coordinator
