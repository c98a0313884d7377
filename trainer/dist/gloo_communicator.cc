// gloo implementation of Communicator (gloo_communicator.h).
#include "trainer/dist/gloo_communicator.h"

#include <arpa/inet.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/types.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/clock.h"

namespace gpt_rank::dist {
namespace {

// Slot prefixes of our ring operations; gloo's own collectives use small prefixes.
constexpr uint8_t kReduceScatterSlot = 0xc1;
constexpr uint8_t kAllGatherSlot = 0xc2;
constexpr uint8_t kPointToPointSlot = 0xc3;

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

ReduceFn SumFor(DataType type) {
  return type == DataType::kFloat32 ? static_cast<ReduceFn>(&gloo::sum<float>)
                                    : static_cast<ReduceFn>(&gloo::sum<double>);
}

std::vector<size_t> Offsets(const std::vector<size_t>& counts) {
  std::vector<size_t> off(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) off[i + 1] = off[i] + counts[i];
  return off;
}

}  // namespace

std::string LocalAddressToward(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), "9", &hints, &res) != 0 || res == nullptr) return "";
  std::string out;
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    char text[INET_ADDRSTRLEN] = {};
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
        inet_ntop(AF_INET, &local.sin_addr, text, sizeof(text)) != nullptr) {
      out = text;
    }
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return out;
}

coord::StatusOr<std::unique_ptr<GlooCommunicator>> GlooCommunicator::Create(
    gloo::rendezvous::Store& store, int rank, int size, const GlooOptions& options) {
  if (size < 1 || rank < 0 || rank >= size) {
    return coord::InvalidArgument("gloo: rank " + std::to_string(rank) + " outside [0, " +
                                  std::to_string(size) + ")");
  }
  std::unique_ptr<GlooCommunicator> comm(new GlooCommunicator(rank, size, options.timeout));
  gloo::transport::tcp::attr attr;
  if (!options.iface.empty()) {
    attr.iface = options.iface;
    comm->local_address_ = "interface " + options.iface;
  } else {
    std::string host = options.hostname;
    if (host.empty() && !options.route_to.empty()) host = LocalAddressToward(options.route_to);
    if (host.empty()) {
      char name[256] = {};
      gethostname(name, sizeof(name) - 1);
      host = name;
    }
    attr.hostname = host;
    comm->local_address_ = host;
  }
  try {
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
    context->setTimeout(options.timeout);
    gloo::rendezvous::PrefixStore prefixed(options.key_prefix, store);
    context->connectFullMesh(prefixed, device);
    comm->context_ = std::move(context);
    // connectFullMesh returns once this rank's pairs are up, not everyone's: without
    // a barrier a rank that exits right away can cut a peer's handshake short.
    gloo::BarrierOptions barrier(comm->context_);
    barrier.setTag(comm->NextTag());
    barrier.setTimeout(options.timeout);
    gloo::barrier(barrier);
  } catch (const std::exception& e) {
    return coord::Unavailable("gloo: rank " + std::to_string(rank) + " of " + std::to_string(size) +
                              " could not connect to its peers from " + comm->local_address_ +
                              " (timeout " + coord::FormatSeconds(options.timeout) +
                              "): " + e.what());
  }
  return comm;
}

GlooCommunicator::~GlooCommunicator() = default;

coord::Status GlooCommunicator::Failed(const std::string& op, const std::exception& e) {
  broken_ = true;
  const std::string what = e.what();
  broken_reason_ = "gloo " + op + " failed on rank " + std::to_string(rank_) + " of " +
                   std::to_string(size_) + ": " + what;
  if (what.find("imed out") != std::string::npos) {
    return coord::DeadlineExceeded(broken_reason_ + " (collective timeout " +
                                   coord::FormatSeconds(timeout_) +
                                   "; a peer died or stopped making progress)");
  }
  return coord::Unavailable(broken_reason_ + " (a peer exited or its connection broke)");
}

#define GLOO_GUARD \
  if (broken_) return coord::FailedPrecondition("communicator unusable after: " + broken_reason_)

