// The transition table of the job state machine (see job_state.h).
#include "coordinator/job_state.h"

#include "common/state_table.h"

namespace coord::coordinator {
namespace {

// Every allowed edge. A failure with restarts left goes to RESTARTING instead of
// FAILED: the generation is killed everywhere, then the next one launches (LAUNCHING)
// unless a kill came first.
constexpr StateEdge<JobState> kEdges[] = {
    {PENDING, LAUNCHING}, {PENDING, FAILED},       {PENDING, KILLED},     {LAUNCHING, RUNNING},
    {LAUNCHING, FAILED},  {LAUNCHING, KILLED},     {RUNNING, SUCCEEDED},  {RUNNING, FAILED},
    {RUNNING, KILLED},    {LAUNCHING, RESTARTING}, {RUNNING, RESTARTING}, {RESTARTING, LAUNCHING},
    {RESTARTING, FAILED}, {RESTARTING, KILLED},
};

}  // namespace

bool IsValidTransition(JobState from, JobState to) { return HasEdge(kEdges, from, to); }

bool IsTerminal(JobState state) { return state == SUCCEEDED || state == FAILED || state == KILLED; }

const char* StateName(JobState state) {
  const std::string& name = JobState_Name(state);
  return name.empty() ? "JOB_STATE_UNKNOWN" : name.c_str();
}

}  // namespace coord::coordinator
