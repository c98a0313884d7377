// The TCP rendezvous store: wire format helpers, the server's poll loop, the client.
#include "trainer/dist/tcp_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gloo/common/error.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <utility>

#include "common/clock.h"
#include "common/logging.h"
#include "trainer/dist/tcp_store_wire.h"

namespace gpt_rank::dist {
namespace {

using coord::Status;
using coord::StatusOr;
using Clock = std::chrono::steady_clock;

using wire::BodyReader;
using wire::GetU32;
using wire::kAdd;
using wire::kGet;
using wire::kMaxFrameBytes;
using wire::kSet;
using wire::kWait;
using wire::Op;
constexpr size_t kReadChunk = 64 << 10;
enum ReplyStatus : uint8_t { kReplyOk = 0, kReplyError = 1 };

// ---------------------------------------------------------------------------
// Wire format

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

void PutI64(std::string* out, int64_t v) {
  PutU32(out, static_cast<uint32_t>(static_cast<uint64_t>(v) >> 32));
  PutU32(out, static_cast<uint32_t>(static_cast<uint64_t>(v)));
}

void PutString(std::string* out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

std::string Framed(const std::string& body) {
  std::string frame;
  frame.reserve(4 + body.size());
  PutU32(&frame, static_cast<uint32_t>(body.size()));
  frame += body;
  return frame;
}

// ---------------------------------------------------------------------------
// Small helpers

std::string HostPort(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// now + timeout, capped so that "forever" (milliseconds::max()) cannot overflow the clock.
Clock::time_point DeadlineAfter(std::chrono::milliseconds timeout) {
  constexpr std::chrono::hours kLongest(24 * 365);
  return Clock::now() + std::min<std::chrono::milliseconds>(timeout, kLongest);
}

std::string Quoted(const std::string& key) { return "\"" + key + "\""; }

std::string DescribeKeys(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 4;  // a WAIT may name a thousand ranks' keys
  std::string s = keys.size() == 1 ? "key " : "keys ";
  for (size_t i = 0; i < keys.size() && i < kShown; ++i) s += (i ? ", " : "") + Quoted(keys[i]);
  if (keys.size() > kShown) s += ", ... (" + std::to_string(keys.size()) + " keys)";
  return s;
}

void CloseFd(int fd) {
  if (fd >= 0) ::close(fd);  // not retried on EINTR: Linux frees the fd anyway
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  return HostPort(host, std::atoi(serv));
}

// ---------------------------------------------------------------------------
// Client-side blocking I/O on a non-blocking socket, every wait bounded by a deadline.

enum class Io { kOk, kTimeout, kClosed, kError };
struct IoResult {
  Io io = Io::kOk;
  int err = 0;  // errno for kError
};

// Waits until fd is ready for `events` or the deadline passes.
IoResult WaitReady(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) left = 0;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {Io::kError, errno};
    if (n > 0) return {};  // ready, or an error/hangup the next send/recv reports
    if (Clock::now() >= deadline) return {Io::kTimeout, 0};
  }
}

IoResult SendAll(int fd, const std::string& data, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) return {Io::kClosed, errno};
    if (errno != EAGAIN && errno != EWOULDBLOCK) return {Io::kError, errno};
    IoResult r = WaitReady(fd, POLLOUT, deadline);
    if (r.io != Io::kOk) return r;
  }
  return {};
}

IoResult RecvAll(int fd, char* data, size_t size, Clock::time_point deadline) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::recv(fd, data + got, size - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return {Io::kClosed, 0};
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return {Io::kClosed, errno};
    if (errno != EAGAIN && errno != EWOULDBLOCK) return {Io::kError, errno};
    IoResult r = WaitReady(fd, POLLIN, deadline);
    if (r.io != Io::kOk) return r;
  }
  return {};
}

