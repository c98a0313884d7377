// The agent's state directory: layout, names and the small JSON records that the
// agent and the per-job supervisor exchange through it. Shared by both processes
// (coord-agent and coord-supervisor), so it has no gRPC and no threads.
//
//   STATE/jobs/<job_id>/g<gen>/  spec, supervisor, rank-<R>.started, rank-<R>.exit,
//                                launched, killed, done, rank-<R>.out/.err, supervisor.log
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord::agent {

// --- names and validation ----------------------------------------------------

// Job ids become directory and cgroup names: [A-Za-z0-9._-]{1,128}, not starting
// with '.', so "../x", "a/b" and "" are rejected with a message naming the id.
Status ValidateJobId(const std::string& job_id);

// Short stable hash (12 hex chars, FNV-1a 64) of the absolute state dir: several
// agents on one machine never collide and a restarted agent finds its own again.
std::string AgentTag(const std::string& abs_state_dir);
// COORD_JOB_TAG value: "<agenttag>:<job_id>:g<generation>".
std::string JobTag(const std::string& agent_tag, const std::string& job_id, int generation);
// Parses a JobTag back; false when it is not of that form.
bool ParseJobTag(const std::string& tag, std::string* agent_tag, std::string* job_id,
                 int* generation);

std::string JobsDir(const std::string& state_dir);
std::string GenDir(const std::string& state_dir, const std::string& job_id, int generation);
// "g12" -> 12; -1 when the name is not a generation dir.
int ParseGenDirName(const std::string& name);

// Files inside a generation dir.
inline constexpr char kSpecFile[] = "spec";
inline constexpr char kSupervisorFile[] = "supervisor";
inline constexpr char kLaunchedFile[] = "launched";
inline constexpr char kKilledFile[] = "killed";
inline constexpr char kDoneFile[] = "done";
inline constexpr char kSupervisorLog[] = "supervisor.log";
std::string RankStartedName(int rank);  // rank-<R>.started
std::string RankExitName(int rank);     // rank-<R>.exit
std::string RankOutName(int rank);      // rank-<R>.out
std::string RankErrName(int rank);      // rank-<R>.err
// rank-<R>.progress: the rank's progress records (one line each, appended through
// COORD_PROGRESS_FD); the agent reports the last one with its heartbeats.
std::string RankProgressName(int rank);
constexpr int kProgressFd = 3;  // COORD_PROGRESS_FD in every rank
// rank-<R>.flight: the rank's flight record (common/flight_record.h), which the rank
// maps and updates in place (COORD_FLIGHT_RECORD); the agent reads it for hang reports.
std::string RankFlightName(int rank);
// Parses "rank-<R>.started" / "rank-<R>.exit"; -1 otherwise.
int ParseRankRecordName(const std::string& name, const std::string& suffix);

// Atomic (temp + rename) but NOT fsync'ed: these records must survive a crash of
// the agent or supervisor process, which the page cache guarantees; after a power
// loss there is no process left to supervise, and fsync would cost milliseconds
// per rank on the launch path.
Status WriteRecord(const std::string& path, const std::string& contents);

// A full disk (the ranks' logs filled it) must not cost coordd the news that a rank
// ended: each generation dir holds a ballast file of kRecordReserveBytes, made at its
// start, which a record write that fails for want of space frees before trying again.
inline constexpr char kReserveFile[] = ".reserve";
inline constexpr int64_t kRecordReserveBytes = 256 * 1024;
Status CreateRecordReserve(const std::string& gen_dir);
Status WriteRecordOrUseReserve(const std::string& gen_dir, const std::string& path,
                               const std::string& contents);

// --- records -----------------------------------------------------------------

struct RankSpec {
  int rank = 0;
  int local_rank = 0;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // full "K=V" environment of the rank
};

// Written by the agent before it starts the supervisor; read by the supervisor.
struct GenSpec {
  std::string job_id;
  int generation = 0;
  int node_rank = 0;
  std::string tag;  // COORD_JOB_TAG
  std::string workdir;
  std::string cgroup_dir;  // absolute generation cgroup, empty: no cgroups
  std::vector<RankSpec> ranks;
};

// A process identity that survives pid reuse: pid + start time in clock ticks
// since boot (/proc/<pid>/stat field 22).
struct ProcId {
  int pid = 0;
  uint64_t start_ticks = 0;
};

struct RankStarted {
  int rank = 0;
  int local_rank = 0;
  ProcId proc;
  int64_t start_ms = 0;  // wall clock
};

struct RankExit {
  int rank = 0;
  int exit_code = 0;  // valid when signal == 0 and error is empty
  int signal = 0;
  int64_t end_ms = 0;
  std::string error;  // launch-side failure, e.g. "exec 'x': No such file or directory"
};

// Written by the supervisor once every rank has exec'd or one has failed.
struct Launched {
  bool ok = true;
  int failed_rank = -1;
  std::string error;
};

std::string ToJson(const GenSpec& v);
std::string ToJson(const ProcId& v);
std::string ToJson(const RankStarted& v);
std::string ToJson(const RankExit& v);
std::string ToJson(const Launched& v);
Status FromJson(const std::string& text, GenSpec* v);
Status FromJson(const std::string& text, ProcId* v);
Status FromJson(const std::string& text, RankStarted* v);
Status FromJson(const std::string& text, RankExit* v);
Status FromJson(const std::string& text, Launched* v);

// Reads and parses one record; NOT_FOUND when the file does not exist.
template <typename T>
Status ReadRecord(const std::string& path, T* out);

}  // namespace coord::agent