coord::Status GlooCommunicator::AllReduceSum(void* data, size_t count, DataType type) {
  GLOO_GUARD;
  if (size_ == 1 || count == 0) return coord::Status::Ok();
  try {
    gloo::AllreduceOptions opts(context_);
    opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
    opts.setMaxSegmentSize(4u << 20);
    if (type == DataType::kFloat32) {
      opts.setOutput(static_cast<float*>(data), count);
    } else {
      opts.setOutput(static_cast<double*>(data), count);
    }
    opts.setReduceFunction(SumFor(type));
    opts.setTag(NextTag());
    opts.setTimeout(timeout_);
    gloo::allreduce(opts);
  } catch (const std::exception& e) {
    return Failed("all-reduce of " + std::to_string(count) + " elements", e);
  }
  return coord::Status::Ok();
}

// Ring reduce-scatter: the partial sum of block b starts at rank b+1 and travels the
// ring, each rank adding its own block, until it reaches rank b after size-1 hops. At
// step s rank r sends block r-1-s and receives block r-2-s (mod size).
coord::Status GlooCommunicator::ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                                 DataType type) {
  GLOO_GUARD;
  RETURN_IF_ERROR(CheckBlockCounts("reduce-scatter", counts, size_));
  if (size_ == 1) return coord::Status::Ok();
  const size_t esize = DataTypeSize(type);
  const std::vector<size_t> off = Offsets(counts);
  const size_t max_block = *std::max_element(counts.begin(), counts.end());
  if (off.back() == 0) return coord::Status::Ok();
  if (scratch_.size() < max_block * esize) scratch_.resize(max_block * esize);
  const ReduceFn sum = SumFor(type);
  const int next = (rank_ + 1) % size_, prev = (rank_ + size_ - 1) % size_;
  char* base = static_cast<char*>(data);
  try {
    auto send_buf = context_->createUnboundBuffer(base, off.back() * esize);
    auto recv_buf = context_->createUnboundBuffer(scratch_.data(), max_block * esize);
    const uint32_t tag = NextTags(size_);
    for (int s = 0; s < size_ - 1; ++s) {
      const int sb = ((rank_ - 1 - s) % size_ + size_) % size_;
      const int rb = ((rank_ - 2 - s) % size_ + size_) % size_;
      const uint64_t slot = gloo::Slot::build(kReduceScatterSlot, tag + static_cast<uint32_t>(s));
      if (counts[rb] > 0) recv_buf->recv(prev, slot, 0, counts[rb] * esize);
      if (counts[sb] > 0) send_buf->send(next, slot, off[sb] * esize, counts[sb] * esize);
      if (counts[rb] > 0) {
        recv_buf->waitRecv(timeout_);
        char* dst = base + off[rb] * esize;
        sum(dst, dst, scratch_.data(), counts[rb]);
      }
      if (counts[sb] > 0) send_buf->waitSend(timeout_);
    }
  } catch (const std::exception& e) {
    return Failed("reduce-scatter of " + std::to_string(off.back()) + " elements", e);
  }
  return coord::Status::Ok();
}

// Ring all-gather in place: at step s rank r forwards block r-s and receives block
// r-1-s straight into its place.
coord::Status GlooCommunicator::AllGather(void* data, const std::vector<size_t>& counts,
                                          DataType type) {
  GLOO_GUARD;
  RETURN_IF_ERROR(CheckBlockCounts("all-gather", counts, size_));
  if (size_ == 1) return coord::Status::Ok();
  const size_t esize = DataTypeSize(type);
  const std::vector<size_t> off = Offsets(counts);
  if (off.back() == 0) return coord::Status::Ok();
  const int next = (rank_ + 1) % size_, prev = (rank_ + size_ - 1) % size_;
  try {
    auto buf = context_->createUnboundBuffer(data, off.back() * esize);
    const uint32_t tag = NextTags(size_);
    for (int s = 0; s < size_ - 1; ++s) {
      const int sb = ((rank_ - s) % size_ + size_) % size_;
      const int rb = ((rank_ - 1 - s) % size_ + size_) % size_;
      const uint64_t slot = gloo::Slot::build(kAllGatherSlot, tag + static_cast<uint32_t>(s));
      if (counts[rb] > 0) buf->recv(prev, slot, off[rb] * esize, counts[rb] * esize);
      if (counts[sb] > 0) buf->send(next, slot, off[sb] * esize, counts[sb] * esize);
      if (counts[rb] > 0) buf->waitRecv(timeout_);
      if (counts[sb] > 0) buf->waitSend(timeout_);
    }
  } catch (const std::exception& e) {
    return Failed("all-gather of " + std::to_string(off.back()) + " elements", e);
  }
  return coord::Status::Ok();
}