// One connection attempt to every address of host:port; the error says why the
// last one failed ("Connection refused", "cannot resolve x: Name or service not known").
StatusOr<int> ConnectOnce(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) {
    const char* why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    return coord::Unavailable("cannot resolve " + host + ": " + why);
  }
  std::string last_error = "no address";
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        IoResult r = WaitReady(fd, POLLOUT, deadline);
        socklen_t len = sizeof err;
        if (r.io == Io::kTimeout) {
          err = ETIMEDOUT;
        } else if (r.io == Io::kError) {
          err = r.err;
        } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
          err = errno;
        }
      }
    }
    if (err == 0) {
      ::freeaddrinfo(list);
      SetNoDelay(fd);
      return fd;
    }
    last_error = std::strerror(err);
    CloseFd(fd);
  }
  ::freeaddrinfo(list);
  return coord::Unavailable(last_error);
}

}  // namespace

// ---------------------------------------------------------------------------
// Server

class TcpStoreServer::Loop {
 public:
  Loop(int listen_fd, int wake_fd) : listen_fd_(listen_fd), wake_fd_(wake_fd) {}
  ~Loop() {
    for (auto& [id, conn] : conns_) CloseFd(conn.fd);
    CloseFd(listen_fd_);
    CloseFd(wake_fd_);
  }

  // Serves until Stop(). Runs on the server's thread; everything below is its own.
  void Run();
  // Any thread.
  void Stop() {
    uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

 private:
  struct Connection {
    int fd = -1;
    std::string peer;  // for log lines
    std::string in;    // received bytes; requests start at in_pos
    size_t in_pos = 0;
    std::string out;  // replies not yet sent, from out_pos
    size_t out_pos = 0;
    bool parked = false;  // a GET/WAIT is waiting for keys; later requests wait behind it
    bool dead = false;    // closed at the end of this loop iteration
  };
  // The parked request of one connection (at most one: see Connection::parked).
  struct Waiter {
    Op op;
    std::string key;                // GET: the key whose value is the reply
    std::vector<std::string> keys;  // keys missing when parked (for cleanup)
    size_t missing = 0;
  };

  void AcceptAll();
  void ReadFrom(uint64_t id, Connection& c);
  void HandleRequests(uint64_t id, Connection& c);
  void Handle(uint64_t id, Connection& c, wire::StoreRequest request);
  void Park(uint64_t id, Connection& c, Op op, std::string key, std::vector<std::string> missing);
  void KeySet(const std::string& key);
  void Reply(Connection& c, ReplyStatus status, const std::string& payload);
  void Flush(Connection& c);
  void Drop(Connection& c, const std::string& why);
  void Close(uint64_t id);

  const int listen_fd_;
  const int wake_fd_;
  // Accepting stops while out of file descriptors (else the listening socket stays
  // readable and the loop spins) and resumes when a connection closes.
  bool accept_paused_ = false;
  uint64_t next_id_ = 1;  // connection ids are never reused, unlike fds
  std::unordered_map<uint64_t, Connection> conns_;
  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<uint64_t, Waiter> waiters_;                       // by connection id
  std::unordered_map<std::string, std::vector<uint64_t>> waiting_on_;  // key -> connection ids
  std::vector<uint64_t> unparked_;  // connections to resume once this event is handled
};

void TcpStoreServer::Loop::Run() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;  // ids[i] is the connection of fds[i + 2]
  for (;;) {
    fds.clear();
    ids.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({accept_paused_ ? -1 : listen_fd_, POLLIN, 0});
    for (auto& [id, c] : conns_) {
      short events = POLLIN;
      if (c.out_pos < c.out.size()) events |= POLLOUT;
      fds.push_back({c.fd, events, 0});
      ids.push_back(id);
    }
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      LOG_ERROR << "rendezvous store: poll failed, closing every connection: "
                << std::strerror(errno);
      return;
    }
    if (fds[0].revents != 0) return;  // Stop()
    if (fds[1].revents != 0) AcceptAll();
    for (size_t i = 0; i < ids.size(); ++i) {
      short revents = fds[i + 2].revents;
      if (revents == 0) continue;
      Connection& c = conns_.at(ids[i]);
      if (c.dead) continue;  // dropped while answering another connection
      if (revents & POLLOUT) Flush(c);
      if (revents & (POLLIN | POLLHUP | POLLERR)) ReadFrom(ids[i], c);
    }
    // Requests queued behind a parked one; resuming them may set keys and unpark more.
    while (!unparked_.empty()) {
      uint64_t id = unparked_.back();
      unparked_.pop_back();
      auto it = conns_.find(id);
      if (it != conns_.end() && !it->second.dead) HandleRequests(id, it->second);
    }
    ids.clear();
    for (auto& [id, c] : conns_) {
      if (c.dead) ids.push_back(id);
    }
    for (uint64_t id : ids) Close(id);
  }
}

