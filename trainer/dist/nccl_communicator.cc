// NcclCommunicator: the non-blocking NCCL plumbing behind the Communicator
// interface (see nccl_communicator.h for the stream and ordering contract).
//
// Why non-blocking: a blocking NCCL communicator waits inside ncclCommInitRank or
// a collective's stream forever when a peer dies, and only ncclCommAbort from
// another thread gets it out. With ncclConfig_t::blocking = 0 every call returns
// at once (maybe ncclInProgress), and this thread polls ncclCommGetAsyncError and
// cudaStreamQuery against a deadline, then aborts itself.
#include "trainer/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "common/logging.h"

namespace gpt_rank::dist {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t NcclType(DataType type) {
  return type == DataType::kFloat32 ? ncclFloat32 : ncclFloat64;
}

// "0.5", "300": seconds for messages.
std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

// ncclGetVersion's code as "2.28.9" (codes before 2.9 were X*1000 + Y*100 + Z).
std::string VersionString(int code) {
  const bool old = code < 10000;
  const int major = old ? code / 1000 : code / 10000;
  const int minor = old ? (code % 1000) / 100 : (code % 10000) / 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

// A failed NCCL call as a Status: "<context>: <call>: <NCCL's text>; last NCCL
// error: <detail>". ncclGetLastError is per process (its comm argument is
// unused), so the detail may belong to an earlier async failure; it is still the
// most useful line NCCL gives without NCCL_DEBUG=WARN.
coord::Status NcclStatus(ncclResult_t r, const std::string& context, const char* call) {
  coord::StatusCode code = coord::StatusCode::kInternal;
  switch (r) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      code = coord::StatusCode::kInvalidArgument;
      break;
    case ncclSystemError:  // sockets, IB: usually a peer or link went away
    case ncclRemoteError:
      code = coord::StatusCode::kUnavailable;
      break;
    default:  // unhandled CUDA error, internal error
      break;
  }
  std::string message = context + ": " + call + ": " + ncclGetErrorString(r);
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') message += std::string("; last NCCL error: ") + last;
  return coord::Status(code, std::move(message));
}

// A failed CUDA runtime call: "<context>: <call>: cudaErrorX: description".
coord::Status CudaStatus(cudaError_t e, const std::string& context, const char* call) {
  coord::StatusCode code = coord::StatusCode::kInternal;
  switch (e) {
    case cudaErrorInvalidDevice:
      code = coord::StatusCode::kInvalidArgument;
      break;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
      code = coord::StatusCode::kFailedPrecondition;
      break;
    case cudaErrorMemoryAllocation:
      code = coord::StatusCode::kResourceExhausted;
      break;
    default:
      break;
  }
  return coord::Status(
      code, context + ": " + call + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

// The unique id is 128 raw bytes; the store carries it as hex so that no store
// implementation has to be binary-safe.
std::string HexEncode(const void* data, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

bool HexDecode(const std::string& text, void* data, size_t n) {
  if (text.size() != 2 * n) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  auto* bytes = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

// Polling interval: 50 us first, so a small op costs little latency over a
// blocking wait, doubling to 1 ms so a long wait costs little CPU.
class Backoff {
 public:
  void Sleep() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, std::chrono::microseconds(1000));
  }

 private:
  std::chrono::microseconds delay_{50};
};

bool AllEqual(const std::vector<size_t>& counts) {
  return std::all_of(counts.begin(), counts.end(), [&](size_t c) { return c == counts[0]; });
}

size_t Sum(const std::vector<size_t>& counts) {
  size_t total = 0;
  for (size_t c : counts) total += c;
  return total;
}

}  // namespace

// --- creation and teardown ---

NcclCommunicator::NcclCommunicator(int rank, int size, const NcclOptions& options)
    : rank_(rank),
      size_(size),
      device_(options.device),
      timeout_(options.timeout),
      key_prefix_(options.key_prefix) {}

coord::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    KeyValueStore* store, int rank, int size, const NcclOptions& options) {
  if (size < 1 || rank < 0 || rank >= size) {
    return coord::InvalidArgument("nccl: rank " + std::to_string(rank) +
                                  " is out of range for world size " + std::to_string(size));
  }
  if (store == nullptr) {
    return coord::InvalidArgument("nccl: rank " + std::to_string(rank) +
                                  " needs a rendezvous store for the unique id");
  }
  if (options.timeout.count() <= 0) {
    return coord::InvalidArgument("nccl: timeout must be positive, got " +
                                  std::to_string(options.timeout.count()) + " ms");
  }
  // Built first so that the destructor frees whatever Init got to (stream,
  // scratch, half-initialized comm) when it fails part way.
  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator(rank, size, options));
  RETURN_IF_ERROR(comm->Init(store));
  return comm;
}

