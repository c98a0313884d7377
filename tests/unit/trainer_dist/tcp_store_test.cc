// Unit tests for the TCP rendezvous store (trainer/dist/tcp_store.h), over real
// sockets on 127.0.0.1 with the server on port 0: blocking gets, timeouts and their
// messages, concurrent adds, connect retries and deadlines, a server that goes away,
// protocol abuse, and a gloo full mesh + allreduce rendezvoused through the store.
#include "trainer/dist/tcp_store.h"

#include <arpa/inet.h>
#include <gloo/allreduce.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/ports.h"

namespace gpt_rank::dist {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kHost[] = "127.0.0.1";

milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

using coord::testing::UnusedTcpPort;

class TcpStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = TcpStoreServer::Start(kHost, 0);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
  }

  std::unique_ptr<TcpStore> Client() {
    auto store = TcpStore::Connect(kHost, server_->port(), seconds(5));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string Address() const { return std::string(kHost) + ":" + std::to_string(server_->port()); }

  std::unique_ptr<TcpStoreServer> server_;
};

TEST_F(TcpStoreTest, SetThenGetKeepsBinaryValues) {
  auto store = Client();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->address(), Address());
  const std::string binary("a\0b\xff\x01", 5);
  ASSERT_TRUE(store->Set("k", binary).ok());
  ASSERT_TRUE(store->Set("empty", "").ok());
  auto value = store->Get("k", milliseconds::max());  // "forever" must not overflow the deadline
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(*value, binary);
  auto empty = store->Get("empty", seconds(1));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
  // A second client sees the same store; a set overwrites.
  auto other = Client();
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->Set("k", "new").ok());
  EXPECT_EQ(*store->Get("k", seconds(1)), "new");
}

TEST_F(TcpStoreTest, GetBlocksUntilAnotherClientSets) {
  auto waiter = Client();
  auto setter = Client();
  ASSERT_TRUE(waiter && setter);
  const Clock::time_point start = Clock::now();
  std::thread set_later([&] {
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_TRUE(setter->Set("late", "value").ok());
  });
  auto value = waiter->Get("late", seconds(5));
  set_later.join();
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(*value, "value");
  EXPECT_GE(Since(start), milliseconds(90));
}

TEST_F(TcpStoreTest, GetTimeoutNamesKeyAddressAndWaitThenClientRecovers) {
  auto store = Client();
  ASSERT_TRUE(store);
  const milliseconds timeout(300);
  const Clock::time_point start = Clock::now();
  auto value = store->Get("never", timeout);
  const milliseconds waited = Since(start);
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), coord::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(value.status().message(), HasSubstr("\"never\""));
  EXPECT_THAT(value.status().message(), HasSubstr(Address()));
  EXPECT_THAT(value.status().message(), HasSubstr("after 0.3 s"));
  EXPECT_GE(waited, timeout);
  EXPECT_LT(waited, 2 * timeout);

  // The late reply must not be mistaken for the next call's: the client reconnects.
  ASSERT_TRUE(store->Set("never", "now").ok());
  auto later = store->Get("never", seconds(1));
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ(*later, "now");
}

TEST_F(TcpStoreTest, AddFromEightThreadsSumsCorrectly) {
  constexpr int kThreads = 8;
  constexpr int kAddsPerThread = 50;
  std::vector<std::unique_ptr<TcpStore>> clients;
  for (int i = 0; i < kThreads; ++i) clients.push_back(Client());
  auto shared = Client();  // half the threads share one client
  std::vector<std::vector<int64_t>> sums(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      TcpStore* store = t % 2 ? shared.get() : clients[t].get();
      for (int i = 0; i < kAddsPerThread; ++i) {
        auto sum = store->Add("counter", 2);
        ASSERT_TRUE(sum.ok()) << sum.status().ToString();
        sums[t].push_back(*sum);
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every add saw a distinct running total: the adds were atomic.
  std::set<int64_t> seen;
  for (const auto& s : sums) seen.insert(s.begin(), s.end());
  EXPECT_EQ(seen.size(), size_t{kThreads * kAddsPerThread});
  EXPECT_EQ(*seen.rbegin(), 2 * kThreads * kAddsPerThread);
  auto text = clients[0]->Get("counter", seconds(1));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, std::to_string(2 * kThreads * kAddsPerThread));
  auto negative = clients[0]->Add("counter", -1000);
  ASSERT_TRUE(negative.ok());
  EXPECT_EQ(*negative, 2 * kThreads * kAddsPerThread - 1000);
}

TEST_F(TcpStoreTest, AddOnNonIntegerValueFailsAndClientStaysUsable) {
  auto store = Client();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Set("text", "abc").ok());
  auto sum = store->Add("text", 1);
  ASSERT_FALSE(sum.ok());
  EXPECT_EQ(sum.status().code(), coord::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sum.status().message(), HasSubstr("\"text\""));
  EXPECT_THAT(sum.status().message(), HasSubstr("not an integer"));
  auto fresh = store->Add("fresh", 7);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(*fresh, 7);
}

