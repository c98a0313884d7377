// Human output of coordctl: job status tables and log-line prefixes.
#pragma once

#include <ostream>
#include <string>

#include "proto/coordinator.pb.h"

namespace coord::cli {

std::string JobStateName(coordinator::JobState state);
bool IsTerminal(coordinator::JobState state);
// "[host:rank] text" (the node as named in the hosts file).
std::string FormatLogLine(const coordinator::LogLine& line);
// The full `coordctl status` text.
// "9992 running, 8 ended otherwise (...)": the whole job's ranks, when status is paged.
std::string RankCountsLine(const coordinator::JobCounts& counts);
// "1249 launched, 1 lost": the active nodes by state.
std::string NodeCountsLine(const coordinator::JobCounts& counts);
void PrintJobStatus(const coordinator::JobStatus& job, std::ostream& out);
// One line: "job demo-1a2b3c FAILED: rank 3 on 127.0.0.3 exited with code 1".
std::string OneLineSummary(const coordinator::JobStatus& job);

}  // namespace coord::cli
