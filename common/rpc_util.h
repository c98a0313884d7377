// The gRPC edge: converting Status <-> grpc::Status, starting a server that may
// bind port 0 (and reports the port it got), deadlines, and systemd readiness.
// Only adapters and clients include this; logic classes never see grpcpp.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/net.h"  // SplitHostPort
#include "common/status.h"
#include "common/tls.h"

namespace coord {

grpc::Status ToGrpc(const Status& status);
Status FromGrpc(const grpc::Status& status);

// A context with a deadline `timeout_ms` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(int timeout_ms);

// Channel to "host:port": mutual TLS when `security.tls` (the server's
// certificate must be signed by the CA and name the target's host), else
// plaintext (see tls.h for when that is allowed). Keepalive pings every 10 s so
// a dead peer is noticed on idle streams too; servers permit exactly that.
// Channels with different `connection` names never share a TCP connection: bulk
// streams (logs) on one cannot hold up what must arrive on time (heartbeats) on another.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const RpcSecurity& security = RpcSecurity(),
                                           const std::string& connection = "");

struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (the real one when 0 was asked for)
};
// Builds and starts a server on `listen` ("host:port", port may be 0) with the
// given services. With `security.tls` every client must present a certificate
// signed by the CA whose role is in `security.allowed_callers`; others are
// refused (the handshake fails, or the call gets PERMISSION_DENIED naming the
// role). Fails with a clear message when the address cannot be bound.
StatusOr<StartedServer> StartGrpcServer(const std::string& listen,
                                        const std::vector<grpc::Service*>& services,
                                        const RpcSecurity& security = RpcSecurity());

// sd_notify(READY=1) when run under systemd (NOTIFY_SOCKET set); a no-op otherwise.
void NotifyReady(const std::string& status_text);
void NotifyStopping();

}  // namespace coord
