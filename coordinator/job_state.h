// The job state machine's rules, shared by JobManager (live transitions) and the
// journal replay (which re-checks every recorded transition). Pure functions.
//
//   PENDING --> LAUNCHING --> RUNNING --> SUCCEEDED
//      |          |  ^  |        |
//      |          |  |  +--------+-----> FAILED | KILLED (also from PENDING, RESTARTING)
//      |          v  |           |
//      |        RESTARTING <-----+        (a failure with restarts left: the generation
//      +-> FAILED | KILLED                 is killed, then the next one launches)
#pragma once

#include "proto/coordinator.pb.h"

namespace coord::coordinator {

/// True when `from -> to` is an edge of the state machine (see the table in job_state.cc).
bool IsValidTransition(JobState from, JobState to);
/// SUCCEEDED, FAILED and KILLED: nothing changes the job's state any more.
bool IsTerminal(JobState state);
/// "RUNNING", ... (the proto enum's name).
const char* StateName(JobState state);

}  // namespace coord::coordinator
