// The job journal: STATE_DIR/journal.jsonl, append-only JSON lines, one record per
// transition, each write followed by fdatasync (rank records excepted, see AppendRank),
// so coordd restarts without forgetting jobs. Record types (field "type"):
//   submit  the job's plan: spec text, hosts text, workdir, rank layout (+ "status")
//   state   a state change: "status" = the whole JobStatus after it (proto JSON); with
//           "ranks_unchanged": true, without its ranks (the journal's table stands)
//   rank    one rank's new RankStatus ("rank")
//   failure the last Failure, completed later: stderr tail, kill confirmed, relaunched
// Every record has "v" (format version), "job" and "time_ms". Replay re-checks state
// transitions against job_state's table. Thread-safe (one mutex, held across the write).
//
// Compaction keeps replay short however long coordd runs: Compact() writes every job as
// one submit record carrying its current plan and status (the snapshot) to a temporary
// file, fsyncs it and renames it over journal.jsonl; the records that follow are the
// tail. A crash at any point leaves either the old journal or the new one, whole (a
// leftover temporary is removed by the next Open). The state dir is
// locked through STATE_DIR/coordd.lock, which compaction never replaces.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/job_plan.h"
#include "proto/coordinator.pb.h"

namespace coord::coordinator {

/// A job as the journal last saw it.
struct JournaledJob {
  JobPlan plan;
  JobStatus status;  // ranks indexed by global rank
};

class Journal {
 public:
  /// Opens (creating) STATE_DIR/journal.jsonl, takes an exclusive lock on it (a second
  /// coordd on the same state dir is refused) and replays it into `jobs` (oldest first).
  /// A torn final line (crash mid-write) is skipped with a WARNING and cut off; any other
  /// bad line is an error naming the file and line number.
  static StatusOr<std::unique_ptr<Journal>> Open(const std::string& state_dir,
                                                 std::vector<JournaledJob>* jobs);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  Status AppendSubmit(const JobPlan& plan, const JobStatus& status);
  /// \param sync false only where losing the record is harmless (LAUNCHING: a restart
  /// treats PENDING and LAUNCHING alike); a later synced record makes it durable anyway.
  /// \param ranks_unchanged the status comes without its ranks: replay keeps the table it
  /// has (from earlier records), so a transition of a 10,000-rank job writes kilobytes.
  Status AppendState(const JobStatus& status, bool sync = true, bool ranks_unchanged = false);
  /// Not fsynced on its own: 64 ranks starting or ending would mean 64 fsyncs on the launch
  /// and exit paths. It becomes durable with the next state/failure record (fdatasync
  /// flushes all earlier writes); if coordd dies first, the agents' Watch snapshots repeat
  /// what it said.
  Status AppendRank(const std::string& job_id, const coord::agent::RankStatus& rank);
  Status AppendFailure(const std::string& job_id, const Failure& failure);

  /// Replaces the journal by a snapshot of `jobs` (in order). The caller must make sure
  /// no record is appended between taking the snapshot and this call (JobManager holds
  /// its job-table mutex across both). On error the old journal stays in use.
  Status Compact(const std::vector<JournaledJob>& jobs);
  /// ResourceExhausted, naming the journal and what is free, when its filesystem has
  /// less than `bytes` available: a new job is refused rather than admitted with a
  /// journal that cannot follow it.
  Status CheckRoom(uint64_t bytes);
  /// Bytes of the journal file now, and right after the last compaction (or open).
  uint64_t size_bytes();
  uint64_t snapshot_bytes();

  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, int fd, int lock_fd)
      : path_(std::move(path)), fd_(fd), lock_fd_(lock_fd) {}
  Status AppendLine(const std::string& line, bool sync = true);

  const std::string path_;
  std::mutex mu_;               // serializes appends (write + fdatasync) and compaction
  int fd_;                      // O_APPEND; guarded by mu_
  int lock_fd_;                 // STATE_DIR/coordd.lock, flock'ed for the Journal's lifetime
  uint64_t size_ = 0;           // guarded by mu_
  uint64_t snapshot_size_ = 0;  // guarded by mu_
};

}  // namespace coord::coordinator
