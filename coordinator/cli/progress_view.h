// What coordctl shows of a running job's progress: one line (start --follow's status
// line, status --watch without a terminal), a panel (status --watch / top on a
// terminal) and the status text's timing section. Pure functions of a JobStatus and
// the time, so they are tested as such; the refreshing is follow.cc's and status.cc's.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "proto/coordinator.pb.h"

namespace coord::cli {

/// What one refresh of the line or the panel asks coordd for: the whole job's counts
/// and scalars and the `rows` slowest ranks (GetJob's `slowest`), never every rank: a
/// job of 10,000 ranks is megabytes in full, kilobytes so.
coordinator::GetJobRequest ProgressRequest(const std::string& job_id, int rows);

/// "RUNNING iteration 120/500 (24%) | ETA 2m36s | loss 3.2145 | 2.56k tokens/s | step 410 ms
/// | slowest: rank 3 on 127.0.0.3 (1.52x, straggler)"; parts the job does not report yet
/// are left out. At most `width` characters (0: no limit).
std::string ProgressLine(const coordinator::JobStatus& job, size_t width = 0);

/// The panel: a header, the progress line, the last record's age, then the ranks by
/// score (slowest first, at most max_rows) with their timings. Lines without newlines.
/// From a ProgressRequest reply it shows what it would from the full status.
std::vector<std::string> ProgressPanel(const coordinator::JobStatus& job, int64_t now_ms,
                                       int max_rows, size_t width = 0);

/// `coordctl status`'s speed, straggler and malformed-record lines, and its table of
/// the ranks' timings (nothing when the job has none).
void PrintTimingSummary(const coordinator::JobStatus& job, std::ostream& out);
void PrintTimingTable(const coordinator::JobStatus& job, std::ostream& out);

/// "45s", "2m36s", "1h02m", "3d04h".
std::string FormatDuration(int64_t ms);
/// "512", "2.56k", "1.20M".
std::string FormatCount(double v);

}  // namespace coord::cli
