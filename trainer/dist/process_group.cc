// Rendezvous and communicator setup (process_group.h).
#include "trainer/dist/process_group.h"

#include <algorithm>

#include <cstdio>
#include <cstdlib>

#include "common/clock.h"
#include "common/logging.h"
#include "trainer/dist/gloo_communicator.h"
#include "trainer/dist/tcp_store.h"

namespace gpt_rank::dist {
namespace {}  // namespace

ProcessGroup::~ProcessGroup() {
  comm_.reset();  // before the store: gloo may still talk to peers while closing
  store_.reset();
  server_.reset();
}

KeyValueStore* ProcessGroup::store() { return store_.get(); }

coord::StatusOr<std::unique_ptr<ProcessGroup>> ProcessGroup::Init(
    const RankEnv& env, const ProcessGroupOptions& options) {
  std::unique_ptr<ProcessGroup> pg(new ProcessGroup());
  pg->env_ = env;
  if (env.world_size == 1) {
    pg->comm_ = MakeSelfCommunicator();
    return pg;
  }
  if (options.backend != "gloo") {
    return coord::InvalidArgument("process group backend \"" + options.backend +
                                  "\": this gpt-rank trains on the CPU backend, which uses "
                                  "\"gloo\"");
  }
  if (env.rank == 0) {
    auto server = TcpStoreServer::Start("", env.master_port);
    if (!server.ok()) {
      return server.status().WithContext("rank 0 hosts the rendezvous store on MASTER_PORT=" +
                                         std::to_string(env.master_port));
    }
    pg->server_ = std::move(*server);
  }
  auto store = TcpStore::Connect(env.master_addr, env.master_port, options.rendezvous_timeout);
  if (!store.ok()) return store.status().WithContext("rank " + std::to_string(env.rank));
  pg->store_ = std::move(*store);
  pg->store_->set_default_timeout(options.rendezvous_timeout);
  RETURN_IF_ERROR(pg->WaitForAllRanks(options));

  GlooOptions gloo;
  gloo.route_to = env.master_addr;
  if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME"); iface != nullptr && *iface) {
    gloo.iface = iface;
  }
  gloo.timeout = options.collective_timeout;
  pg->gloo_ = gloo;
  ASSIGN_OR_RETURN(auto comm,
                   GlooCommunicator::Create(*pg->store_, env.rank, env.world_size, gloo));
  LOG_INFO << "rank " << env.rank << " of " << env.world_size << " (local " << env.local_rank
           << " of " << env.local_world_size << ", from " << env.source << ") joined via "
           << env.master_addr << ":" << env.master_port << "; gloo on " << comm->local_address()
           << ", collective timeout " << coord::FormatSeconds(options.collective_timeout);
  pg->comm_ = std::move(comm);
  return pg;
}

// Every rank announces itself (a counter, so that absence can be probed without
// waiting), then waits for all the others; on a timeout the ranks that never joined
// are named (a typo in WORLD_SIZE, a node that never started its ranks).
coord::Status ProcessGroup::WaitForAllRanks(const ProcessGroupOptions& options) {
  auto key = [](int r) { return "joined/" + std::to_string(r); };
  RETURN_IF_ERROR(store_->Add(key(env_.rank), 1).status());
  std::vector<std::string> keys;
  for (int r = 0; r < env_.world_size; ++r) keys.push_back(key(r));
  coord::Status s = store_->Wait(keys, options.rendezvous_timeout);
  if (s.ok() || s.code() != coord::StatusCode::kDeadlineExceeded) return s;
  // A timed-out wait leaves the connection unusable: probe on a fresh one.
  std::string missing = "?";
  auto probe = TcpStore::Connect(env_.master_addr, env_.master_port, std::chrono::seconds(5));
  if (probe.ok()) {
    missing.clear();
    int n = 0;
    for (int r = 0; r < env_.world_size && n < 16; ++r) {
      auto joined = (*probe)->Add(key(r), 0);
      if (joined.ok() && *joined == 0) missing += (n++ ? ", " : "") + std::to_string(r);
    }
  }
  return coord::DeadlineExceeded("rendezvous at " + store_->address() + ": rank(s) " + missing +
                                 " of " + std::to_string(env_.world_size) +
                                 " did not join within " +
                                 coord::FormatSeconds(options.rendezvous_timeout) +
                                 "; check that every node started its ranks with the same "
                                 "WORLD_SIZE and MASTER_ADDR:MASTER_PORT");
}

coord::StatusOr<std::unique_ptr<Communicator>> ProcessGroup::NewGroup(
    const std::vector<int>& ranks, const std::string& name) {
  const auto me = std::find(ranks.begin(), ranks.end(), env_.rank);
  if (me == ranks.end() || !std::is_sorted(ranks.begin(), ranks.end()) ||
      ranks.front() < 0 || ranks.back() >= env_.world_size) {
    return coord::InvalidArgument("process group \"" + name + "\": rank " +
                                  std::to_string(env_.rank) +
                                  " asked for a group that does not contain it, or ranks outside "
                                  "[0, " + std::to_string(env_.world_size) + ") / not ascending");
  }
  if (ranks.size() == 1) return MakeSelfCommunicator();
  if (store_ == nullptr) return coord::FailedPrecondition("NewGroup without a store");
  GlooOptions gloo = gloo_;
  gloo.key_prefix = "gloo/" + name;
  ASSIGN_OR_RETURN(auto comm, GlooCommunicator::Create(*store_, static_cast<int>(me - ranks.begin()),
                                                       static_cast<int>(ranks.size()), gloo));
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace gpt_rank::dist
