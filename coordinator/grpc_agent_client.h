// AgentClient over gRPC: one channel and stub per agent target. Unary calls carry a
// deadline; Watch is a callback-API reactor (no thread per stream); TailLogs blocks the caller
// and is cancelled from a small watcher thread. Thread-safe (gRPC stubs are).
#pragma once

#include <memory>

#include "common/tls.h"
#include "coordinator/agent_client.h"

namespace coord::coordinator {

/// Clients whose transport follows tls.h's rule for each agent: mutual TLS with
/// this end's certificate, or plaintext to loopback agents / under --insecure.
/// An agent that may not be reached in plaintext gets a client whose every call
/// fails with the reason.
AgentClientFactory MakeGrpcAgentClientFactory(const TlsSettings& tls);
/// A plaintext channel to entry.Target() (loopback: in-process clusters, tests).
std::unique_ptr<AgentClient> MakeGrpcAgentClient(const HostEntry& entry);

}  // namespace coord::coordinator