TEST_F(TcpStoreTest, WaitReturnsOnceEveryKeyIsSet) {
  auto waiter = Client();
  auto setter = Client();
  ASSERT_TRUE(waiter && setter);
  ASSERT_TRUE(setter->Set("a", "1").ok());
  std::atomic<bool> c_set{false};
  std::thread set_later([&] {
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(setter->Set("b", "2").ok());
    std::this_thread::sleep_for(milliseconds(50));
    c_set = true;
    EXPECT_TRUE(setter->Set("c", "3").ok());
  });
  coord::Status s = waiter->Wait({"a", "b", "c", "b"}, seconds(5));
  EXPECT_TRUE(c_set);
  set_later.join();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(waiter->Wait({}, milliseconds(0)).ok());

  coord::Status timed_out = waiter->Wait({"a", "missing1", "missing2"}, milliseconds(100));
  EXPECT_EQ(timed_out.code(), coord::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(timed_out.message(), HasSubstr("keys \"a\", \"missing1\", \"missing2\""));
  EXPECT_THAT(timed_out.message(), HasSubstr(Address()));
}

TEST_F(TcpStoreTest, ManyClientsRendezvous) {
  constexpr int kClients = 100;
  std::vector<std::unique_ptr<TcpStore>> clients;
  std::vector<std::string> keys;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Client());
    ASSERT_TRUE(clients.back());
    keys.push_back("rank" + std::to_string(i));
  }
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i]->Set(keys[i], std::to_string(i)).ok());
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->Wait(keys, seconds(1)).ok());
    ASSERT_EQ(*clients[i]->Add("arrived", 1), i + 1);
  }
  EXPECT_EQ(*clients[0]->Get("rank99", seconds(1)), "99");
}

TEST(TcpStoreConnect, RetriesUntilTheServerAppears) {
  const int port = UnusedTcpPort();
  const Clock::time_point start = Clock::now();
  coord::StatusOr<std::unique_ptr<TcpStore>> store = coord::Unavailable("not run");
  std::thread client([&] { store = TcpStore::Connect(kHost, port, seconds(5)); });
  std::this_thread::sleep_for(milliseconds(200));
  auto server = TcpStoreServer::Start(kHost, port);
  client.join();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_GE(Since(start), milliseconds(150));
  EXPECT_LT(Since(start), seconds(2));  // backoff is capped at 500 ms
  ASSERT_TRUE((*store)->Set("x", "y").ok());
  EXPECT_EQ(*(*store)->Get("x", seconds(1)), "y");
}

TEST(TcpStoreConnect, DeadlineWithNothingListeningNamesAddressAndTime) {
  const int port = UnusedTcpPort();
  const Clock::time_point start = Clock::now();
  auto store = TcpStore::Connect(kHost, port, milliseconds(300));
  const milliseconds waited = Since(start);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), coord::StatusCode::kDeadlineExceeded);
  const std::string& m = store.status().message();
  EXPECT_THAT(m, HasSubstr("127.0.0.1:" + std::to_string(port) + " (MASTER_ADDR:MASTER_PORT)"));
  EXPECT_THAT(m, HasSubstr("within 0.3 s"));
  EXPECT_THAT(m, HasSubstr("last error: Connection refused"));
  EXPECT_THAT(m, HasSubstr("is rank 0 running"));
  EXPECT_GE(waited, milliseconds(300));
  EXPECT_LT(waited, milliseconds(900));
}

TEST(TcpStoreConnect, RejectsBadAddresses) {
  EXPECT_EQ(TcpStore::Connect(kHost, 0, milliseconds(10)).status().code(),
            coord::StatusCode::kInvalidArgument);
  EXPECT_EQ(TcpStore::Connect("", 29500, milliseconds(10)).status().code(),
            coord::StatusCode::kInvalidArgument);
  auto unresolvable = TcpStore::Connect("no-such-host.invalid", 29500, milliseconds(50));
  EXPECT_EQ(unresolvable.status().code(), coord::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(unresolvable.status().message(), HasSubstr("cannot resolve no-such-host.invalid"));
}

TEST(TcpStoreServerStart, PortInUseNamesTheAddress) {
  auto first = TcpStoreServer::Start(kHost, 0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = TcpStoreServer::Start(kHost, (*first)->port());
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(),
              HasSubstr("cannot listen on 127.0.0.1:" + std::to_string((*first)->port()) +
                        ": Address already in use"));
  auto bad = TcpStoreServer::Start(kHost, 70000);
  EXPECT_EQ(bad.status().code(), coord::StatusCode::kInvalidArgument);
}

TEST(TcpStoreServerStart, AllInterfaces) {
  auto server = TcpStoreServer::Start("", 0);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto store = TcpStore::Connect(kHost, (*server)->port(), seconds(1));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->Set("k", "v").ok());
}

