// The gloo communicator with 1-4 ranks as forked processes (gloo's real TCP
// transport on 127.0.0.1, rendezvous through the TCP store rank 0 hosts): every
// collective against a serial computation of the same result, uneven and empty
// blocks, float and double, and the two ways a peer fails (stops: timeout; exits:
// connection error), which must end the call promptly instead of hanging.
#include "tests/unit/trainer_dist/gloo_ranks.h"
#include "trainer/dist/gloo_communicator.h"
#include "trainer/dist/tcp_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

namespace gpt_rank::dist {
namespace {

using std::chrono::milliseconds;


// Rank r's input element i: distinct per rank and element, exact in float.
float Input(int r, size_t i) {
  return static_cast<float>((r + 1) * 1000 + static_cast<int>(i % 997));
}

class GlooRanks : public ::testing::TestWithParam<int> {};

TEST_P(GlooRanks, AllReduceSumsFloatsAndDoubles) {
  const int size = GetParam();
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{100003}}) {
    RunRanks(size, milliseconds(10000), [&](int r, GlooCommunicator& comm) {
      std::vector<float> f(n);
      std::vector<double> d(n);
      for (size_t i = 0; i < n; ++i) f[i] = Input(r, i), d[i] = Input(r, i) + 0.25;
      ASSERT_TRUE(comm.AllReduceSum(f.data(), n).ok());
      ASSERT_TRUE(comm.AllReduceSum(d.data(), n).ok());
      for (size_t i = 0; i < n; ++i) {
        double want = 0;
        for (int q = 0; q < size; ++q) want += Input(q, i);
        ASSERT_EQ(f[i], static_cast<float>(want)) << "rank " << r << " element " << i;
        ASSERT_EQ(d[i], want + 0.25 * size);
      }
    });
  }
}

TEST_P(GlooRanks, ReduceScatterLeavesEachRankTheSumOfItsBlock) {
  const int size = GetParam();
  // Uneven blocks, including empty ones, and the even split ZeRO uses.
  std::vector<std::vector<size_t>> layouts = {EvenCounts(1001, size), EvenCounts(3, size)};
  std::vector<size_t> uneven(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) uneven[static_cast<size_t>(r)] = r == 1 ? 0 : 17 * (r + 1) + 5;
  layouts.push_back(uneven);
  for (const auto& counts : layouts) {
    size_t total = 0;
    for (size_t c : counts) total += c;
    RunRanks(size, milliseconds(10000), [&](int r, GlooCommunicator& comm) {
      std::vector<float> data(total);
      for (size_t i = 0; i < total; ++i) data[i] = Input(r, i);
      ASSERT_TRUE(comm.ReduceScatterSum(data.data(), counts, DataType::kFloat32).ok());
      size_t begin = 0;
      for (int q = 0; q < r; ++q) begin += counts[static_cast<size_t>(q)];
      for (size_t i = begin; i < begin + counts[static_cast<size_t>(r)]; ++i) {
        double want = 0;
        for (int q = 0; q < size; ++q) want += Input(q, i);
        ASSERT_EQ(data[i], static_cast<float>(want)) << "rank " << r << " element " << i;
      }
    });
  }
}

TEST_P(GlooRanks, AllGatherFillsEveryBlockFromItsOwner) {
  const int size = GetParam();
  std::vector<size_t> counts = EvenCounts(5003, size);
  counts[0] += 3;  // uneven
  size_t total = 0;
  for (size_t c : counts) total += c;
  RunRanks(size, milliseconds(10000), [&](int r, GlooCommunicator& comm) {
    std::vector<double> data(total, -1.0);
    std::vector<size_t> owner(total);
    size_t at = 0;
    for (int q = 0; q < size; ++q) {
      for (size_t k = 0; k < counts[static_cast<size_t>(q)]; ++k, ++at) {
        owner[at] = static_cast<size_t>(q);
        if (q == r) data[at] = Input(q, at);
      }
    }
    ASSERT_TRUE(comm.AllGather(data.data(), counts, DataType::kFloat64).ok());
    for (size_t i = 0; i < total; ++i) {
      ASSERT_EQ(data[i], Input(static_cast<int>(owner[i]), i)) << "rank " << r << " element " << i;
    }
  });
}

