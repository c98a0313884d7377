// The tensor x data x pipeline rank grid (see parallel_groups.h).
#include "trainer/train/parallel_groups.h"

#include <string>

namespace gpt_rank::train {

std::vector<int> TensorGroupRanks(int rank, int tp) {
  std::vector<int> ranks;
  const int first = rank / tp * tp;
  for (int r = first; r < first + tp; ++r) ranks.push_back(r);
  return ranks;
}

std::vector<int> DataGroupRanks(int rank, int world, int tp, int pp) {
  const int stage_ranks = world / pp;  // dp * tp
  const int first = rank / stage_ranks * stage_ranks + rank % tp;
  std::vector<int> ranks;
  for (int r = first; r < rank / stage_ranks * stage_ranks + stage_ranks; r += tp) {
    ranks.push_back(r);
  }
  return ranks;
}

std::vector<int> PipelineGroupRanks(int rank, int world, int tp, int pp) {
  (void)tp;
  const int stage_ranks = world / pp;
  std::vector<int> ranks;
  for (int r = rank % stage_ranks; r < world; r += stage_ranks) ranks.push_back(r);
  return ranks;
}

coord::StatusOr<ParallelGroups> MakeParallelGroups(dist::ProcessGroup* pg, int tp, int pp) {
  const int world = pg->size(), rank = pg->rank();
  if (tp < 1 || pp < 1 || world % (tp * pp) != 0) {
    return coord::InvalidArgument("tensor parallel size " + std::to_string(tp) +
                                  " x pipeline parallel size " + std::to_string(pp) +
                                  " does not divide the world size " + std::to_string(world));
  }
  ParallelGroups g;
  g.world = &pg->comm();
  // Every rank joins its own groups; gloo's rendezvous keys are per group name. A group
  // of the whole world is the world's communicator; a group of one is the self one.
  auto group = [&](const std::vector<int>& ranks,
                   const std::string& name) -> coord::StatusOr<dist::Communicator*> {
    if (static_cast<int>(ranks.size()) == world) return g.world;
    ASSIGN_OR_RETURN(auto comm, pg->NewGroup(ranks, name));
    g.owned.push_back(std::move(comm));
    return g.owned.back().get();
  };
  const int stage_ranks = world / pp;
  ASSIGN_OR_RETURN(g.tensor, group(TensorGroupRanks(rank, tp), "tp" + std::to_string(rank / tp)));
  ASSIGN_OR_RETURN(g.data, group(DataGroupRanks(rank, world, tp, pp),
                                 "dp" + std::to_string(rank / stage_ranks) + "." +
                                     std::to_string(rank % tp)));
  const std::vector<int> pipeline = PipelineGroupRanks(rank, world, tp, pp);
  ASSIGN_OR_RETURN(g.pipeline, group(pipeline, "pp" + std::to_string(rank % stage_ranks)));
  if (pp > 1 && (rank == pipeline.front() || rank == pipeline.back())) {
    ASSIGN_OR_RETURN(g.embedding, group({pipeline.front(), pipeline.back()},
                                        "emb" + std::to_string(rank % stage_ranks)));
  }
  return g;
}

ParallelGroups SingleProcessGroups(dist::Communicator* self) {
  ParallelGroups g;
  g.world = g.tensor = g.data = g.pipeline = self;
  return g;
}

}  // namespace gpt_rank::train