void TcpStoreServer::Loop::AcceptAll() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        LOG_WARN << "rendezvous store: cannot accept more connections (" << std::strerror(errno)
                 << ") with " << conns_.size() << " open; waiting for one to close";
        accept_paused_ = true;
      }
      return;  // EAGAIN: accepted everything pending
    }
    SetNoDelay(fd);
    Connection& c = conns_[next_id_++];
    c.fd = fd;
    c.peer = PeerName(fd);
  }
}

void TcpStoreServer::Loop::ReadFrom(uint64_t id, Connection& c) {
  char buf[kReadChunk];
  bool peer_closed = false;
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      // Only a parked connection buffers more than one frame; a client that keeps
      // sending behind a parked request gets no more than one frame's worth.
      if (c.in.size() - c.in_pos > size_t{kMaxFrameBytes} + 2 * kReadChunk) {
        Drop(c, "sent too much while its request waits");
        return;
      }
      continue;
    }
    if (n == 0) {
      peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    peer_closed = true;  // ECONNRESET and the like: nothing left to answer
    break;
  }
  // A client may send a SET and close at once: apply what arrived before closing.
  HandleRequests(id, c);
  if (peer_closed) c.dead = true;
}

void TcpStoreServer::Loop::HandleRequests(uint64_t id, Connection& c) {
  while (!c.parked && !c.dead) {
    uint32_t length = 0;
    const wire::FrameState frame =
        wire::NextFrame(c.in.data() + c.in_pos, c.in.size() - c.in_pos, &length);
    if (frame == wire::FrameState::kTooLarge) {
      Drop(c, "frame of " + std::to_string(GetU32(c.in.data() + c.in_pos)) +
                  " bytes exceeds the 64 MiB limit");
      return;
    }
    if (frame == wire::FrameState::kNeedMore) break;
    const char* body = c.in.data() + c.in_pos + 4;
    c.in_pos += 4 + size_t{length};
    std::optional<wire::StoreRequest> request = wire::DecodeRequest(body, length);
    if (!request) {
      Drop(c, "malformed request (op " +
                  std::to_string(length > 0 ? static_cast<uint8_t>(body[0]) : 0) + ")");
      break;
    }
    Handle(id, c, std::move(*request));
  }
  if (c.in_pos == c.in.size()) {
    c.in.clear();
    c.in_pos = 0;
  } else if (c.in_pos > kReadChunk) {
    c.in.erase(0, c.in_pos);
    c.in_pos = 0;
  }
}

