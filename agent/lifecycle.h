// The two lifecycles coord-agent tracks, each one enum with a table of allowed
// edges (the rules; AgentService's SetGenStateLocked/SetRankStateLocked apply
// them, logging a bad edge as an internal error). Pure functions.
//
//   generation:  LAUNCHING -> RUNNING -> ENDED          (a Launch call)
//                LAUNCHING -> LAUNCHING_ENDED -> ENDED  (done while Launch still returns)
//                LAUNCHING -> DROPPED                   (no supervisor could be started)
//                FOUND -> RUNNING | ENDED               (agent restart: adopt, or
//                finished/orphaned)
//   rank:        RANK_STATE_UNKNOWN -> RANK_RUNNING -> RANK_EXITED, and
//                RANK_STATE_UNKNOWN -> RANK_EXITED (exec failed, or never started)
// The rank's states are the wire's (proto RankState); a generation's stay here.
#pragma once

#include "proto/agent.pb.h"

namespace coord::agent {

enum class GenState {
  kFound,           // read from the state dir at agent start; not yet adopted or ended
  kLaunching,       // a Launch call is starting it and owns its supervisor's pid
  kLaunchingEnded,  // the `done` record came while the Launch call still owns it
  kRunning,         // launched or re-adopted: a supervisor is in charge until `done`
  kEnded,           // the `done` record exists: nothing of it runs any more
  kDropped,         // the launch failed before a supervisor existed: forgotten
};

/// True when `from -> to` is an edge of the generation lifecycle (table in lifecycle.cc).
bool IsValidTransition(GenState from, GenState to);
/// "LAUNCHING", ...
const char* GenStateName(GenState state);
/// A Launch call still holds it (Kill waits; the pid watch leaves it to Launch).
bool IsLaunching(GenState state);
/// Its `done` record exists: nothing of it runs any more.
bool HasEnded(GenState state);
/// Where the `done` record takes a generation in `state`.
GenState EndedStateFrom(GenState state);

/// True when `from -> to` is an edge of the rank lifecycle (table in lifecycle.cc).
bool IsValidTransition(RankState from, RankState to);
/// "RANK_RUNNING", ... (the proto enum's name).
const char* RankStateName(RankState state);

}  // namespace coord::agent
