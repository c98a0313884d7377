// gRPC edge helpers (see rpc_util.h).
#include "common/rpc_util.h"

#include <systemd/sd-daemon.h>

namespace coord {

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(int timeout_ms) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  return ctx;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect quickly after an agent restarts (default backoff grows to 120 s).
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the minimum
  // connect timeout, and 100 ms makes first connections fail on a loaded node.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

Status SplitHostPort(const std::string& hostport, std::string* host, int* port) {
  std::string h, p;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      return InvalidArgument("'" + hostport + "': expected [ipv6]:port");
    }
    h = hostport.substr(1, close - 1);
    p = hostport.substr(close + 2);
  } else {
    size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) return InvalidArgument("'" + hostport + "': expected host:port");
    h = hostport.substr(0, colon);
    p = hostport.substr(colon + 1);
  }
  if (h.empty()) return InvalidArgument("'" + hostport + "': empty host");
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535) {
    return InvalidArgument("'" + hostport + "': port must be 0..65535");
  }
  *host = h;
  *port = static_cast<int>(v);
  return Status::Ok();
}

StatusOr<StartedServer> StartGrpcServer(const std::string& listen,
                                        const std::vector<grpc::Service*>& services) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(listen, &host, &port).WithContext("--listen"));
  grpc::ServerBuilder builder;
  StartedServer out;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &out.port);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  for (auto* s : services) builder.RegisterService(s);
  out.server = builder.BuildAndStart();
  if (!out.server || out.port == 0) {
    return Unavailable("cannot listen on " + listen +
                       " (address in use, or not an address of this machine?)");
  }
  return out;
}

void NotifyReady(const std::string& status_text) {
  std::string msg = "READY=1\nSTATUS=" + status_text;
  sd_notify(0, msg.c_str());
}

void NotifyStopping() { sd_notify(0, "STOPPING=1"); }

}  // namespace coord
