// The two progress deadlines of a RUNNING generation (coordd, monitor thread):
//   startup: from the launch until every rank has written its first progress record
//            (rendezvous, data, checkpoint load): launch.startup_timeout_s;
//   hang:    after that, the gap since the newest record from any rank: launch.hang_timeout_s.
// Start-up and a training step differ by minutes (a 100B checkpoint from NFS), so one
// timeout for both is either too slow to catch a hang or fires on a slow start. Pure
// functions of the plan and what was seen, unit-tested without clocks or agents.
#pragma once

#include <cstdint>
#include <vector>

#include "coordinator/job_plan.h"
#include "proto/coordinator.pb.h"

namespace coord::coordinator {

/// What coordd has seen of the current generation (monotonic milliseconds).
struct ProgressSeen {
  int64_t running_since_mono = 0;  // the generation became RUNNING (or coordd restarted)
  int64_t last_progress_mono = 0;  // the newest record from any rank; 0: none yet
  // Ranks still starting: not exited, no record seen from them; ascending.
  std::vector<int> starting;
};

/// The deadline in force. kind FAILURE_KIND_UNKNOWN: none (the timeout in force is 0).
struct ProgressDeadline {
  FailureKind kind = FAILURE_KIND_UNKNOWN;  // FAILURE_STARTUP or FAILURE_HANG
  int64_t expires_mono = 0;                 // when its timeout runs out
  int64_t fires_mono = INT64_MAX;           // expires_mono + slack: when coordd decides
};

/// While any rank is starting, the startup deadline (running_since + startup timeout);
/// then the hang deadline (the newest record, or running_since, + hang timeout). It fires
/// `slack_ms` (one heartbeat) late: records arrive with heartbeats, so one written just
/// after a heartbeat is only seen with the next.
ProgressDeadline NextProgressDeadline(const JobPlan& plan, const ProgressSeen& seen,
                                      int64_t slack_ms);

/// The Failure for deadline `d`, fired at `now_mono` (= `now_wall_ms` on coordd's wall
/// clock): kind, message naming the deadline and its launch key, and for a startup the
/// first starting rank and its node; occurred_ms is when the timeout ran out.
Failure ProgressFailure(const JobPlan& plan, const ProgressSeen& seen, const ProgressDeadline& d,
                        int64_t now_mono, int64_t now_wall_ms);

}  // namespace coord::coordinator
