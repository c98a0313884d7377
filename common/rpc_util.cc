// gRPC edge helpers (see rpc_util.h).
#include "common/rpc_util.h"

#include <grpcpp/security/auth_metadata_processor.h>
#include <systemd/sd-daemon.h>

#include <mutex>
#include <unordered_map>

#include "common/logging.h"
#include "common/tsan_handoff.h"

namespace coord {
namespace {

// Keepalive: clients ping every 10 s (also without calls) and give up after 5 s
// without an answer; servers accept pings that often, so they never GOAWAY a
// healthy client for "too many pings".
constexpr int kKeepaliveTimeMs = 10000;
constexpr int kKeepaliveTimeoutMs = 5000;

// Authorization after authentication: TLS has proven the client holds a
// certificate of this cluster; this checks what the certificate is for (its
// role, the subject's OU), once per call. Roles are cached by certificate text.
class RoleCheck final : public grpc::AuthMetadataProcessor {
 public:
  // gRPC calls Process and the destructor on its own threads and orders them inside
  // libgrpc: the edges are spelled out for ThreadSanitizer (common/tsan_handoff.h).
  explicit RoleCheck(std::vector<CertRole> allowed) : allowed_(std::move(allowed)) {
    HandoffRelease(this);
  }
  ~RoleCheck() override { HandoffAcquire(this); }
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata&, grpc::AuthContext* context, OutputMetadata*,
                       OutputMetadata*) override {
    HandoffAcquire(this);
    grpc::Status status = Check(context);
    HandoffRelease(this);
    return status;
  }

 private:
  grpc::Status Check(grpc::AuthContext* context) {
    auto pems = context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (pems.empty()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no client certificate");
    }
    std::string pem(pems.front().data(), pems.front().size());
    std::string role, name;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = roles_.find(pem);
      if (it != roles_.end()) {
        role = it->second.first;
        name = it->second.second;
      }
    }
    if (role.empty()) {
      auto info = InspectCertificate(pem);
      if (!info.ok())
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unreadable client certificate");
      role = info->role;
      name = info->common_name;
      std::lock_guard<std::mutex> lock(mu_);
      if (roles_.size() > 1024) roles_.clear();
      roles_[pem] = {role, name};
    }
    std::string accepted;
    for (CertRole r : allowed_) {
      if (role == CertRoleName(r)) return grpc::Status::OK;
      accepted += std::string(accepted.empty() ? "" : ", ") + CertRoleName(r);
    }
    LOG_WARN << "refused a call from certificate CN=" << name << " (role '" << role
             << "'): this server accepts " << accepted;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "certificate CN=" + name + " has role '" + role +
                            "'; this server accepts only: " + accepted);
  }

  const std::vector<CertRole> allowed_;
  std::mutex mu_;
  std::unordered_map<std::string, std::pair<std::string, std::string>> roles_;
};

}  // namespace

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

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const RpcSecurity& security,
                                           const std::string& connection) {
  grpc::ChannelArguments args;
  // Part of the subchannel's key: another name, another connection.
  if (!connection.empty()) args.SetString("coord.connection", connection);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect quickly after an agent restarts (default backoff grows to 120 s).
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the minimum
  // connect timeout, and 100 ms makes first connections fail on a loaded node.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (!security.tls) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = security.ca_pem;
  tls.pem_private_key = security.key_pem;
  tls.pem_cert_chain = security.cert_pem;
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(tls), args);
}

StatusOr<StartedServer> StartGrpcServer(const std::string& listen,
                                        const std::vector<grpc::Service*>& services,
                                        const RpcSecurity& security) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(listen, &host, &port).WithContext("--listen"));
  grpc::ServerBuilder builder;
  StartedServer out;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (security.tls) {
    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = security.ca_pem;
    tls.pem_key_cert_pairs.push_back({security.key_pem, security.cert_pem});
    creds = grpc::SslServerCredentials(tls);
    creds->SetAuthMetadataProcessor(std::make_shared<RoleCheck>(security.allowed_callers));
  }
  builder.AddListeningPort(listen, creds, &out.port);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
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