void TcpStoreServer::Loop::Handle(uint64_t id, Connection& c, wire::StoreRequest request) {
  std::string& key = request.key;
  switch (request.op) {
    case kSet: {
      data_[key] = std::move(request.value);
      Reply(c, kReplyOk, "");
      KeySet(key);
      return;
    }
    case kGet: {
      auto it = data_.find(key);
      if (it != data_.end()) {
        Reply(c, kReplyOk, it->second);
      } else {
        Park(id, c, kGet, key, {key});
      }
      return;
    }
    case kAdd: {
      const int64_t delta = request.delta;
      int64_t sum = delta;
      auto it = data_.find(key);
      if (it != data_.end()) {
        errno = 0;
        char* end = nullptr;
        long long current = std::strtoll(it->second.c_str(), &end, 10);
        if (it->second.empty() || errno != 0 || end != it->second.c_str() + it->second.size()) {
          Reply(c, kReplyError, "ADD on key " + Quoted(key) + ": its value is not an integer");
          return;
        }
        if (__builtin_add_overflow(static_cast<int64_t>(current), delta, &sum)) {
          Reply(c, kReplyError,
                "ADD on key " + Quoted(key) + ": " + it->second + " + " + std::to_string(delta) +
                    " overflows int64");
          return;
        }
      }
      // Decimal text, as torch's TCPStore keeps counters, so Get reads them too.
      data_[key] = std::to_string(sum);
      std::string payload;
      PutI64(&payload, sum);
      Reply(c, kReplyOk, payload);
      KeySet(key);
      return;
    }
    case kWait: {
      std::vector<std::string> missing;
      for (std::string& k : request.keys) {
        if (data_.find(k) == data_.end()) missing.push_back(std::move(k));
      }
      if (missing.empty()) {
        Reply(c, kReplyOk, "");
      } else {
        Park(id, c, kWait, "", std::move(missing));
      }
      return;
    }
  }
}

void TcpStoreServer::Loop::Park(uint64_t id, Connection& c, Op op, std::string key,
                                std::vector<std::string> missing) {
  // A key listed twice is counted and registered twice, so the counts still match.
  for (const std::string& k : missing) waiting_on_[k].push_back(id);
  Waiter& w = waiters_[id];
  w.op = op;
  w.key = std::move(key);
  w.missing = missing.size();
  w.keys = std::move(missing);
  c.parked = true;
}

void TcpStoreServer::Loop::KeySet(const std::string& key) {
  auto it = waiting_on_.find(key);
  if (it == waiting_on_.end()) return;
  std::vector<uint64_t> ids = std::move(it->second);
  waiting_on_.erase(it);  // keys are never unset, so nobody waits on this key again
  for (uint64_t id : ids) {
    auto w = waiters_.find(id);
    if (w == waiters_.end() || --w->second.missing > 0) continue;
    Connection& c = conns_.at(id);
    Reply(c, kReplyOk, w->second.op == kGet ? data_[w->second.key] : std::string());
    waiters_.erase(w);
    c.parked = false;
    unparked_.push_back(id);
  }
}

void TcpStoreServer::Loop::Reply(Connection& c, ReplyStatus status, const std::string& payload) {
  if (c.dead) return;
  PutU32(&c.out, static_cast<uint32_t>(1 + payload.size()));
  c.out.push_back(static_cast<char>(status));
  c.out += payload;
  Flush(c);
}

void TcpStoreServer::Loop::Flush(Connection& c) {
  while (c.out_pos < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      c.out_pos += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // poll for POLLOUT
    c.dead = true;  // the peer is gone; the read side sees it too
    return;
  }
  c.out.clear();
  c.out_pos = 0;
}

void TcpStoreServer::Loop::Drop(Connection& c, const std::string& why) {
  LOG_WARN << "rendezvous store: closing the connection from " << c.peer << ": " << why;
  c.dead = true;
}

void TcpStoreServer::Loop::Close(uint64_t id) {
  auto w = waiters_.find(id);
  if (w != waiters_.end()) {
    for (const std::string& key : w->second.keys) {
      auto it = waiting_on_.find(key);
      if (it == waiting_on_.end()) continue;  // already set
      std::vector<uint64_t>& ids = it->second;
      ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
      if (ids.empty()) waiting_on_.erase(it);
    }
    waiters_.erase(w);
  }
  auto c = conns_.find(id);
  CloseFd(c->second.fd);
  conns_.erase(c);
  accept_paused_ = false;
}

