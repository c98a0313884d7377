// The node lifecycle's table (node_state.h).
#include "coordinator/node_state.h"

#include <string>

#include "common/logging.h"
#include "common/state_table.h"

namespace coord::coordinator {
namespace {

// A done node can still be lost (its ranks ended, its agent went silent while the job
// runs on); a pending one is never: the launch either reaches it or fails.
constexpr StateEdge<NodeState> kEdges[] = {
    {NODE_STATE_UNKNOWN, NODE_PENDING}, {NODE_STATE_UNKNOWN, NODE_SPARE},
    {NODE_STATE_UNKNOWN, NODE_EXCLUDED}, {NODE_PENDING, NODE_LAUNCHED},
    {NODE_PENDING, NODE_FAILED},        {NODE_PENDING, NODE_UNREACHABLE},
    {NODE_LAUNCHED, NODE_DONE},         {NODE_LAUNCHED, NODE_LOST},
    {NODE_DONE, NODE_LOST},             {NODE_SPARE, NODE_EXCLUDED},
};

constexpr NamedState<NodeState> kWords[] = {
    {NODE_PENDING, "pending"}, {NODE_LAUNCHED, "launched"},       {NODE_FAILED, "failed"},
    {NODE_UNREACHABLE, "unreachable"}, {NODE_LOST, "lost"},       {NODE_DONE, "done"},
    {NODE_SPARE, "spare"},     {NODE_EXCLUDED, "excluded"},
};

}  // namespace

bool IsValidNodeTransition(NodeState from, NodeState to) { return HasEdge(kEdges, from, to); }

const char* NodeStateWord(NodeState state) { return NameIn(kWords, state, "unknown"); }

void SetNodeState(const std::string& job_id, NodeStatus* node, NodeState to) {
  const NodeState from = node->state();
  if (from == to) return;
  if (!IsValidNodeTransition(from, to)) {
    LOG_ERROR << "internal error: job " << job_id << ": node " << node->host() << ":"
              << node->port() << " went " << NodeStateWord(from) << " -> " << NodeStateWord(to)
              << ", which is not an edge of the node lifecycle (coordinator/node_state.cc)";
  }
  node->set_state(to);
}

void UpgradeLegacyNodeStates(nlohmann::json* job_status) {
  for (const char* list : {"nodes", "spares"}) {
    auto it = job_status->find(list);
    if (it == job_status->end() || !it->is_array()) continue;
    for (nlohmann::json& node : *it) {
      auto state = node.find("state");
      if (state == node.end() || !state->is_string()) continue;
      for (const NamedState<NodeState>& w : kWords) {
        if (*state == w.name) *state = NodeState_Name(w.state);
      }
    }
  }
}

}  // namespace coord::coordinator
