// A rank's membership in its job (torch.distributed.init_process_group): from the
// RankEnv, rank 0 hosts the TCP store on MASTER_PORT, every rank connects to it
// within the rendezvous deadline, waits until all WORLD_SIZE ranks have joined (a
// rank that never comes is named), and then builds the backend's communicator.
// World size 1 needs none of this and gets the self communicator.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/gloo_communicator.h"
#include "trainer/dist/rank_env.h"
#include "trainer/dist/store.h"

namespace gpt_rank::dist {

class TcpStoreServer;
class TcpStore;

struct ProcessGroupOptions {
  std::string backend = "gloo";  // the CPU backend; "nccl" arrives with the CUDA trainer
  // Reaching the store and waiting for every rank to join.
  std::chrono::milliseconds rendezvous_timeout{std::chrono::minutes(5)};
  // Every collective afterwards (Communicator::timeout()).
  std::chrono::milliseconds collective_timeout{std::chrono::minutes(5)};
};

class ProcessGroup {
 public:
  static coord::StatusOr<std::unique_ptr<ProcessGroup>> Init(const RankEnv& env,
                                                             const ProcessGroupOptions& options);
  ~ProcessGroup();

  const RankEnv& env() const { return env_; }
  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  Communicator& comm() { return *comm_; }
  KeyValueStore* store();  // null in a world of one

  // A communicator over a subset of the world (torch.distributed.new_group): `ranks`
  // are world ranks in ascending order and include this one; every member calls it
  // with the same ranks and name (the name keeps the groups' rendezvous keys apart).
  // A group of one gets the self communicator. Same timeouts as the world's.
  coord::StatusOr<std::unique_ptr<Communicator>> NewGroup(const std::vector<int>& ranks,
                                                          const std::string& name);

 private:
  ProcessGroup() = default;
  coord::Status WaitForAllRanks(const ProcessGroupOptions& options);

  RankEnv env_;
  std::unique_ptr<TcpStoreServer> server_;  // rank 0 only
  std::unique_ptr<TcpStore> store_;
  std::unique_ptr<Communicator> comm_;
  GlooOptions gloo_;  // the world's, reused by NewGroup
};

}  // namespace gpt_rank::dist
