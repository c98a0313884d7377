// Reading a rank's progress records (rank-R.progress, appended through
// COORD_PROGRESS_FD): every record since the last read, not only the newest, so
// coordd gets each iteration's timings for its straggler scores. A rank's records are
// its own text: one that is not a JSON object, has a known field of the wrong type or
// an impossible value, or is longer than kMaxRecordBytes is ignored and counted
// (RankProgress.malformed_records), never trusted. Used by coord-agent's heartbeats;
// not thread-safe (the agent calls it under its mutex).
//
// Record fields read (the rest are ignored, for later versions): iteration, loss,
// checkpoint, train_iters, tokens_per_s, stage, and the timings time_ms, compute_ms,
// wait_ms, wait_tp_ms, wait_dp_ms, wait_pp_ms, data_ms, optimizer_ms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "proto/agent.pb.h"

namespace coord::agent {

inline constexpr size_t kMaxRecordBytes = 4096;     // a longer line is not a record
inline constexpr size_t kMaxProgressRead = 64 << 10;  // per poll: older backlog is skipped
inline constexpr int kMaxTimingsPerPoll = 64;       // the newest are kept
inline constexpr size_t kProgressTextBytes = 512;   // RankProgress.text

/// Parses one record (a line without its newline). On success sets the fields it has
/// in `out` (others untouched) and, when it carries timings (compute_ms), fills
/// `timing` and sets *has_timing. False with the reason otherwise; `out` untouched.
bool ParseProgressRecord(const std::string& line, RankProgress* out, IterationTiming* timing,
                         bool* has_timing, std::string* why);

class ProgressReader {
 public:
  struct Poll {
    bool grew = false;       // the file has new bytes since the last poll
    int64_t malformed = 0;   // records ignored in this poll
    std::string first_error; // why the first of them was
  };
  /// Reads what was appended to `path` since the last call into `progress`: records
  /// (the file's size), time_ms (its mtime), text (the newest line), the newest good
  /// record's fields, this poll's timings (replacing the previous ones) and the running
  /// count of malformed records.
  Poll Read(const std::string& path, RankProgress* progress);

 private:
  int64_t consumed_ = 0;       // bytes of the file already parsed (whole lines)
  bool in_oversized_ = false;  // inside a line already counted as too long
};

}  // namespace coord::agent