TEST_F(TcpStoreTest, ServerDestroyedWhileClientWaitsFailsFast) {
  auto waiter = Client();
  auto idle = Client();  // connected, nothing pending: must not delay shutdown
  ASSERT_TRUE(waiter && idle);
  const Clock::time_point start = Clock::now();
  coord::StatusOr<std::string> value = coord::Unavailable("not run");
  std::thread wait([&] { value = waiter->Get("never", seconds(10)); });
  std::this_thread::sleep_for(milliseconds(100));
  const Clock::time_point stop = Clock::now();
  server_.reset();
  EXPECT_LT(Since(stop), milliseconds(500));  // the server thread exits promptly
  wait.join();
  EXPECT_LT(Since(start), seconds(2));
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), coord::StatusCode::kUnavailable);
  EXPECT_THAT(value.status().message(), HasSubstr("rendezvous store " + std::string(kHost)));
  EXPECT_THAT(value.status().message(), HasSubstr("closed the connection"));
  // Later calls fail the same way at once.
  coord::Status again = waiter->Set("k", "v");
  EXPECT_EQ(again.code(), coord::StatusCode::kUnavailable);
  EXPECT_THAT(again.message(), HasSubstr("closed the connection"));
}

// A raw connection that sends garbage is closed; the other clients carry on.
TEST_F(TcpStoreTest, OversizedOrMalformedFramesCloseOnlyThatConnection) {
  auto good = Client();
  ASSERT_TRUE(good);
  const std::vector<std::string> abuses = {
      std::string("\xff\xff\xff\xff", 4),              // 4 GiB frame
      std::string("\x00\x00\x00\x01\x09", 5),          // unknown op
      std::string("\x00\x00\x00\x03\x02\x00\x00", 7),  // GET with a truncated key length
  };
  for (const std::string& abuse : abuses) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::send(fd, abuse.data(), abuse.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(abuse.size()));
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "the server kept a connection that sent garbage";
    ::close(fd);
    EXPECT_TRUE(good->Set("still", "fine").ok());
  }
}

// ---------------------------------------------------------------------------
// gloo over the store

TEST_F(TcpStoreTest, GlooInterfaceThrowsIoExceptionOnTimeout) {
  auto store = Client();
  ASSERT_TRUE(store);
  store->set_default_timeout(milliseconds(100));
  store->set("g", {'\0', 'x'});
  EXPECT_EQ(store->get("g"), (std::vector<char>{'\0', 'x'}));
  store->wait({"g"});
  try {
    store->get("absent");
    FAIL() << "get of a missing key returned";
  } catch (const ::gloo::IoException& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"absent\""));
    EXPECT_THAT(e.what(), HasSubstr(Address()));
  }
  EXPECT_THROW(store->wait({"absent"}, milliseconds(50)), ::gloo::IoException);
}

TEST_F(TcpStoreTest, GlooFullMeshAllreduce) {
  constexpr int kRanks = 3;
  constexpr size_t kCount = 1000;
  std::vector<std::vector<float>> data(kRanks, std::vector<float>(kCount));
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kRanks; ++rank) {
    ranks.emplace_back([&, rank] {
      try {
        auto store = TcpStore::Connect(kHost, server_->port(), seconds(5));
        if (!store.ok()) {
          errors[rank] = store.status().ToString();
          return;
        }
        (*store)->set_default_timeout(seconds(10));
        ::gloo::transport::tcp::attr attr;
        attr.hostname = kHost;
        auto device = ::gloo::transport::tcp::CreateDevice(attr);
        auto context = std::make_shared<::gloo::rendezvous::Context>(rank, kRanks);
        context->setTimeout(seconds(10));
        context->connectFullMesh(**store, device);

        std::vector<float>& mine = data[rank];
        for (size_t i = 0; i < kCount; ++i) mine[i] = static_cast<float>((rank + 1) * i);
        ::gloo::AllreduceOptions opts(context);
        opts.setInput(mine.data(), mine.size());
        opts.setOutput(mine.data(), mine.size());
        opts.setReduceFunction(
            static_cast<void (*)(void*, const void*, const void*, size_t)>(&::gloo::sum<float>));
        opts.setTag(7);
        opts.setTimeout(seconds(10));
        ::gloo::allreduce(opts);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (int rank = 0; rank < kRanks; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    ASSERT_EQ(errors[rank], "");
    for (size_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(data[rank][i], static_cast<float>((1 + 2 + 3) * i)) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace gpt_rank::dist