coord::Status NcclCommunicator::Init(KeyValueStore* store) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) host_ = host;
  int code = 0;
  if (ncclGetVersion(&code) == ncclSuccess) version_ = VersionString(code);
  const std::string context = "nccl init on " + Where();

  // The device first: a bad LOCAL_RANK -> device mapping should fail before rank 0
  // publishes an id that the other ranks would then wait on in vain.
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess) return CudaStatus(e, context, "cudaGetDeviceCount");
  if (device_ < 0 || device_ >= devices) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    return coord::InvalidArgument(
        context + ": device " + std::to_string(device_) + " does not exist; " +
        std::to_string(devices) +
        " visible (CUDA_VISIBLE_DEVICES=" + (visible != nullptr ? visible : "unset") + ")");
  }
  e = cudaSetDevice(device_);
  if (e != cudaSuccess) return CudaStatus(e, context, "cudaSetDevice");

  const std::string key = key_prefix_ + "/unique_id";
  ncclUniqueId id;
  if (rank_ == 0) {
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return NcclStatus(r, context, "ncclGetUniqueId");
    coord::Status s = store->Set(key, HexEncode(&id, sizeof(id)));
    if (!s.ok()) {
      return s.WithContext(context + ": publishing the unique id under key '" + key +
                           "' in store " + store->address());
    }
  } else {
    coord::StatusOr<std::string> value = store->Get(key, timeout_);
    if (!value.ok()) {
      return value.status().WithContext(context + ": waiting " + Seconds(timeout_) +
                                        " s for rank 0's unique id under key '" + key +
                                        "' in store " + store->address());
    }
    if (!HexDecode(*value, &id, sizeof(id))) {
      return coord::InvalidArgument(
          context + ": key '" + key + "' holds " + std::to_string(value->size()) +
          " characters, not a hex NCCL unique id of " + std::to_string(2 * sizeof(id)));
    }
  }

  // Non-blocking: the comm stream must not serialize with the legacy default
  // stream, or every unrelated cudaMemcpy would wait for the gradient buckets.
  e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  if (e != cudaSuccess) return CudaStatus(e, context, "cudaStreamCreateWithFlags");
  e = cudaMalloc(reinterpret_cast<void**>(&scratch_), sizeof(float));
  if (e != cudaSuccess) return CudaStatus(e, context, "cudaMalloc");
  e = cudaMemsetAsync(scratch_, 0, sizeof(float), stream_);
  if (e != cudaSuccess) return CudaStatus(e, context, "cudaMemsetAsync");

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const Op op{"init", 0, DataType::kFloat32};
  const Clock::time_point deadline = Deadline();
  ncclResult_t r = ncclCommInitRankConfig(&comm, size_, id, rank_, &config);
  comm_ = comm;  // set even on failure, so that Fail can abort it
  // Init returns ncclInProgress until every rank has connected; Check polls
  // that against the deadline and aborts the half-built comm on timeout.
  return Check(r, "ncclCommInitRankConfig", op, deadline);
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr || stream_ != nullptr || scratch_ != nullptr) cudaSetDevice(device_);
  if (comm_ != nullptr) {
    // Finalize flushes what is still enqueued (e.g. async buckets nobody
    // synchronized); bounded like every op, then aborted if it does not finish.
    bool clean = false;
    ncclResult_t r = ncclCommFinalize(comm_);
    if (r == ncclSuccess || r == ncclInProgress) {
      const Clock::time_point deadline = Deadline();
      Backoff backoff;
      for (;;) {
        ncclResult_t state = ncclSuccess;
        if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
        if (state == ncclSuccess) {
          clean = true;
          break;
        }
        if (state != ncclInProgress || Clock::now() >= deadline) break;
        backoff.Sleep();
      }
    }
    if (clean) {
      ncclCommDestroy(comm_);
    } else {
      LOG_WARN << "nccl shutdown on " << Where() << " did not finish within " << Seconds(timeout_)
               << " s (" << ncclGetLastError(nullptr) << "); aborting the communicator";
      ncclCommAbort(comm_);
    }
    comm_ = nullptr;
  }
  if (scratch_ != nullptr) cudaFree(scratch_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

// --- error handling and waiting ---

std::string NcclCommunicator::Where() const {
  return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) + " (host " +
         (host_.empty() ? std::string("?") : host_) + ", device " + std::to_string(device_) +
         ", NCCL " + version_ + ")";
}

