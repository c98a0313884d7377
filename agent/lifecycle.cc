// The edge tables of coord-agent's generation and rank lifecycles (see lifecycle.h).
#include "agent/lifecycle.h"

#include "common/state_table.h"

namespace coord::agent {
namespace {

// A Launch call ends in RUNNING even when the launch failed: the supervisor (if
// any is left) is then watched like any other, and its death ends the generation.
constexpr StateEdge<GenState> kGenEdges[] = {
    {GenState::kLaunching, GenState::kRunning},         // Launch returned
    {GenState::kLaunching, GenState::kLaunchingEnded},  // `done` before Launch returned
    {GenState::kLaunching, GenState::kDropped},         // no supervisor could be started
    {GenState::kLaunchingEnded, GenState::kEnded},      // ... then Launch returned
    {GenState::kFound, GenState::kRunning},             // re-adopted after an agent restart
    {GenState::kFound, GenState::kEnded},               // finished, or orphaned and killed
    {GenState::kRunning, GenState::kEnded},             // `done`, or orphaned and killed
};

constexpr NamedState<GenState> kGenNames[] = {
    {GenState::kFound, "FOUND"},
    {GenState::kLaunching, "LAUNCHING"},
    {GenState::kLaunchingEnded, "LAUNCHING_ENDED"},
    {GenState::kRunning, "RUNNING"},
    {GenState::kEnded, "ENDED"},
    {GenState::kDropped, "DROPPED"},
};

// UNKNOWN -> EXITED: an exec that failed has no `started` record, and the agent
// ends a rank that never started when its supervisor died.
constexpr StateEdge<RankState> kRankEdges[] = {
    {RANK_STATE_UNKNOWN, RANK_RUNNING},
    {RANK_STATE_UNKNOWN, RANK_EXITED},
    {RANK_RUNNING, RANK_EXITED},
};

}  // namespace

bool IsValidTransition(GenState from, GenState to) { return HasEdge(kGenEdges, from, to); }

const char* GenStateName(GenState state) {
  return NameIn(kGenNames, state, "GEN_STATE_INVALID");
}

bool IsLaunching(GenState state) {
  return state == GenState::kLaunching || state == GenState::kLaunchingEnded;
}

bool HasEnded(GenState state) {
  return state == GenState::kLaunchingEnded || state == GenState::kEnded;
}

GenState EndedStateFrom(GenState state) {
  return IsLaunching(state) ? GenState::kLaunchingEnded : GenState::kEnded;
}

bool IsValidTransition(RankState from, RankState to) { return HasEdge(kRankEdges, from, to); }

const char* RankStateName(RankState state) {
  const std::string& name = RankState_Name(state);
  return name.empty() ? "RANK_STATE_INVALID" : name.c_str();
}

}  // namespace coord::agent
