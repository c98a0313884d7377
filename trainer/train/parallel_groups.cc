// The tensor x data parallel rank grid (see parallel_groups.h).
#include "trainer/train/parallel_groups.h"

#include <string>

namespace gpt_rank::train {

std::vector<int> TensorGroupRanks(int rank, int tp) {
  std::vector<int> ranks;
  const int first = rank / tp * tp;
  for (int r = first; r < first + tp; ++r) ranks.push_back(r);
  return ranks;
}

std::vector<int> DataGroupRanks(int rank, int world, int tp) {
  std::vector<int> ranks;
  for (int r = rank % tp; r < world; r += tp) ranks.push_back(r);
  return ranks;
}

coord::StatusOr<ParallelGroups> MakeParallelGroups(dist::ProcessGroup* pg, int tp) {
  const int world = pg->size(), rank = pg->rank();
  if (tp < 1 || world % tp != 0) {
    return coord::InvalidArgument("tensor parallel size " + std::to_string(tp) +
                                  " does not divide the world size " + std::to_string(world));
  }
  ParallelGroups g;
  g.world = &pg->comm();
  if (tp == 1) {
    g.owned.push_back(dist::MakeSelfCommunicator());
    g.tensor = g.owned.back().get();
    g.data = g.world;
    return g;
  }
  if (tp == world) {
    g.tensor = g.world;
    g.owned.push_back(dist::MakeSelfCommunicator());
    g.data = g.owned.back().get();
    return g;
  }
  // Every rank joins its own two groups; gloo's rendezvous keys are per group name.
  ASSIGN_OR_RETURN(auto tensor, pg->NewGroup(TensorGroupRanks(rank, tp),
                                             "tp" + std::to_string(rank / tp)));
  ASSIGN_OR_RETURN(auto data, pg->NewGroup(DataGroupRanks(rank, world, tp),
                                           "dp" + std::to_string(rank % tp)));
  g.tensor = tensor.get();
  g.data = data.get();
  g.owned.push_back(std::move(tensor));
  g.owned.push_back(std::move(data));
  return g;
}

ParallelGroups SingleProcessGroups(dist::Communicator* self) {
  ParallelGroups g;
  g.world = g.tensor = g.data = self;
  return g;
}

}  // namespace gpt_rank::train