std::string NcclCommunicator::Describe(const Op& op) const {
  if (std::strcmp(op.name, "synchronize") == 0) {
    return "synchronize of " + std::to_string(pending_ops_) + " async all-reduce(s) (" +
           std::to_string(pending_elements_) + " elements)";
  }
  if (op.count == 0) return op.name;
  return std::string(op.name) + " of " + std::to_string(op.count) +
         (op.type == DataType::kFloat32 ? " floats" : " doubles");
}

Clock::time_point NcclCommunicator::Deadline() const { return Clock::now() + timeout_; }

coord::Status NcclCommunicator::Fail(coord::Status status) {
  if (comm_ != nullptr) {
    // Abort, not destroy: destroy would wait for the very ops that failed or hang.
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }
  if (broken_.ok()) broken_ = status;
  return status;
}

std::string NcclCommunicator::Context(const Op& op) const {
  return "nccl " + Describe(op) + " on " + Where();
}

coord::Status NcclCommunicator::TimedOut(const Op& op) const {
  return coord::DeadlineExceeded(Context(op) + " timed out after " + Seconds(timeout_) +
                                 " s; a peer died or hangs");
}

coord::Status NcclCommunicator::AsyncError(const Op& op, int state) const {
  // Whatever NCCL's code, an error raised asynchronously means the group broke
  // (a peer died, a link failed); the rank should exit and the job restart.
  return coord::Unavailable(
      NcclStatus(static_cast<ncclResult_t>(state), Context(op), "asynchronous NCCL error")
          .message());
}

coord::Status NcclCommunicator::Begin(const Op& op) {
  if (!broken_.ok()) {
    return coord::Status(
        broken_.code(),
        Context(op) + ": communicator unusable after an earlier error: " + broken_.message());
  }
  // The reducer thread and the training thread take turns; the current device is
  // per thread, and NCCL and the stream belong to device_.
  cudaError_t e = cudaSetDevice(device_);
  if (e != cudaSuccess) {
    return Fail(CudaStatus(e, Context(op), "cudaSetDevice"));
  }
  return coord::Status::Ok();
}

coord::Status NcclCommunicator::Check(int result, const char* call, const Op& op,
                                      Clock::time_point deadline) {
  const auto r = static_cast<ncclResult_t>(result);
  if (r == ncclSuccess) return coord::Status::Ok();
  if (r == ncclInProgress) return WaitAccepted(op, deadline);
  return Fail(NcclStatus(r, Context(op), call));
}

coord::Status NcclCommunicator::WaitAccepted(const Op& op, Clock::time_point deadline) {
  // NCCL's rule for non-blocking comms: after ncclInProgress, poll the comm state
  // until it leaves ncclInProgress before the next NCCL call or stream work.
  Backoff backoff;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) {
      return Fail(NcclStatus(r, Context(op), "ncclCommGetAsyncError"));
    }
    if (state == ncclSuccess) return coord::Status::Ok();
    if (state != ncclInProgress) return Fail(AsyncError(op, state));
    if (Clock::now() >= deadline) return Fail(TimedOut(op));
    backoff.Sleep();
  }
}

coord::Status NcclCommunicator::WaitStream(const Op& op, Clock::time_point deadline) {
  Backoff backoff;
  for (;;) {
    cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaSuccess) {
      pending_ops_ = 0;
      pending_elements_ = 0;
      return coord::Status::Ok();
    }
    if (e != cudaErrorNotReady) {
      return Fail(CudaStatus(e, Context(op), "cudaStreamQuery"));
    }
    // A peer's death shows up here (proxy thread / network error) while our
    // kernel spins waiting for its data, so the stream alone would never tell.
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) {
      return Fail(NcclStatus(r, Context(op), "ncclCommGetAsyncError"));
    }
    if (state != ncclSuccess && state != ncclInProgress) return Fail(AsyncError(op, state));
    if (Clock::now() >= deadline) return Fail(TimedOut(op));
    backoff.Sleep();
  }
}

