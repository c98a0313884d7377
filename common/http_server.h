// HttpServer: the HTTP(S) endpoint of coordd and the agents (/metrics now; the status
// page's JSON API and static files next). cpp-httplib (Debian's libcpp-httplib-dev)
// underneath, hidden behind this header so callers never include httplib.h.
//
// Security follows the control plane's rule (tls.h): with `security.tls` it speaks
// HTTPS only and every client must present a certificate signed by the cluster CA
// (the handshake fails otherwise) whose role is in `security.allowed_callers` (403
// otherwise); plaintext is what ServerSecurity allows: loopback, or --insecure.
//
// Usage: Create() binds (port 0 picks a free one; port() tells which), add routes,
// then Start() serves on a small thread pool until Stop(). Routes must all be added
// before Start(). Handlers run on the pool's threads, concurrently: they must be
// thread-safe. Create() sets SIGPIPE to ignored when it is at its default (a client
// hanging up mid-reply must not kill the daemon). Requests are bounded (8 KiB of request line and
// headers, max_body_bytes of body); anything else gets 404 (unknown path), 405 (not GET/HEAD),
// 400/413/414.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/tls.h"

namespace coord {

struct HttpRequest {
  std::string method;                             // "GET" or "HEAD"
  std::string path;                               // decoded, without the query
  std::vector<std::string> captures;              // the route pattern's groups, in order
  std::multimap<std::string, std::string> query;  // decoded ?key=value pairs
  std::string remote_addr;                        // the client's address
  std::string client_name;  // with TLS: the client certificate's CN ("" without TLS)
  std::string client_role;  // with TLS: its role (the subject's OU): "user", ...

  // The first value of `key` in the query, else `fallback`.
  std::string Query(const std::string& key, const std::string& fallback = "") const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);  // application/json
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string listen;             // "host:port"; port 0 picks a free one
  RpcSecurity security;           // tls: HTTPS + client certificates (see above)
  std::string program = "coord";  // for log lines ("coordd")
  int threads = 4;                // requests served at once
  size_t max_body_bytes = 64 * 1024;
  int read_timeout_ms = 5000;  // a client that sends nothing for this long is dropped
};

class HttpServer {
 public:
  // Binds options.listen; does not serve yet.
  static StatusOr<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // GET (and HEAD) requests whose whole path matches `pattern` (an ECMAScript regex;
  // groups become HttpRequest::captures). Routes are tried in the order added.
  void Get(const std::string& pattern, HttpHandler handler);
  // Files under `dir` at `url_prefix` ("/static/"): GET only, no directory listings,
  // no path that climbs out of dir ("..": 400). The content type follows the extension.
  Status ServeDirectory(const std::string& url_prefix, const std::string& dir);

  // Serves on a background thread. Once only.
  Status Start();
  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void Stop();

  int port() const { return port_; }
  bool tls() const { return tls_; }
  // "http://127.0.0.1:8080" / "https://..." (the bound port).
  std::string url() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  bool tls_ = false;
};

}  // namespace coord