StatusOr<std::unique_ptr<TcpStoreServer>> TcpStoreServer::Start(const std::string& host, int port) {
  const bool any = host.empty() || host == "0.0.0.0";
  const std::string shown = HostPort(any ? "0.0.0.0" : host, port);
  if (port < 0 || port > 65535) {
    return coord::InvalidArgument("cannot listen on " + shown + ": expected a port in [0, 65535]");
  }
  addrinfo hints{};
  hints.ai_family = any ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(any ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) {
    const char* why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    return coord::Unavailable("cannot listen on " + shown + ": cannot resolve " + host + ": " +
                              why);
  }
  int listen_fd = -1;
  int err = 0;
  for (addrinfo* ai = list; ai != nullptr && listen_fd < 0; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    // Lets a restarted rank 0 rebind while the old connections sit in TIME_WAIT.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      err = errno;
      CloseFd(fd);
      continue;
    }
    listen_fd = fd;
  }
  ::freeaddrinfo(list);
  if (listen_fd < 0) return coord::ErrnoStatus("cannot listen on " + shown, err);

  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    err = errno;
    CloseFd(listen_fd);
    return coord::ErrnoStatus("cannot listen on " + shown + ": getsockname", err);
  }
  int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    err = errno;
    CloseFd(listen_fd);
    return coord::ErrnoStatus("cannot listen on " + shown + ": eventfd", err);
  }
  std::unique_ptr<TcpStoreServer> server(
      new TcpStoreServer(std::make_unique<Loop>(listen_fd, wake_fd), bound_port));
  server->thread_ = std::thread([loop = server->loop_.get()] { loop->Run(); });
  return server;
}

TcpStoreServer::TcpStoreServer(std::unique_ptr<Loop> loop, int port)
    : loop_(std::move(loop)), port_(port) {}

TcpStoreServer::~TcpStoreServer() {
  loop_->Stop();
  if (thread_.joinable()) thread_.join();
  loop_.reset();  // closes every socket, so waiting clients see the store go
}

// ---------------------------------------------------------------------------
// Client

