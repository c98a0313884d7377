// Megatron's rank grid for tensor x data parallel (initialize_model_parallel): tensor
// parallel innermost, on consecutive ranks, so a tensor-parallel group stays inside a
// node (its all-reduces run every layer, over NVLink on a GPU node); data parallel
// across the groups. World rank = dp_rank * tp + tp_rank.
//   world 8, tp 2:  tensor groups {0,1} {2,3} {4,5} {6,7}; data groups {0,2,4,6} {1,3,5,7}
#pragma once

#include <memory>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/process_group.h"

namespace gpt_rank::train {

struct ParallelGroups {
  dist::Communicator* world = nullptr;   // every rank
  dist::Communicator* tensor = nullptr;  // this rank's tensor-parallel group
  dist::Communicator* data = nullptr;    // this rank's data-parallel group
  std::vector<std::unique_ptr<dist::Communicator>> owned;  // what the pointers above use

  int tp_size() const { return tensor->size(); }
  int dp_size() const { return data->size(); }
};

// The world ranks of each group containing `rank` (for tests and messages).
std::vector<int> TensorGroupRanks(int rank, int tp);
std::vector<int> DataGroupRanks(int rank, int world, int tp);

// Builds this rank's groups over `pg` (world: pg->comm()); tp must divide the world.
coord::StatusOr<ParallelGroups> MakeParallelGroups(dist::ProcessGroup* pg, int tp);
// One process: every group is `self` (not owned).
ParallelGroups SingleProcessGroups(dist::Communicator* self);

}  // namespace gpt_rank::train
