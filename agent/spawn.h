// Starting coord-supervisor detached from coord-agent (own session via
// posix_spawn), so killing or restarting the agent never touches a running job, and
// the launch handshake: the supervisor writes one line ("ok" / "fail") to an
// inherited pipe once every rank has exec'd. Runs in coord-agent, on the gRPC
// thread of a Launch call; thread-safe (no shared state).
#pragma once

#include <string>

#include "common/status.h"

namespace coord::agent {

struct SpawnedSupervisor {
  int pid = 0;
  int ack_fd = -1;  // read end (CLOEXEC) of the handshake pipe
};
// The supervisor runs with stdin=/dev/null, stdout/stderr appended to
// <gen_dir>/supervisor.log, the pipe's write end as fd 3, and nothing else of
// ours open (every agent fd is CLOEXEC; coord-supervisor closes fds > 3 anyway).
StatusOr<SpawnedSupervisor> SpawnSupervisor(const std::string& supervisor_path,
                                            const std::string& gen_dir);

// Reaps a supervisor that has exited if it is our child (the agent that started
// it); a no-op for supervisors adopted after a restart.
void ReapIfOurChild(int pid);

enum class LaunchAck { kOk, kFail, kDied, kTimeout };
// Waits up to timeout_ms for the handshake line; kDied on EOF without one.
// Closes fd.
LaunchAck WaitLaunchAck(int fd, int timeout_ms);

}  // namespace coord::agent
