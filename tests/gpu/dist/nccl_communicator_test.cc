// NcclCommunicator on one GPU in one process (world size 1): every collective is
// then the identity on its own block, so results are compared exactly with the
// host input, for float32 and float64. What this proves: the rendezvous through
// the store, non-blocking init, each op's NCCL call and in-place layout, the
// stream/timeout plumbing and the unique-id timeout. Multi-rank sums and the
// uneven-count paths need 2+ GPUs (tests/gpu/multi). Skips without a GPU.
#include "trainer/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace gpt_rank::dist {
namespace {

using std::chrono::milliseconds;

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// The rendezvous store, in memory: what tcp_store.h does across processes.
class InMemoryStore : public KeyValueStore {
 public:
  coord::Status Set(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (values_.count(key) != 0) return coord::AlreadyExists("key '" + key + "' is already set");
    values_[key] = value;
    cv_.notify_all();
    return coord::Status::Ok();
  }

  coord::StatusOr<std::string> Get(const std::string& key, milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return values_.count(key) != 0; })) {
      return coord::DeadlineExceeded("store " + address() + ": key '" + key + "' not set after " +
                                     std::to_string(timeout.count()) + " ms");
    }
    return values_[key];
  }

  coord::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = values_.find(key);
    const int64_t sum =
        (it == values_.end() ? 0 : std::strtoll(it->second.c_str(), nullptr, 10)) + delta;
    values_[key] = std::to_string(sum);
    cv_.notify_all();
    return sum;
  }

  coord::Status Wait(const std::vector<std::string>& keys, milliseconds timeout) override {
    for (const std::string& key : keys) {
      coord::StatusOr<std::string> value = Get(key, timeout);  // bound per key is enough here
      if (!value.ok()) return value.status();
    }
    return coord::Status::Ok();
  }

  std::string address() const override { return "in-memory"; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> values_;  // guarded by mu_
};

// cudaMalloc'd buffer of n T, freed on scope exit.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  // A pageable H2D cudaMemcpy may return before its DMA lands, and the
  // communicator's stream is non-blocking (no implicit order with the legacy
  // stream), so the upload is waited for before any op is enqueued.
  bool Upload(const std::vector<T>& host) {
    return cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess &&
           cudaDeviceSynchronize() == cudaSuccess;
  }
  // The synchronous ops (and Synchronize) have waited for the comm stream, so a
  // plain cudaMemcpy reads their result.
  std::vector<T> Download() const {
    std::vector<T> host(n_);
    if (cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess) {
      host.clear();
    }
    return host;
  }

 private:
  size_t n_;
  T* ptr_ = nullptr;
};

template <typename T>
constexpr DataType kType = sizeof(T) == 4 ? DataType::kFloat32 : DataType::kFloat64;

// Distinct, exactly representable values, so a wrong offset or block shows up.
template <typename T>
std::vector<T> Pattern(size_t n, T salt) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(static_cast<int>(i % 1009) - 500) + salt;
  return v;
}

// Exact equality; on failure names the first differing element instead of
// printing megabytes of vector.
template <typename T>
::testing::AssertionResult Same(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "size " << got.size() << " (download failed?), want " << want.size();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      return ::testing::AssertionFailure()
             << "element " << i << " is " << got[i] << ", want " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no CUDA device visible";
    NcclOptions options;
    options.timeout = milliseconds(60000);
    auto comm = NcclCommunicator::Create(&store_, /*rank=*/0, /*size=*/1, options);
    ASSERT_TRUE(comm.ok()) << comm.status().ToString();
    comm_ = std::move(comm).value();
  }

  // Each op on n elements of T, checked against the host input (identity at size 1).
  template <typename T>
  void CheckEveryOp(size_t n) {
    SCOPED_TRACE(std::string(sizeof(T) == 4 ? "float32" : "float64") + " n=" + std::to_string(n));
    const std::vector<T> host = Pattern<T>(n, T(0.25));
    DeviceBuffer<T> buf(n);
    ASSERT_NE(buf.get(), nullptr);

    ASSERT_TRUE(buf.Upload(host));
    ASSERT_TRUE(comm_->AllReduceSum(buf.get(), n, kType<T>).ok());
    EXPECT_TRUE(Same(buf.Download(), host)) << "all-reduce";

    // The typed overload from Communicator must stay visible on NcclCommunicator.
    ASSERT_TRUE(comm_->AllReduceSum(buf.get(), n).ok());
    EXPECT_TRUE(Same(buf.Download(), host)) << "typed all-reduce";

    ASSERT_TRUE(buf.Upload(host));
    ASSERT_TRUE(comm_->ReduceScatterSum(buf.get(), {n}, kType<T>).ok());
    EXPECT_TRUE(Same(buf.Download(), host)) << "reduce-scatter";

    ASSERT_TRUE(buf.Upload(host));
    ASSERT_TRUE(comm_->AllGather(buf.get(), {n}, kType<T>).ok());
    EXPECT_TRUE(Same(buf.Download(), host)) << "all-gather";

    ASSERT_TRUE(buf.Upload(host));
    ASSERT_TRUE(comm_->Broadcast(buf.get(), n, kType<T>, /*root=*/0).ok());
    EXPECT_TRUE(Same(buf.Download(), host)) << "broadcast";

    ASSERT_TRUE(buf.Upload(host));
    ASSERT_TRUE(comm_->AllReduceSumAsync(buf.get(), n, kType<T>).ok());
    ASSERT_TRUE(comm_->Synchronize().ok());
    EXPECT_TRUE(Same(buf.Download(), host)) << "async all-reduce";
  }

  InMemoryStore store_;
  std::unique_ptr<NcclCommunicator> comm_;
};

