// A node's state in a job (NodeState in coordinator.proto): the edge table, shared by
// the job manager (which moves nodes only through SetNodeState) and the journal replay
// (which reads journals written before the enum). Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "proto/coordinator.pb.h"

namespace coord::coordinator {

/// True when `from -> to` is an edge of the node lifecycle (the table in node_state.cc);
/// a node's first state (from NODE_STATE_UNKNOWN) is PENDING, SPARE or EXCLUDED.
bool IsValidNodeTransition(NodeState from, NodeState to);
/// "pending", "launched", ... : the word coordctl's text shows (the proto name is for JSON).
const char* NodeStateWord(NodeState state);
/// Moves `node` to `to`. A transition that is not an edge is a coordinator bug: it is
/// logged as an internal error (naming the job and node) and applied anyway, since the
/// state must say what happened to the node.
void SetNodeState(const std::string& job_id, NodeStatus* node, NodeState to);
/// Journals written before NodeState hold the word ("spare"); rewrites a JobStatus's
/// JSON (nodes[].state, spares[].state) to the enum's names, in place.
void UpgradeLegacyNodeStates(nlohmann::json* job_status);

}  // namespace coord::coordinator
