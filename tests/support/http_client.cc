// HttpGet / RawHttpExchange (see http_client.h).
#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#include <httplib.h>

namespace coord::testing {

HttpResult HttpGet(const std::string& hostport, const std::string& path, const HttpClientTls* tls,
                   int timeout_ms) {
  // A server that refuses our certificate closes while we write: not a reason to die.
  signal(SIGPIPE, SIG_IGN);
  HttpResult out;
  const size_t colon = hostport.rfind(':');
  const std::string host = hostport.substr(0, colon);
  const int port = std::stoi(hostport.substr(colon + 1));
  std::unique_ptr<httplib::ClientImpl> client;
  if (tls != nullptr) {
    auto ssl = tls->cert.empty()
                   ? std::make_unique<httplib::SSLClient>(host, port)
                   : std::make_unique<httplib::SSLClient>(host, port, tls->cert, tls->key);
    ssl->set_ca_cert_path(tls->ca.c_str());
    ssl->enable_server_certificate_verification(true);
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(host, port);
  }
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  client->set_connection_timeout(timeout);
  client->set_read_timeout(timeout);
  client->set_write_timeout(timeout);
  httplib::Result res = client->Get(path.c_str());
  if (!res) {
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  out.content_type = res->get_header_value("Content-Type");
  return out;
}

RawExchange RawHttpExchange(const std::string& host, int port, const std::string& request,
                            int timeout_ms) {
  RawExchange out;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return out;
  }
  out.connected = true;
  // The server may answer (and close) before it has read everything: stop writing then.
  // No half-close after: httplib takes it for a client that has gone and answers nothing.
  size_t done = 0;
  while (done < request.size()) {
    ssize_t n = send(fd, request.data() + done, request.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) break;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace coord::testing