TEST_P(GlooRanks, BroadcastFromEveryRootAndBarrier) {
  const int size = GetParam();
  RunRanks(size, milliseconds(10000), [&](int r, GlooCommunicator& comm) {
    for (int root = 0; root < size; ++root) {
      std::vector<float> data(1000);
      for (size_t i = 0; i < data.size(); ++i) data[i] = Input(r, i);
      ASSERT_TRUE(comm.Broadcast(data.data(), data.size(), DataType::kFloat32, root).ok());
      for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(data[i], Input(root, i));
      ASSERT_TRUE(comm.Barrier().ok());
    }
    EXPECT_EQ(comm.Broadcast(nullptr, 0, DataType::kFloat32, size).code(),
              coord::StatusCode::kInvalidArgument);
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, GlooRanks, ::testing::Values(1, 2, 3, 4));

TEST(GlooCommunicator, PeerThatStopsParticipatingTimesOut) {
  const auto timeout = milliseconds(400);
  RunRanks(2, timeout, [&](int r, GlooCommunicator& comm) {
    ASSERT_TRUE(comm.Barrier().ok());
    if (r == 1) {
      std::this_thread::sleep_for(timeout * 4);  // alive, connected, silent: a hang
      return;
    }
    std::vector<float> data(1024, 1.0f);
    const auto t0 = std::chrono::steady_clock::now();
    coord::Status s = comm.AllReduceSum(data.data(), data.size());
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(s.code(), coord::StatusCode::kDeadlineExceeded) << s.ToString();
    EXPECT_NE(s.message().find("rank 0 of 2"), std::string::npos) << s.message();
    EXPECT_LT(waited, timeout * 3);
    // Unusable afterwards, with the first cause.
    coord::Status again = comm.Barrier();
    EXPECT_EQ(again.code(), coord::StatusCode::kFailedPrecondition);
    EXPECT_NE(again.message().find("all-reduce"), std::string::npos) << again.message();
  });
}

TEST(GlooCommunicator, PeerThatGoesAwayFailsTheCallBeforeTheTimeout) {
  const auto timeout = milliseconds(20000);
  RunRanks(2, timeout, [&](int r, GlooCommunicator& comm) {
    ASSERT_TRUE(comm.Barrier().ok());
    if (r == 1) return;  // the process exits: its sockets close
    std::vector<float> data(1 << 16, 1.0f);
    const auto t0 = std::chrono::steady_clock::now();
    coord::Status s = comm.AllReduceSum(data.data(), data.size());
    EXPECT_EQ(s.code(), coord::StatusCode::kUnavailable) << s.ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000)) << s.ToString();
  });
}

// A pipeline's traffic: each rank receives from the previous stage, adds its rank and
// sends to the next, for several micro-batches in flight; the last stage sends
// "gradients" back down. Messages to one peer arrive in the order they were sent,
// floats and doubles, and a zero-count message still counts as one.
TEST_P(GlooRanks, SendAndRecvCarryAPipelinesTrafficInOrder) {
  const int size = GetParam();
  RunRanks(size, milliseconds(10000), [&](int r, GlooCommunicator& comm) {
    if (size == 1) {  // no peer to talk to: refused, not a hang
      EXPECT_EQ(comm.Recv(nullptr, 0, DataType::kFloat32, 0).code(),
                coord::StatusCode::kInvalidArgument);
      return;
    }
    constexpr int kMicro = 4;
    constexpr size_t kN = 3000;
    for (int m = 0; m < kMicro; ++m) {  // forward: stage r adds r + 1 to every element
      std::vector<float> act(kN);
      if (r == 0) {
        for (size_t i = 0; i < kN; ++i) act[i] = Input(m, i);
      } else {
        ASSERT_TRUE(comm.Recv(act.data(), kN, DataType::kFloat32, r - 1).ok());
      }
      for (float& x : act) x += static_cast<float>(r + 1);
      if (r + 1 < size) {
        ASSERT_TRUE(comm.Send(act.data(), kN, DataType::kFloat32, r + 1).ok());
      } else {
        const float added = static_cast<float>(size * (size + 1) / 2);
        for (size_t i = 0; i < kN; ++i) ASSERT_EQ(act[i], Input(m, i) + added) << m << " " << i;
      }
    }
    for (int m = 0; m < kMicro; ++m) {  // backward: doubles down the pipe, with an empty one
      std::vector<double> grad(7, 0.0);
      if (r + 1 < size) {
        ASSERT_TRUE(comm.Recv(nullptr, 0, DataType::kFloat64, r + 1).ok());
        ASSERT_TRUE(comm.Recv(grad.data(), grad.size(), DataType::kFloat64, r + 1).ok());
        EXPECT_EQ(grad[3], 0.5 * m + (size - 1 - r)) << "micro-batch " << m;
      } else {
        grad[3] = 0.5 * m;
      }
      grad[3] += r > 0 ? 1.0 : 0.0;
      if (r > 0) {
        ASSERT_TRUE(comm.Send(nullptr, 0, DataType::kFloat64, r - 1).ok());
        ASSERT_TRUE(comm.Send(grad.data(), grad.size(), DataType::kFloat64, r - 1).ok());
      }
    }
    EXPECT_EQ(comm.Send(nullptr, 0, DataType::kFloat32, r).code(),
              coord::StatusCode::kInvalidArgument);  // not to itself
    EXPECT_EQ(comm.Recv(nullptr, 0, DataType::kFloat32, size).code(),
              coord::StatusCode::kInvalidArgument);
    ASSERT_TRUE(comm.Barrier().ok());  // collectives still line up after point to point
  });
}

