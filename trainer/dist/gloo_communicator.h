// The CPU backend's Communicator: gloo over TCP (Debian's libgloo), connected as a
// full mesh through the job's rendezvous store. All-reduce, broadcast and barrier are
// gloo's own algorithms; reduce-scatter and all-gather with uneven blocks are rings on
// gloo's unbound buffers (gloo's only reduce-scatter is the old-style halving-doubling
// class, which allocates twice the buffer per instance and has no per-call timeout).
// Every operation carries the communicator's timeout; gloo's exceptions become Status.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/communicator.h"

namespace gloo {
class Context;
namespace rendezvous {
class Store;
}
}  // namespace gloo

namespace gpt_rank::dist {

struct GlooOptions {
  // Local address to bind and advertise to peers ("" = the address this host uses
  // to reach `route_to`, else the hostname's address).
  std::string hostname;
  std::string route_to;  // usually MASTER_ADDR
  std::string iface;     // GLOO_SOCKET_IFNAME: bind this interface instead
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  std::string key_prefix = "gloo";  // store namespace (one per process group)
};

class GlooCommunicator : public Communicator {
 public:
  // Connects rank `rank` of `size` to every peer. Errors (DeadlineExceeded when a
  // peer never shows up) name the store and what was waited for.
  static coord::StatusOr<std::unique_ptr<GlooCommunicator>> Create(gloo::rendezvous::Store& store,
                                                                   int rank, int size,
                                                                   const GlooOptions& options);
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "gloo"; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  coord::Status AllReduceSum(void* data, size_t count, DataType type) override;
  coord::Status ReduceScatterSum(void* data, const std::vector<size_t>& counts,
                                 DataType type) override;
  coord::Status AllGather(void* data, const std::vector<size_t>& counts, DataType type) override;
  coord::Status Broadcast(void* data, size_t count, DataType type, int root) override;
  coord::Status Barrier() override;
  coord::Status SendRecv(const std::vector<PeerOp>& ops) override;
  using Communicator::AllReduceSum;

  // The local address peers connect to (for logs).
  const std::string& local_address() const { return local_address_; }

 private:
  GlooCommunicator(int rank, int size, std::chrono::milliseconds timeout)
      : rank_(rank),
        size_(size),
        timeout_(timeout),
        sent_to_(static_cast<size_t>(size) * PeerOp::kChannels, 0),
        received_from_(static_cast<size_t>(size) * PeerOp::kChannels, 0) {}
  uint32_t NextTag() { return next_tag_++; }
  // n consecutive tags (one per ring step), the same on every rank.
  uint32_t NextTags(int n) {
    const uint32_t first = next_tag_;
    next_tag_ += static_cast<uint32_t>(n);
    return first;
  }
  coord::Status Failed(const std::string& op, const std::exception& e);

  int rank_, size_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<gloo::Context> context_;
  std::string local_address_;
  uint32_t next_tag_ = 1;
  bool broken_ = false;
  std::string broken_reason_;
  std::vector<char> scratch_;  // ring reduce-scatter receive block
  // Point to point: messages sent to / received from each peer so far, per channel
  // (index channel * size + peer; the k-th send from a to b and b's k-th recv from a
  // on a channel share a slot).
  std::vector<uint32_t> sent_to_, received_from_;
};

// Which local IPv4 address routes to host (a connected UDP socket's name; nothing is
// sent). Empty on failure.
std::string LocalAddressToward(const std::string& host);

}  // namespace gpt_rank::dist
