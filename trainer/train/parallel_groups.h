// Megatron's rank grid (initialize_model_parallel): tensor parallel innermost, on
// consecutive ranks, so a tensor-parallel group stays inside a node (its all-reduces run
// every layer, over NVLink on a GPU node); data parallel next; pipeline stages
// outermost (a stage's activations cross the slowest links once per micro-batch).
//   world rank = pp_rank * (dp * tp) + dp_rank * tp + tp_rank
//   world 8, tp 2, pp 2 (dp 2): tensor groups {0,1} {2,3} {4,5} {6,7};
//     data groups {0,2} {1,3} {4,6} {5,7}; pipeline groups {0,4} {1,5} {2,6} {3,7}
// The embedding group joins the first and the last stage of a pipeline group: the two
// copies of the tied word embedding all-reduce their gradients over it.
#pragma once

#include <memory>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/process_group.h"

namespace gpt_rank::train {

struct ParallelGroups {
  dist::Communicator* world = nullptr;     // every rank
  dist::Communicator* tensor = nullptr;    // this rank's tensor-parallel group
  dist::Communicator* data = nullptr;      // this rank's data-parallel group
  dist::Communicator* pipeline = nullptr;  // this rank's pipeline: group rank = stage
  // The first and last stage of this rank's pipeline (pp > 1, on those stages only);
  // null otherwise.
  dist::Communicator* embedding = nullptr;
  std::vector<std::unique_ptr<dist::Communicator>> owned;  // what the pointers above use

  int tp_size() const { return tensor->size(); }
  int dp_size() const { return data->size(); }
  int pp_size() const { return pipeline->size(); }
  int stage() const { return pipeline->rank(); }
};

// The world ranks of each group containing `rank` (for tests and messages).
std::vector<int> TensorGroupRanks(int rank, int tp);
std::vector<int> DataGroupRanks(int rank, int world, int tp, int pp = 1);
std::vector<int> PipelineGroupRanks(int rank, int world, int tp, int pp);

// Builds this rank's groups over `pg` (world: pg->comm()); tp x pp must divide the world.
coord::StatusOr<ParallelGroups> MakeParallelGroups(dist::ProcessGroup* pg, int tp, int pp = 1);
// One process: every group is `self` (not owned).
ParallelGroups SingleProcessGroups(dist::Communicator* self);

}  // namespace gpt_rank::train