// --- collectives ---

coord::Status NcclCommunicator::AllReduceSumAsync(void* data, size_t count, DataType type) {
  const Op op{"all-reduce", count, type};
  RETURN_IF_ERROR(Begin(op));
  if (count == 0) return coord::Status::Ok();  // every rank has the same count
  if (data == nullptr) return coord::InvalidArgument(Context(op) + ": data is null");
  const Clock::time_point deadline = Deadline();
  RETURN_IF_ERROR(Check(ncclAllReduce(data, data, count, NcclType(type), ncclSum, comm_, stream_),
                        "ncclAllReduce", op, deadline));
  ++pending_ops_;
  pending_elements_ += count;
  return coord::Status::Ok();
}

coord::Status NcclCommunicator::Synchronize() {
  const Op op{"synchronize", 0, DataType::kFloat32};
  RETURN_IF_ERROR(Begin(op));
  return WaitStream(op, Deadline());
}

coord::Status NcclCommunicator::AllReduceSum(void* data, size_t count, DataType type) {
  const Op op{"all-reduce", count, type};
  RETURN_IF_ERROR(Begin(op));
  if (count == 0) return coord::Status::Ok();
  if (data == nullptr) return coord::InvalidArgument(Context(op) + ": data is null");
  const Clock::time_point deadline = Deadline();
  RETURN_IF_ERROR(Check(ncclAllReduce(data, data, count, NcclType(type), ncclSum, comm_, stream_),
                        "ncclAllReduce", op, deadline));
  return WaitStream(op, deadline);
}

coord::Status NcclCommunicator::ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                                 DataType type) {
  const Op op{"reduce-scatter", Sum(counts), type};
  RETURN_IF_ERROR(Begin(op));
  RETURN_IF_ERROR(CheckBlockCounts(Context(op), counts, size_));
  if (op.count == 0) return coord::Status::Ok();
  if (data == nullptr) return coord::InvalidArgument(Context(op) + ": data is null");
  auto* bytes = static_cast<char*>(data);
  const size_t elem = DataTypeSize(type);
  const Clock::time_point deadline = Deadline();
  if (AllEqual(counts)) {
    // In place: NCCL's in-place form is recvbuff == sendbuff + rank * recvcount.
    const size_t n = counts[0];
    RETURN_IF_ERROR(Check(ncclReduceScatter(bytes, bytes + rank_ * n * elem, n, NcclType(type),
                                            ncclSum, comm_, stream_),
                          "ncclReduceScatter", op, deadline));
    return WaitStream(op, deadline);
  }
  // Uneven blocks (the ZeRO tail): one in-place reduce per block to its owner.
  return GroupedPerBlock(
      op, counts, bytes, elem, deadline, "ncclReduce", [&](char* block, size_t n, int owner) {
        return ncclReduce(block, block, n, NcclType(type), ncclSum, owner, comm_, stream_);
      });
}

coord::Status NcclCommunicator::AllGather(void* data, const std::vector<size_t>& counts,
                                          DataType type) {
  const Op op{"all-gather", Sum(counts), type};
  RETURN_IF_ERROR(Begin(op));
  RETURN_IF_ERROR(CheckBlockCounts(Context(op), counts, size_));
  if (op.count == 0) return coord::Status::Ok();
  if (data == nullptr) return coord::InvalidArgument(Context(op) + ": data is null");
  auto* bytes = static_cast<char*>(data);
  const size_t elem = DataTypeSize(type);
  const Clock::time_point deadline = Deadline();
  if (AllEqual(counts)) {
    // In place: NCCL's in-place form is sendbuff == recvbuff + rank * sendcount.
    const size_t n = counts[0];
    RETURN_IF_ERROR(
        Check(ncclAllGather(bytes + rank_ * n * elem, bytes, n, NcclType(type), comm_, stream_),
              "ncclAllGather", op, deadline));
    return WaitStream(op, deadline);
  }
  // Uneven blocks: each owner broadcasts its block in place.
  return GroupedPerBlock(
      op, counts, bytes, elem, deadline, "ncclBroadcast", [&](char* block, size_t n, int owner) {
        return ncclBroadcast(block, block, n, NcclType(type), owner, comm_, stream_);
      });
}

