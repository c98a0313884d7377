// Test support: an HTTP(S) client for the daemons' HTTP endpoints (cpp-httplib), and
// raw TCP exchanges for malformed requests a real client would never send.
#pragma once

#include <string>

namespace coord::testing {

// Files a TLS client presents and trusts; empty cert = no client certificate.
struct HttpClientTls {
  std::string ca;    // the CA that signed the server (verified, with its address)
  std::string cert;  // our certificate
  std::string key;
};

struct HttpResult {
  int status = -1;  // -1: no HTTP response (refused, handshake failed, timed out)
  std::string body;
  std::string content_type;
  std::string error;  // why there was no response
};

// GET `path` from "host:port": plain HTTP, or HTTPS when `tls` is given.
HttpResult HttpGet(const std::string& hostport, const std::string& path,
                   const HttpClientTls* tls = nullptr, int timeout_ms = 5000);

// Connects to host:port, writes `request` as it is (nothing when empty) and returns
// whatever the server sent until it closed (or timeout_ms passed). connected=false
// when nothing listens. Ask for "Connection: close" to get the reply without waiting.
struct RawExchange {
  bool connected = false;
  std::string reply;
};
RawExchange RawHttpExchange(const std::string& host, int port, const std::string& request,
                            int timeout_ms = 5000);

}  // namespace coord::testing
