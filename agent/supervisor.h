// coord-supervisor's logic: the parent of one job generation's ranks on one node
// (like slurmstepd or containerd's shim). It outlives the agent, so restarting or
// upgrading coord-agent never kills a run. Runs in the coord-supervisor process,
// single-threaded; everything it knows is written to the generation dir.
#pragma once

#include <string>

namespace coord::agent {

// Resolves argv[0] the way execvp would, but with the RANK's PATH (execvpe would
// use the supervisor's own PATH). Names containing '/' are returned unchanged
// (execve resolves them against the rank's workdir). Returns "" and sets *err
// (ENOENT or EACCES) when nothing executable is found.
std::string ResolveExecutable(const std::string& prog, const std::string& path_env,
                              const std::string& workdir, int* err);

// Runs the generation in `gen_dir` (reads its spec): starts every rank, writes
// the `launched` record, then writes one line ("ok" / "fail") to `notify_fd` (if
// >= 0) and closes it; reaps until every rank has ended; writes `done`.
// Returns the process exit code.
int RunSupervisor(const std::string& gen_dir, int notify_fd);

}  // namespace coord::agent
