// The TCP rendezvous store (torch's TCPStore): rank 0 hosts a TcpStoreServer inside
// its own process on MASTER_ADDR:MASTER_PORT, and every rank, rank 0 included,
// talks to it through a TcpStore client. Built for one job's ranks (~1000 clients).
//
// Wire protocol, over one persistent connection per client. Every message is a frame:
// u32 body length (big endian, at most 64 MiB) + body. Strings are u32 length + bytes
// (values are arbitrary bytes: gloo stores binary addresses).
//   request: u8 op, then  SET: key, value | GET: key | ADD: key, i64 delta
//                         | WAIT: u32 count, count keys
//   reply:   u8 status (0 ok, 1 error), then  GET: the value's bytes | ADD: i64 sum
//                         | error: message text | SET, WAIT: nothing
// The server answers each connection's requests in order; a GET or WAIT on a missing
// key is parked and answered when the key is set, and later requests from that
// connection wait behind it. Timeouts are the client's business (poll), so the
// server never sleeps or times anything out.
#pragma once

#include <gloo/rendezvous/store.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "trainer/dist/store.h"

namespace gpt_rank::dist {

// Serves the store from one background thread (a poll loop over non-blocking
// sockets) until destroyed. The store's contents live in that thread only; the
// public methods are safe from any thread.
class TcpStoreServer {
 public:
  // Binds host:port with SO_REUSEADDR and listens. Port 0 picks a free port (see
  // port()); host "" or "0.0.0.0" listens on every IPv4 interface. Errors name the
  // address: "cannot listen on 0.0.0.0:29500: Address already in use".
  static coord::StatusOr<std::unique_ptr<TcpStoreServer>> Start(const std::string& host, int port);

  // Wakes the thread, joins it and closes every socket: clients waiting on the store
  // get Unavailable at once.
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  int port() const { return port_; }

 private:
  class Loop;  // the thread's state: sockets, keys, parked requests (tcp_store.cc)

  TcpStoreServer(std::unique_ptr<Loop> loop, int port);

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  const int port_;
};

// A client of the store. Thread-safe: calls are serialized on the one connection, so
// a Get that waits also delays the other threads' calls on this client (give each
// thread its own client when that matters).
//
// After a call times out, its reply may still arrive, so the next call opens a fresh
// connection (one attempt, no retries). After the server closed the connection, every
// call fails with the same Unavailable: the job has lost rank 0.
class TcpStore final : public KeyValueStore, public ::gloo::rendezvous::Store {
 public:
  // Connects to host:port, retrying refused, unreachable or unresolvable attempts
  // with a backoff (10 ms doubling to 500 ms) until `deadline` has passed, since the
  // other ranks usually start before rank 0 listens. On failure, DeadlineExceeded:
  // "could not reach the rendezvous store at HOST:PORT (MASTER_ADDR:MASTER_PORT)
  // within 30.0 s (last error: Connection refused); is rank 0 running and is the
  // port open?"
  static coord::StatusOr<std::unique_ptr<TcpStore>> Connect(const std::string& host, int port,
                                                            std::chrono::milliseconds deadline);
  ~TcpStore() override;
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  // KeyValueStore. Set and Add wait for the server's reply at most default_timeout().
  coord::Status Set(const std::string& key, const std::string& value) override;
  coord::StatusOr<std::string> Get(const std::string& key,
                                   std::chrono::milliseconds timeout) override;
  coord::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  coord::Status Wait(const std::vector<std::string>& keys,
                     std::chrono::milliseconds timeout) override;
  std::string address() const override { return address_; }

  // gloo::rendezvous::Store, for gloo::rendezvous::Context::connectFullMesh. These
  // throw ::gloo::IoException carrying the Status text, as gloo expects. get() and
  // wait(keys) are bounded by default_timeout(), and so is wait(keys, timeout) when
  // timeout is gloo's kNoTimeout (zero): a rendezvous never waits forever.
  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

  // 30 s (gloo's default) until set.
  void set_default_timeout(std::chrono::milliseconds timeout) {
    default_timeout_ms_ = timeout.count();
  }
  std::chrono::milliseconds default_timeout() const {
    return std::chrono::milliseconds(default_timeout_ms_.load());
  }

 private:
  TcpStore(std::string host, int port, int fd);

  // Sends one request frame and reads its reply frame within `timeout`. `what` says
  // what is awaited, for messages ("key \"x\""). Returns the reply's payload.
  coord::StatusOr<std::string> Call(const std::string& request, std::chrono::milliseconds timeout,
                                    const std::string& what);

  const std::string host_;
  const int port_;
  const std::string address_;  // "host:port" ("[v6]:port")
  std::atomic<int64_t> default_timeout_ms_{30000};

  std::mutex mu_;         // serializes Call; guards the two fields below
  int fd_ = -1;           // -1 after a timeout: reconnect on the next call
  coord::Status broken_;  // not ok once the server closed the connection
};

}  // namespace gpt_rank::dist
