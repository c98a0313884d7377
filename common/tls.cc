// Choosing and loading the control plane's transport security (see tls.h).
#include "common/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <memory>

#include "common/fs.h"
#include "common/logging.h"
#include "common/net.h"

namespace coord {
namespace {

std::string IssueHint(const std::string& program) {
  if (program == "coordctl") {
    return "create them with `coordctl certs init` (a new cluster CA and your user certificate) "
           "or copy ca.crt and a user certificate from `coordctl certs issue NAME --role user`";
  }
  std::string role = program == "coordd" ? "coordinator" : "node";
  return "issue one on the machine holding the CA with `coordctl certs issue NAME --role " + role +
         " --san ADDRESS` and install it (playbooks/agent.yaml does this for agents)";
}

// Loads and checks the three files. `must_be_valid`: our own certificate must
// verify against the CA right now (daemons); clients leave the verdict to the server.
Status Load(const TlsPaths& paths, const std::string& program, bool must_be_valid,
            RpcSecurity* out) {
  std::string missing;
  for (const std::string* p : {&paths.ca, &paths.cert, &paths.key}) {
    if (!PathExists(*p)) missing += (missing.empty() ? "" : ", ") + *p;
  }
  if (!missing.empty()) {
    return NotFound("TLS: missing " + missing + "; " + IssueHint(program));
  }
  auto read = [](const std::string& path, const char* what, std::string* into) -> Status {
    auto text = ReadFile(path);
    if (!text.ok())
      return Status(text.status().code(),
                    std::string("TLS: ") + what + " " + path + ": " + text.status().message());
    *into = *text;
    return Status::Ok();
  };
  RETURN_IF_ERROR(read(paths.ca, "CA certificate", &out->ca_pem));
  RETURN_IF_ERROR(read(paths.cert, "certificate", &out->cert_pem));
  RETURN_IF_ERROR(read(paths.key, "private key", &out->key_pem));
  if (auto ca = InspectCertificate(out->ca_pem); !ca.ok()) {
    return InvalidArgument("TLS: " + paths.ca + ": " + ca.status().message());
  } else if (!ca->is_ca) {
    return InvalidArgument("TLS: " + paths.ca +
                           ": not a CA certificate (give the cluster's ca.crt)");
  }
  if (Status st = CheckKeyMatchesCertificate(out->cert_pem, out->key_pem); !st.ok()) {
    return InvalidArgument("TLS: " + paths.cert + " / " + paths.key + ": " + st.message());
  }
  if (must_be_valid) {
    if (Status st = VerifyCertificate(out->cert_pem, out->ca_pem); !st.ok()) {
      return PermissionDenied("TLS: " + paths.cert + ": " + st.message() +
                              "; issue a new one with `coordctl certs issue`");
    }
  }
  out->tls = true;
  out->paths = paths;
  return Status::Ok();
}

// Shared rule of ServerSecurity / ClientSecurity.
// `what` names the protocol in the --insecure warning ("gRPC", "HTTP").
StatusOr<RpcSecurity> Choose(const TlsSettings& settings, const std::string& host,
                             const std::string& program, bool must_be_valid,
                             const std::string& where, const std::string& what = "gRPC") {
  RpcSecurity sec;
  const TlsPaths& p = settings.paths;
  bool any = PathExists(p.ca) || PathExists(p.cert) || PathExists(p.key);
  if (!settings.insecure && (settings.paths_given || any)) {
    RETURN_IF_ERROR(Load(p, program, must_be_valid, &sec));
    return sec;
  }
  if (settings.insecure) {
    if (what == "gRPC") {
      LOG_WARN << program << ": --insecure: plaintext gRPC " << where
               << "; anyone who can reach it can run programs as this user";
    } else {
      LOG_WARN << program << ": --insecure: plaintext " << what << " " << where
               << "; anyone who can reach it can read it";
    }
    return sec;
  }
  if (IsLoopbackHost(host)) return sec;  // both ends are this machine
  return FailedPrecondition("no TLS certificate (" + p.cert + " not found) for " + what + " " + where +
                            " off loopback; " + IssueHint(program) +
                            ", or pass --insecure to run without authentication");
}

std::string HomeDir() {
  const char* home = std::getenv("HOME");
  return home && *home ? home : "/root";
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// --- ExplainConnectFailure ---------------------------------------------------

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

std::string LastSslError() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "";
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : "";
}

int ConnectWithTimeout(const std::string& host, const std::string& port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) return -1;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (fd < 0) return -1;
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd pfd{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&pfd, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
        err == 0) {
      rc = 0;
    }
  }
  if (rc != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// What is wrong with our own certificate, if anything ("" when it verifies and
// may be used by a client).
std::string OwnCertificateProblem(const RpcSecurity& sec) {
  Status st = VerifyCertificate(sec.cert_pem, sec.ca_pem);
  if (!st.ok()) {
    return "our certificate " + sec.paths.cert + ": " + st.message() +
           "; issue a new one with `coordctl certs issue`";
  }
  auto info = InspectCertificate(sec.cert_pem);
  if (info.ok() && info->role == CertRoleName(CertRole::kNode)) {
    return "our certificate " + sec.paths.cert +
           " is a node certificate, which only serves; clients need a user certificate "
           "(`coordctl certs issue NAME --role user`)";
  }
  return "";
}

std::string ProbeTls(const std::string& target, const RpcSecurity& sec, int timeout_ms);

}  // namespace

TlsPaths TlsPathsIn(const std::string& dir, const std::string& name) {
  return {dir + "/ca.crt", dir + "/" + name + ".crt", dir + "/" + name + ".key"};
}

std::string KeyPathFor(const std::string& cert_path) {
  const std::string ext = ".crt";
  bool crt = cert_path.size() > ext.size() &&
             cert_path.compare(cert_path.size() - ext.size(), ext.size(), ext) == 0;
  return (crt ? cert_path.substr(0, cert_path.size() - ext.size()) : cert_path) + ".key";
}

TlsPaths DaemonTlsPaths(const std::string& name) { return TlsPathsIn("/etc/coord/tls", name); }

std::string UserTlsDir() { return EnvOr("COORD_TLS_DIR", HomeDir() + "/.coord/tls"); }

TlsPaths UserTlsPaths() {
  TlsPaths p = TlsPathsIn(UserTlsDir(), "user");
  p.ca = EnvOr("COORD_TLS_CA", p.ca);
  const char* cert = std::getenv("COORD_TLS_CERT");
  if (cert && *cert) {
    p.cert = cert;
    // A "x.crt" brings its "x.key"; any other name keeps DIR/user.key.
    std::string beside = KeyPathFor(p.cert);
    if (beside != p.cert + ".key") p.key = beside;
  }
  p.key = EnvOr("COORD_TLS_KEY", p.key);
  return p;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

StatusOr<RpcSecurity> ServerSecurity(const TlsSettings& settings, const std::string& listen,
                                     const std::vector<CertRole>& allowed_callers,
                                     const std::string& program) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(listen, &host, &port).WithContext("--listen"));
  // An empty host or 0.0.0.0 / [::] listens on every address, loopback or not.
  ASSIGN_OR_RETURN(RpcSecurity sec,
                   Choose(settings, host, program, /*must_be_valid=*/true, "on " + listen));
  sec.allowed_callers = allowed_callers;
  return sec;
}