TEST_F(NcclCommunicatorTest, CreatePublishesTheUniqueIdAndReportsItself) {
  coord::StatusOr<std::string> id = store_.Get("nccl/unique_id", milliseconds(0));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->size(), 256u);  // 128-byte ncclUniqueId as hex
  EXPECT_EQ(comm_->rank(), 0);
  EXPECT_EQ(comm_->size(), 1);
  EXPECT_STREQ(comm_->backend(), "nccl");
  EXPECT_EQ(comm_->device(), 0);
  EXPECT_NE(comm_->stream(), nullptr);
  std::printf("NCCL library %s\n", comm_->nccl_version().c_str());
}

TEST_F(NcclCommunicatorTest, EveryOpIsTheIdentityAtSizeOneFloat32) {
  CheckEveryOp<float>(1);
  CheckEveryOp<float>(4097);  // not a multiple of any vector width
  CheckEveryOp<float>(1 << 20);
}

TEST_F(NcclCommunicatorTest, EveryOpIsTheIdentityAtSizeOneFloat64) {
  CheckEveryOp<double>(1);
  CheckEveryOp<double>(4097);
  CheckEveryOp<double>(1 << 20);
}

TEST_F(NcclCommunicatorTest, ZeroCountsAndBarrier) {
  EXPECT_TRUE(comm_->AllReduceSum(static_cast<void*>(nullptr), 0, DataType::kFloat32).ok());
  EXPECT_TRUE(comm_->ReduceScatterSum(nullptr, {0}, DataType::kFloat64).ok());
  EXPECT_TRUE(comm_->AllGather(nullptr, {0}, DataType::kFloat32).ok());
  EXPECT_TRUE(comm_->Broadcast(nullptr, 0, DataType::kFloat64, 0).ok());
  for (int i = 0; i < 3; ++i) {
    coord::Status s = comm_->Barrier();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_TRUE(comm_->Synchronize().ok());  // nothing pending: returns at once
}

TEST_F(NcclCommunicatorTest, ArgumentErrorsLeaveTheCommunicatorUsable) {
  DeviceBuffer<float> buf(8);
  ASSERT_NE(buf.get(), nullptr);
  coord::Status s = comm_->ReduceScatterSum(buf.get(), {4, 4}, DataType::kFloat32);
  EXPECT_EQ(s.code(), coord::StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("2 counts for 1 ranks"), std::string::npos) << s.ToString();
  s = comm_->AllGather(buf.get(), {}, DataType::kFloat32);
  EXPECT_EQ(s.code(), coord::StatusCode::kInvalidArgument) << s.ToString();
  s = comm_->Broadcast(buf.get(), 8, DataType::kFloat32, /*root=*/1);
  EXPECT_EQ(s.code(), coord::StatusCode::kInvalidArgument) << s.ToString();
  // Point to point needs another rank: to itself or past the group is refused.
  s = comm_->Send(buf.get(), 8, DataType::kFloat32, /*peer=*/0);
  EXPECT_EQ(s.code(), coord::StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("peer 0 is not another rank"), std::string::npos) << s.ToString();
  s = comm_->Recv(buf.get(), 8, DataType::kFloat32, /*peer=*/1);
  EXPECT_EQ(s.code(), coord::StatusCode::kInvalidArgument) << s.ToString();
  s = comm_->AllReduceSum(buf.get(), 8, DataType::kFloat32);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// Not a pass/fail check: at size 1 NCCL moves no bytes between GPUs, so this
// measures the local in-place path and the per-op overhead. The number is
// printed for eyeballing against nccl-tests' all_reduce_perf.
TEST_F(NcclCommunicatorTest, LargeAllReduceReportsBandwidth) {
  const size_t bytes = size_t{256} << 20;
  const size_t n = bytes / sizeof(float);
  DeviceBuffer<float> buf(n);
  ASSERT_NE(buf.get(), nullptr) << "cannot allocate 256 MiB";
  std::vector<float> host = Pattern<float>(n, 0.5f);
  ASSERT_TRUE(buf.Upload(host));
  ASSERT_TRUE(comm_->AllReduceSum(buf.get(), n).ok());  // warm-up
  const int iters = 10;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) {
    coord::Status s = comm_->AllReduceSum(buf.get(), n);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
  // algBw as nccl-tests defines it; busBw = algBw * 2(n-1)/n is 0 at one rank.
  std::printf("nccl all-reduce 256 MiB float32, 1 rank: %.3f ms, algBw %.1f GB/s\n", seconds * 1e3,
              static_cast<double>(bytes) / seconds / 1e9);
  EXPECT_TRUE(Same(buf.Download(), host));
}

TEST_F(NcclCommunicatorTest, UniqueIdThatNeverArrivesTimesOutNamingTheKey) {
  // Rank 1 of 2 under a prefix nobody publishes: rank 0 "never started".
  NcclOptions options;
  options.timeout = milliseconds(500);
  options.key_prefix = "wrong-prefix";
  const auto start = std::chrono::steady_clock::now();
  auto second = NcclCommunicator::Create(&store_, /*rank=*/1, /*size=*/2, options);
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), coord::StatusCode::kDeadlineExceeded)
      << second.status().ToString();
  EXPECT_NE(second.status().message().find("wrong-prefix/unique_id"), std::string::npos)
      << second.status().ToString();
  EXPECT_NE(second.status().message().find("rank 1 of 2"), std::string::npos)
      << second.status().ToString();
  EXPECT_GE(waited, 0.45);
  EXPECT_LT(waited, 5.0);
  // The first communicator is untouched.
  EXPECT_TRUE(comm_->Barrier().ok());
}

}  // namespace
}  // namespace gpt_rank::dist
