// HttpServer over cpp-httplib (see http_server.h). The TLS context is built here
// from the PEM texts ServerSecurity loaded, so HTTPS trusts exactly what gRPC trusts.
#include "common/http_server.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>

// cpp-httplib's Debian build is a shared library compiled with these; the header must
// see the same configuration (pkg-config cpp-httplib adds them too).
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#include <httplib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "common/net.h"

namespace coord {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string SslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

// Server certificate and key, the CA as the only trust anchor, and a client
// certificate required (the handshake fails without one). The CA's name goes into
// the CertificateRequest so a browser offers only certificates this CA issued.
bool SetUpTls(SSL_CTX& ctx, const RpcSecurity& sec, std::string* error) {
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_RENEGOTIATION);
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(MemBio(sec.cert_pem).get(), nullptr, nullptr, nullptr));
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(MemBio(sec.key_pem).get(), nullptr, nullptr, nullptr));
  if (!cert || !key) {
    *error = "cannot read the certificate or key (" + sec.paths.cert + "): " + SslError();
    return false;
  }
  if (SSL_CTX_use_certificate(&ctx, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(&ctx, key.get()) != 1 || SSL_CTX_check_private_key(&ctx) != 1) {
    *error = "certificate " + sec.paths.cert + ": " + SslError();
    return false;
  }
  // Every certificate of the CA file is trusted and named to clients.
  auto bio = MemBio(sec.ca_pem);
  int cas = 0;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(&ctx), ca);
    SSL_CTX_add_client_CA(&ctx, ca);
    X509_free(ca);
    ++cas;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (cas == 0) {
    *error = "no CA certificate in " + sec.paths.ca;
    return false;
  }
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return true;
}

std::string NameEntry(X509_NAME* name, int nid) {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool IsAllowed(const std::string& role, const std::vector<CertRole>& allowed) {
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](CertRole r) { return role == CertRoleName(r); });
}

