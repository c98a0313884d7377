// Shared pieces of the Communicator interface (communicator.h).
#include "trainer/dist/communicator.h"

#include <algorithm>

namespace gpt_rank::dist {

std::vector<size_t> EvenCounts(size_t n, int parts) {
  const size_t p = static_cast<size_t>(std::max(parts, 1));
  const size_t per = (n + p - 1) / p;
  std::vector<size_t> counts(p, 0);
  size_t left = n;
  for (size_t r = 0; r < p; ++r) {
    counts[r] = std::min(per, left);
    left -= counts[r];
  }
  return counts;
}

coord::Status CheckBlockCounts(const std::string& what, const std::vector<size_t>& counts,
                               int ranks) {
  if (counts.size() == static_cast<size_t>(ranks)) return coord::Status::Ok();
  return coord::InvalidArgument(what + ": " + std::to_string(counts.size()) + " counts for " +
                                std::to_string(ranks) + " ranks");
}

coord::Status CheckPeer(const std::string& what, int peer, int rank, int size) {
  if (peer >= 0 && peer < size && peer != rank) return coord::Status::Ok();
  return coord::InvalidArgument(what + ": peer " + std::to_string(peer) +
                                " is not another rank of this group of " + std::to_string(size) +
                                " (this is rank " + std::to_string(rank) + ")");
}

}  // namespace gpt_rank::dist

namespace gpt_rank::dist {
namespace {

class SelfCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "self"; }
  std::chrono::milliseconds timeout() const override { return std::chrono::milliseconds(0); }
  coord::Status AllReduceSum(void*, size_t, DataType) override { return coord::Status::Ok(); }
  coord::Status ReduceScatterSum(void*, const std::vector<size_t>& counts, DataType) override {
    if (counts.size() != 1) return coord::InvalidArgument("reduce-scatter: world size is 1");
    return coord::Status::Ok();
  }
  coord::Status AllGather(void*, const std::vector<size_t>& counts, DataType) override {
    if (counts.size() != 1) return coord::InvalidArgument("all-gather: world size is 1");
    return coord::Status::Ok();
  }
  coord::Status Broadcast(void*, size_t, DataType, int root) override {
    if (root != 0) return coord::InvalidArgument("broadcast: root must be 0 in a world of 1");
    return coord::Status::Ok();
  }
  coord::Status Barrier() override { return coord::Status::Ok(); }
  coord::Status SendRecv(const std::vector<PeerOp>& ops) override {
    if (ops.empty()) return coord::Status::Ok();
    return coord::InvalidArgument(std::string(ops[0].what()) + " with rank " +
                                  std::to_string(ops[0].peer) + ": a world of 1 has no peer");
  }
};

}  // namespace

std::unique_ptr<Communicator> MakeSelfCommunicator() {
  return std::make_unique<SelfCommunicator>();
}

}  // namespace gpt_rank::dist
