// Starting coord-supervisor fully detached from coord-agent (double fork +
// setsid), so killing or restarting the agent never touches a running job, and
// the launch handshake: the supervisor writes one line ("ok" / "fail") to an
// inherited pipe once every rank has exec'd. Runs in coord-agent, on the gRPC
// thread of a Launch call; thread-safe (no shared state).
#pragma once

#include <string>

#include "common/status.h"

namespace coord::agent {

// Returns the read end (CLOEXEC) of the handshake pipe. The supervisor runs with
// stdin=/dev/null, stdout/stderr appended to <gen_dir>/supervisor.log, the pipe's
// write end as fd 3, and nothing else of ours open.
StatusOr<int> SpawnSupervisor(const std::string& supervisor_path, const std::string& gen_dir);

enum class LaunchAck { kOk, kFail, kDied, kTimeout };
// Waits up to timeout_ms for the handshake line; kDied on EOF without one.
// Closes fd.
LaunchAck WaitLaunchAck(int fd, int timeout_ms);

}  // namespace coord::agent