coord::Status GlooCommunicator::Broadcast(void* data, size_t count, DataType type, int root) {
  GLOO_GUARD;
  if (root < 0 || root >= size_) {
    return coord::InvalidArgument("broadcast: root " + std::to_string(root) + " outside [0, " +
                                  std::to_string(size_) + ")");
  }
  if (size_ == 1 || count == 0) return coord::Status::Ok();
  try {
    gloo::BroadcastOptions opts(context_);
    if (type == DataType::kFloat32) {
      opts.setOutput(static_cast<float*>(data), count);
    } else {
      opts.setOutput(static_cast<double*>(data), count);
    }
    opts.setRoot(root);
    opts.setTag(NextTag());
    opts.setTimeout(timeout_);
    gloo::broadcast(opts);
  } catch (const std::exception& e) {
    return Failed(
        "broadcast of " + std::to_string(count) + " elements from rank " + std::to_string(root), e);
  }
  return coord::Status::Ok();
}

// Every message of the batch is posted before any is waited for, so two ranks that
// send to each other in one batch both make progress (gloo's transfers start only
// when the receiver has posted its buffer).
coord::Status GlooCommunicator::SendRecv(const std::vector<PeerOp>& ops) {
  GLOO_GUARD;
  std::vector<uint32_t> seqs;
  for (const PeerOp& op : ops) {
    RETURN_IF_ERROR(CheckPeer(op.what(), op.peer, rank_, size_));
    if (op.channel < 0 || op.channel >= PeerOp::kChannels) {
      return coord::InvalidArgument(std::string(op.what()) + ": channel " +
                                    std::to_string(op.channel) + " outside [0, " +
                                    std::to_string(PeerOp::kChannels) + ")");
    }
    std::vector<uint32_t>& sequence = op.kind == PeerOp::kSend ? sent_to_ : received_from_;
    seqs.push_back(sequence[static_cast<size_t>(op.channel * size_ + op.peer)]++);
  }
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> bufs(ops.size());
  size_t i = 0;
  try {
    for (i = 0; i < ops.size(); ++i) {
      const PeerOp& op = ops[i];
      if (op.count == 0) continue;
      bufs[i] = context_->createUnboundBuffer(op.data, op.count * DataTypeSize(op.type));
      // Each channel numbers its own messages: tag = sequence x channels + channel.
      const uint64_t slot = gloo::Slot::build(
          kPointToPointSlot, seqs[i] * PeerOp::kChannels + static_cast<uint32_t>(op.channel));
      if (op.kind == PeerOp::kSend) {
        bufs[i]->send(op.peer, slot);
      } else {
        bufs[i]->recv(op.peer, slot);
      }
    }
    for (i = 0; i < ops.size(); ++i) {
      if (bufs[i] == nullptr) continue;
      if (ops[i].kind == PeerOp::kSend) {
        bufs[i]->waitSend(timeout_);
      } else {
        bufs[i]->waitRecv(timeout_);
      }
    }
  } catch (const std::exception& e) {
    const PeerOp& op = ops[std::min(i, ops.size() - 1)];
    return Failed(std::string(op.what()) + " of " + std::to_string(op.count) + " elements " +
                      (op.kind == PeerOp::kSend ? "to" : "from") + " rank " +
                      std::to_string(op.peer) + " (message " +
                      std::to_string(seqs[std::min(i, ops.size() - 1)]) + ")",
                  e);
  }
  return coord::Status::Ok();
}

coord::Status GlooCommunicator::Barrier() {
  GLOO_GUARD;
  if (size_ == 1) return coord::Status::Ok();
  try {
    gloo::BarrierOptions opts(context_);
    opts.setTag(NextTag());
    opts.setTimeout(timeout_);
    gloo::barrier(opts);
  } catch (const std::exception& e) {
    return Failed("barrier", e);
  }
  return coord::Status::Ok();
}

}  // namespace gpt_rank::dist