void IgnoreSigpipe() {
  struct sigaction old {};
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------

std::string HttpRequest::Query(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r = Text(status, std::move(body));
  r.content_type = "application/json";
  return r;
}

struct HttpServer::Impl {
  HttpServerOptions options;
  std::string host;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::mutex mu;         // serializes Start / Stop
  bool started = false;  // guarded by mu
  bool stopped = false;  // guarded by mu
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options) {
  // cpp-httplib writes with send(2) without MSG_NOSIGNAL and with SSL_write. It checks
  // that the peer is still there before each write, but a client that hangs up between
  // that check and the write would kill the whole daemon with SIGPIPE.
  IgnoreSigpipe();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(options.listen, &impl->host, &port));
  if (impl->host.empty()) impl->host = "0.0.0.0";
  const RpcSecurity& sec = options.security;
  if (sec.tls) {
    std::string error;
    auto ssl = std::make_unique<httplib::SSLServer>(
        [&](SSL_CTX& ctx) { return SetUpTls(ctx, sec, &error); });
    if (!ssl->is_valid()) return InvalidArgument("HTTPS on " + options.listen + ": " + error);
    impl->server = std::move(ssl);
  } else {
    impl->server = std::make_unique<httplib::Server>();
  }
  httplib::Server& s = *impl->server;
  const int threads = std::max(1, options.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // httplib's default also sets SO_REUSEPORT, which would let a second daemon bind the
  // same port and take half the requests: only SO_REUSEADDR (restarts during TIME_WAIT).
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_payload_max_length(options.max_body_bytes);
  const auto timeout = std::chrono::milliseconds(std::max(100, options.read_timeout_ms));
  s.set_read_timeout(timeout);
  s.set_write_timeout(timeout);
  // An idle keep-alive connection holds a pool thread, and Stop() waits for it: close
  // it soon (Prometheus reconnects per scrape at its usual 15-60 s intervals anyway).
  s.set_keep_alive_timeout(std::min<time_t>(2, std::max<time_t>(1, timeout.count() / 1000)));

  // Before any route: the client certificate's role, and the methods we serve.
  const std::vector<CertRole> allowed = sec.allowed_callers;
  const bool tls = sec.tls;
  s.set_pre_routing_handler([tls, allowed](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("method " + req.method + " not allowed: this server is read-only\n",
                      "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (tls && !allowed.empty()) {
      std::string role;
      if (req.ssl != nullptr) {
        if (X509* peer = SSL_get1_peer_certificate(req.ssl)) {
          role = NameEntry(X509_get_subject_name(peer), NID_organizationalUnitName);
          X509_free(peer);
        }
      }
      if (!IsAllowed(role, allowed)) {
        res.status = 403;
        res.set_content("a certificate with role '" + role + "' may not read this server\n",
                        "text/plain; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string what = res.status == 404   ? "not found: " + req.path
                       : res.status == 413 ? "request body too large"
                       : res.status == 414 ? "request URI too long"
                       : res.status == 400 ? "bad request"
                                           : "error";
    res.set_content(what + "\n", "text/plain; charset=utf-8");
  });
  const std::string program = options.program;
  s.set_exception_handler(
      [program](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        LOG_ERROR << program << ": HTTP " << req.path << ": " << what;
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
      });
  s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    LOG_DEBUG << "HTTP " << req.remote_addr << " " << req.method << " " << req.path << " -> "
              << res.status;
  });

  errno = 0;
  int bound =
      port == 0 ? s.bind_to_any_port(impl->host) : (s.bind_to_port(impl->host, port) ? port : -1);
  if (bound <= 0) {
    const int err = errno;
    return Unavailable("cannot listen on " + options.listen +
                       (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
  }
  std::unique_ptr<HttpServer> out(new HttpServer(std::move(impl)));
  out->port_ = bound;
  out->tls_ = tls;
  return out;
}

void HttpServer::Get(const std::string& pattern, HttpHandler handler) {
  impl_->server->Get(pattern, [handler = std::move(handler), tls = tls_](
                                  const httplib::Request& req, httplib::Response& res) {
    HttpRequest in;
    in.method = req.method;
    in.path = req.path;
    for (size_t i = 1; i < req.matches.size(); ++i) in.captures.push_back(req.matches[i].str());
    in.query.insert(req.params.begin(), req.params.end());
    in.remote_addr = req.remote_addr;
    if (tls && req.ssl != nullptr) {
      if (X509* peer = SSL_get1_peer_certificate(req.ssl)) {
        in.client_name = NameEntry(X509_get_subject_name(peer), NID_commonName);
        in.client_role = NameEntry(X509_get_subject_name(peer), NID_organizationalUnitName);
        X509_free(peer);
      }
    }
    HttpResponse out = handler(in);
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_content(std::move(out.body), out.content_type.c_str());
  });
}

Status HttpServer::ServeDirectory(const std::string& url_prefix, const std::string& dir) {
  if (url_prefix.empty() || url_prefix[0] != '/') {
    return InvalidArgument("URL prefix '" + url_prefix + "' must start with /");
  }
  if (!impl_->server->set_mount_point(url_prefix, dir)) {
    return NotFound("cannot serve " + dir + ": not a directory");
  }
  return Status::Ok();
}

Status HttpServer::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started) return FailedPrecondition("HTTP server already started");
  impl_->started = true;
  httplib::Server* s = impl_->server.get();
  impl_->thread = std::thread([s] { s->listen_after_bind(); });
  // Stop() only works once the accept loop runs (httplib's stop() is a no-op before):
  // wait for it, so a Stop right after Start cannot leave the thread serving.
  for (int i = 0; i < 2000 && !s->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!s->is_running())
    return Internal("HTTP server on " + impl_->options.listen + " did not start");
  LOG_INFO << impl_->options.program << ": serving " << url();
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (!impl_->started) {
    // The socket was bound in Create; only the accept loop's end closes it.
    httplib::Server* s = impl_->server.get();
    impl_->thread = std::thread([s] { s->listen_after_bind(); });
    for (int i = 0; i < 2000 && !s->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // stop() closes the listening socket; the accept loop then shuts the pool down,
  // which waits for the requests in flight.
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string HttpServer::url() const {
  const std::string& host = impl_->host;
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls_ ? "https" : "http") + "://" + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port_);
}

}  // namespace coord