// 1F1B's steady state: neighbouring stages send to each other at the same moment (one
// its activation forward, the other a gradient back). As blocking sends that would
// deadlock (gloo moves data only once the receiver has posted); one batch does not.
TEST(GlooCommunicator, ABatchExchangesBothWaysWithoutDeadlock) {
  RunRanks(2, milliseconds(5000), [&](int r, GlooCommunicator& comm) {
    const int peer = 1 - r;
    for (int round = 0; round < 3; ++round) {
      std::vector<float> out(5000, static_cast<float>(10 * r + round)), in(5000, -1.0f);
      std::vector<double> out2(3, 0.5 * r), in2(3, -1.0);
      ASSERT_TRUE(comm.SendRecv({PeerOp{PeerOp::kSend, out.data(), out.size(),
                                        DataType::kFloat32, peer},
                                 PeerOp{PeerOp::kSend, out2.data(), out2.size(),
                                        DataType::kFloat64, peer},
                                 PeerOp{PeerOp::kRecv, in.data(), in.size(), DataType::kFloat32,
                                        peer},
                                 PeerOp{PeerOp::kRecv, in2.data(), in2.size(),
                                        DataType::kFloat64, peer}})
                      .ok());
      EXPECT_EQ(in[4999], static_cast<float>(10 * peer + round));
      EXPECT_EQ(in2[2], 0.5 * peer);
    }
    // A batch and single calls share the per-peer order.
    float x = static_cast<float>(r), y = -1.0f;
    if (r == 0) {
      ASSERT_TRUE(comm.Send(&x, 1, DataType::kFloat32, 1).ok());
      ASSERT_TRUE(comm.Recv(&y, 1, DataType::kFloat32, 1).ok());
    } else {
      ASSERT_TRUE(comm.SendRecv({PeerOp{PeerOp::kRecv, &y, 1, DataType::kFloat32, 0},
                                 PeerOp{PeerOp::kSend, &x, 1, DataType::kFloat32, 0}})
                      .ok());
    }
    EXPECT_EQ(y, static_cast<float>(peer));
  });
}

// A stage waiting on a peer that is alive but never sends: DeadlineExceeded within the
// timeout, naming the peer and which of its messages was awaited.
TEST(GlooCommunicator, ARecvFromASilentPeerTimesOutNamingIt) {
  const auto timeout = milliseconds(400);
  RunRanks(2, timeout, [&](int r, GlooCommunicator& comm) {
    ASSERT_TRUE(comm.Barrier().ok());
    if (r == 1) {
      std::this_thread::sleep_for(timeout * 4);
      return;
    }
    std::vector<float> act(64);
    const auto t0 = std::chrono::steady_clock::now();
    coord::Status s = comm.Recv(act.data(), act.size(), DataType::kFloat32, 1);
    EXPECT_EQ(s.code(), coord::StatusCode::kDeadlineExceeded) << s.ToString();
    EXPECT_NE(s.message().find("recv of 64 elements from rank 1 (message 0)"), std::string::npos)
        << s.message();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, timeout * 3);
  });
}

TEST(GlooCommunicator, EvenCountsSplitsLikeZero) {
  EXPECT_EQ(EvenCounts(10, 4), (std::vector<size_t>{3, 3, 3, 1}));
  EXPECT_EQ(EvenCounts(2, 4), (std::vector<size_t>{1, 1, 0, 0}));
  EXPECT_EQ(EvenCounts(8, 1), (std::vector<size_t>{8}));
}

}  // namespace
}  // namespace gpt_rank::dist