// One call per non-empty block inside ncclGroupStart/End, so NCCL launches them as one
// operation instead of size() serialized ones; skipping empty blocks is safe because
// every rank has the same counts.
coord::Status NcclCommunicator::GroupedPerBlock(
    const Op& op, const std::vector<size_t>& counts, char* bytes, size_t elem,
    std::chrono::steady_clock::time_point deadline, const char* call,
    const std::function<int(char* block, size_t n, int owner)>& per_block) {
  RETURN_IF_ERROR(Check(ncclGroupStart(), "ncclGroupStart", op, deadline));
  ncclResult_t first_error = ncclSuccess;
  size_t offset = 0;
  for (int r = 0; r < size_; ++r) {
    const size_t n = counts[static_cast<size_t>(r)];
    if (n != 0 && first_error == ncclSuccess) {
      const auto res = static_cast<ncclResult_t>(per_block(bytes + offset * elem, n, r));
      if (res != ncclSuccess && res != ncclInProgress) first_error = res;
    }
    offset += n;
  }
  // Always close the group, even after a failed call, so NCCL's group state on this
  // thread is not left open.
  ncclResult_t end = ncclGroupEnd();
  if (first_error != ncclSuccess) return Check(first_error, call, op, deadline);
  RETURN_IF_ERROR(Check(end, "ncclGroupEnd", op, deadline));
  return WaitStream(op, deadline);
}

coord::Status NcclCommunicator::Broadcast(void* data, size_t count, DataType type, int root) {
  const Op op{"broadcast", count, type};
  RETURN_IF_ERROR(Begin(op));
  if (root < 0 || root >= size_) {
    return coord::InvalidArgument(Context(op) + ": root " + std::to_string(root) +
                                  " is not a rank");
  }
  if (count == 0) return coord::Status::Ok();
  if (data == nullptr) return coord::InvalidArgument(Context(op) + ": data is null");
  const Clock::time_point deadline = Deadline();
  RETURN_IF_ERROR(Check(ncclBroadcast(data, data, count, NcclType(type), root, comm_, stream_),
                        "ncclBroadcast", op, deadline));
  return WaitStream(op, deadline);
}

// One NCCL group: ncclSend/ncclRecv pair up in call order per peer, as the interface
// promises, and the group lets two ranks exchange in both directions at once.
coord::Status NcclCommunicator::SendRecv(const std::vector<PeerOp>& ops) {
  if (ops.empty()) return coord::Status::Ok();
  size_t total = 0;
  for (const PeerOp& op : ops) total += op.count;
  const Op op{ops.size() == 1 ? ops[0].what() : "send/recv batch", total, ops[0].type};
  RETURN_IF_ERROR(Begin(op));
  std::string peers;
  for (const PeerOp& p : ops) {
    RETURN_IF_ERROR(CheckPeer(Context(op), p.peer, rank_, size_));
    if (p.count > 0 && p.data == nullptr) return coord::InvalidArgument(Context(op) + ": data is null");
    peers += std::string(peers.empty() ? "" : ", ") +
             (p.kind == PeerOp::kSend ? "send to" : "recv from") + " rank " +
             std::to_string(p.peer);
  }
  // NCCL matches a pair's messages in issue order and has no tags: issuing channel 0
  // before channel 1 on both sides keeps the channels apart.
  std::vector<PeerOp> ordered = ops;
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const PeerOp& a, const PeerOp& b) { return a.channel < b.channel; });
  const Clock::time_point deadline = Deadline();
  int result = ncclGroupStart();
  for (const PeerOp& p : ordered) {
    if (result != ncclSuccess || p.count == 0) continue;
    result = p.kind == PeerOp::kSend
                 ? ncclSend(p.data, p.count, NcclType(p.type), p.peer, comm_, stream_)
                 : ncclRecv(p.data, p.count, NcclType(p.type), p.peer, comm_, stream_);
  }
  const int ended = ncclGroupEnd();
  if (result == ncclSuccess) result = ended;
  RETURN_IF_ERROR(Check(result, "ncclSend/ncclRecv", op, deadline).WithContext(peers));
  return WaitStream(op, deadline).WithContext(peers);
}

coord::Status NcclCommunicator::Barrier() {
  const Op op{"barrier", 0, DataType::kFloat32};
  RETURN_IF_ERROR(Begin(op));
  const Clock::time_point deadline = Deadline();
  RETURN_IF_ERROR(Check(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_),
                        "ncclAllReduce", op, deadline));
  return WaitStream(op, deadline);
}

}  // namespace gpt_rank::dist