StatusOr<RpcSecurity> HttpServerSecurity(const TlsSettings& settings, const std::string& listen,
                                         const std::vector<CertRole>& allowed_callers,
                                         const std::string& program, const std::string& flag) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(listen, &host, &port).WithContext(flag));
  ASSIGN_OR_RETURN(RpcSecurity sec, Choose(settings, host, program, /*must_be_valid=*/true,
                                           "on " + listen + " (" + flag + ")", "HTTP"));
  sec.allowed_callers = allowed_callers;
  return sec;
}

StatusOr<RpcSecurity> ClientSecurity(const TlsSettings& settings, const std::string& target,
                                     const std::string& program, const std::string& peer_kind) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(target, &host, &port));
  ASSIGN_OR_RETURN(RpcSecurity sec, Choose(settings, host, program,
                                           /*must_be_valid=*/false, "to " + target));
  sec.peer_kind = peer_kind;
  return sec;
}

std::string ExplainConnectFailure(const std::string& target, const RpcSecurity& sec,
                                  int timeout_ms) {
  // A server that refuses us may close the socket while we write: keep the
  // SIGPIPE from killing the process (blocked here, any pending one consumed).
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  std::string out = ProbeTls(target, sec, timeout_ms);
  timespec zero{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return out;
}

namespace {

std::string ProbeTls(const std::string& target, const RpcSecurity& sec, int timeout_ms) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(target, &host, &port).ok()) return "";
  int fd = ConnectWithTimeout(host, std::to_string(port), timeout_ms);
  if (fd < 0) return "";  // nothing listens: not a TLS matter
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  std::unique_ptr<SSL, SslFree> ssl;
  std::string out;
  if (ctx) {
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (sec.tls) {
      BIO* bio = BIO_new_mem_buf(sec.ca_pem.data(), static_cast<int>(sec.ca_pem.size()));
      X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      if (ca) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca);
        X509_free(ca);
      }
      bio = BIO_new_mem_buf(sec.cert_pem.data(), static_cast<int>(sec.cert_pem.size()));
      X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      bio = BIO_new_mem_buf(sec.key_pem.data(), static_cast<int>(sec.key_pem.size()));
      EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      if (cert) SSL_CTX_use_certificate(ctx.get(), cert);
      if (key) SSL_CTX_use_PrivateKey(ctx.get(), key);
      X509_free(cert);
      EVP_PKEY_free(key);
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    }
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
    ssl.reset(SSL_new(ctx.get()));
  }
  if (!ssl) {
    close(fd);
    return "";
  }
  SSL_set_fd(ssl.get(), fd);
  if (sec.tls) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    in6_addr any{};
    if (inet_pton(AF_INET, host.c_str(), &any) == 1 ||
        inet_pton(AF_INET6, host.c_str(), &any) == 1) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
      SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    }
  }
  const std::string peer = "the " + sec.peer_kind + " at " + target;
  if (SSL_connect(ssl.get()) != 1) {
    long verify = SSL_get_verify_result(ssl.get());
    std::string reason = LastSslError();
    if (sec.tls && verify != X509_V_OK) {
      out =
          peer +
          " presented a certificate we do not trust: " + X509_verify_cert_error_string(verify) +
          (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
               ? " (its certificate does not name " + host + "; issue it with `--san " + host + "`)"
           : verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                   verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                   verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
               ? " (it belongs to another cluster CA than " + sec.paths.ca + ")"
               : "");
    } else if (reason.find("wrong version number") != std::string::npos ||
               reason.find("packet length too long") != std::string::npos ||
               reason.find("record layer failure") != std::string::npos) {
      out = peer + " speaks plaintext, not TLS (it was started without certificates)";
    } else if (reason.find("alert") != std::string::npos) {
      out = peer + " refused our certificate (" + reason + ")";
    } else if (!reason.empty()) {
      out = "TLS handshake with " + peer + " failed: " + reason;
    }
  } else if (!sec.tls) {
    out = peer +
          " requires TLS: give coordctl the cluster CA and a user certificate "
          "(--tls-dir, or `coordctl certs issue NAME --role user`)";
  } else {
    // TLS 1.3: the server judges our certificate after the client's Finished,
    // so its verdict (an alert) arrives on the first read. Send the HTTP/2
    // preface so an accepting server answers with SETTINGS at once.
    static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    char buf[64];
    if (SSL_write(ssl.get(), kPreface, sizeof(kPreface) - 1) <= 0 ||
        SSL_read(ssl.get(), buf, sizeof(buf)) <= 0) {
      // gRPC's servers close without an alert; OpenSSL ones send one.
      std::string reason = LastSslError();
      if (reason.find("unexpected eof") != std::string::npos) {
        out = peer + " refused our certificate (it closed the connection after the handshake)";
      } else if (!reason.empty()) {
        out = peer + " refused our certificate (" + reason + ")";
      }
    }
  }
  if (sec.tls && !out.empty()) {
    std::string own = OwnCertificateProblem(sec);
    if (!own.empty()) out += "; " + own;
  }
  SSL_shutdown(ssl.get());
  close(fd);
  return out;
}

}  // namespace
}  // namespace coord
