// Following a job from coordctl: stream its merged logs to stdout until it
// ends, then print the outcome. Shared by `start --follow`, local mode and `logs -f`.
#pragma once

#include <functional>

#include "coordinator/cli/coordinator_client.h"

namespace coord::cli {

// Streams logs of `job_id` (all ranks) until the job is terminal. Ctrl-C / SIGTERM
// call `on_interrupt` once (local mode kills the job there; remote mode detaches).
// Returns the exit code for the job's final state.
int FollowJob(CoordinatorClient& client, const std::string& job_id,
              const std::function<void()>& on_interrupt);

// Blocks SIGINT and SIGTERM in the calling thread (call before starting any
// thread, so every thread inherits it and only the watcher thread sees them).
void BlockTerminationSignals();

}  // namespace coord::cli