StatusOr<std::unique_ptr<TcpStore>> TcpStore::Connect(const std::string& host, int port,
                                                      std::chrono::milliseconds deadline) {
  const std::string address = HostPort(host, port);
  if (host.empty() || port < 1 || port > 65535) {
    return coord::InvalidArgument("rendezvous store address " + Quoted(address) +
                                  ": expected a host and a port in [1, 65535]");
  }
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = DeadlineAfter(deadline);
  std::chrono::milliseconds backoff(10);
  std::string last_error;
  for (;;) {
    StatusOr<int> fd = ConnectOnce(host, port, end);
    if (fd.ok()) return std::unique_ptr<TcpStore>(new TcpStore(host, port, *fd));
    last_error = fd.status().message();
    Clock::time_point now = Clock::now();
    if (now >= end) break;
    // Rank 0 may not listen yet: back off so a thousand ranks do not hammer it.
    std::this_thread::sleep_for(std::min<Clock::duration>(backoff, end - now));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  return coord::DeadlineExceeded(
      "could not reach the rendezvous store at " + address + " (MASTER_ADDR:MASTER_PORT) within " +
      coord::FormatSeconds(Clock::now() - start) + " (last error: " + last_error +
      "); is rank 0 running and is the port open?");
}

TcpStore::TcpStore(std::string host, int port, int fd)
    : host_(std::move(host)), port_(port), address_(HostPort(host_, port)), fd_(fd) {}

TcpStore::~TcpStore() { CloseFd(fd_); }

StatusOr<std::string> TcpStore::Call(const std::string& request, std::chrono::milliseconds timeout,
                                     const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = DeadlineAfter(timeout);
  if (fd_ < 0) {
    StatusOr<int> fd = ConnectOnce(host_, port_, deadline);
    if (!fd.ok()) {
      return coord::Unavailable("cannot reconnect to the rendezvous store at " + address_ +
                                " after an earlier timeout: " + fd.status().message());
    }
    fd_ = *fd;
  }

  IoResult r = SendAll(fd_, Framed(request), deadline);
  char header[4];
  if (r.io == Io::kOk) r = RecvAll(fd_, header, sizeof header, deadline);
  std::string reply;
  if (r.io == Io::kOk) {
    uint32_t length = GetU32(header);
    if (length < 1 || length > kMaxFrameBytes) {
      r = {Io::kError, EPROTO};
    } else {
      reply.resize(length);
      r = RecvAll(fd_, reply.data(), length, deadline);
    }
  }
  switch (r.io) {
    case Io::kOk:
      break;
    case Io::kTimeout:
      // The reply may still come: a fresh connection keeps the next call in step.
      CloseFd(fd_);
      fd_ = -1;
      return coord::DeadlineExceeded("timed out after " +
                                     coord::FormatSeconds(Clock::now() - start) + " waiting for " +
                                     what + " in the rendezvous store at " + address_);
    case Io::kClosed:
      CloseFd(fd_);
      fd_ = -1;
      broken_ = coord::Unavailable("rendezvous store " + address_ +
                                   " closed the connection (while waiting for " + what +
                                   "); did rank 0 exit?");
      return broken_;
    case Io::kError:
      CloseFd(fd_);
      fd_ = -1;
      broken_ = coord::Unavailable("lost the connection to the rendezvous store at " + address_ +
                                   " (while waiting for " + what + "): " + std::strerror(r.err));
      return broken_;
  }
  if (static_cast<uint8_t>(reply[0]) != kReplyOk) {
    return coord::FailedPrecondition("rendezvous store " + address_ + ": " + reply.substr(1));
  }
  return reply.substr(1);
}

Status TcpStore::Set(const std::string& key, const std::string& value) {
  std::string request(1, static_cast<char>(kSet));
  PutString(&request, key);
  PutString(&request, value);
  return Call(request, default_timeout(), "the reply to setting key " + Quoted(key)).status();
}

StatusOr<std::string> TcpStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  std::string request(1, static_cast<char>(kGet));
  PutString(&request, key);
  return Call(request, timeout, "key " + Quoted(key));
}

StatusOr<int64_t> TcpStore::Add(const std::string& key, int64_t delta) {
  std::string request(1, static_cast<char>(kAdd));
  PutString(&request, key);
  PutI64(&request, delta);
  ASSIGN_OR_RETURN(std::string payload,
                   Call(request, default_timeout(), "the reply to adding to key " + Quoted(key)));
  BodyReader reader(payload.data(), payload.size());
  int64_t sum = reader.I64();
  if (!reader.done())
    return coord::Internal("rendezvous store " + address_ + ": malformed reply to ADD");
  return sum;
}

Status TcpStore::Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  if (keys.empty()) return Status::Ok();
  std::string request(1, static_cast<char>(kWait));
  PutU32(&request, static_cast<uint32_t>(keys.size()));
  for (const std::string& key : keys) PutString(&request, key);
  return Call(request, timeout, DescribeKeys(keys)).status();
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) {
  Status s = Set(key, std::string(data.begin(), data.end()));
  if (!s.ok()) throw ::gloo::IoException(s.ToString());
}

std::vector<char> TcpStore::get(const std::string& key) {
  StatusOr<std::string> value = Get(key, default_timeout());
  if (!value.ok()) throw ::gloo::IoException(value.status().ToString());
  return std::vector<char>(value->begin(), value->end());
}

void TcpStore::wait(const std::vector<std::string>& keys) { wait(keys, default_timeout()); }

void TcpStore::wait(const std::vector<std::string>& keys,
                    const std::chrono::milliseconds& timeout) {
  Status s = Wait(keys, timeout.count() > 0 ? timeout : default_timeout());
  if (!s.ok()) throw ::gloo::IoException(s.ToString());
}

}  // namespace gpt_rank::dist
