// env_check's results on the wire: CheckResult and the cluster report to and from
// their protobuf messages (agent.proto, coordinator.proto). The agent sends its
// node's results; coordd and coordctl turn them back into env_check values to
// compare and format them.
#pragma once

#include "env_check/check.h"
#include "env_check/cluster.h"
#include "proto/agent.pb.h"
#include "proto/coordinator.pb.h"

namespace coord::env_check {

coord::agent::CheckResult ToProto(const CheckResult& r);
CheckResult FromProto(const coord::agent::CheckResult& p);

coord::coordinator::ClusterCheck ToProto(const ClusterReport& report);
ClusterReport FromProto(const coord::coordinator::ClusterCheck& p);

}  // namespace coord::env_check
