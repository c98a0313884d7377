// The coordinator's view of one coord-agent: every outbound RPC coordd makes to a
// node goes through this interface (style rule 3), so JobManager never sees grpcpp
// and tests inject an in-memory fake. Implementations must be callable from many
// threads at once (launch threads, watch threads, gRPC handler threads).
#pragma once

#include <functional>
#include <memory>

#include "common/hostfile.h"
#include "common/status.h"
#include "proto/agent.pb.h"

namespace coord::coordinator {

/// A running Watch stream. Destroying the handle cancels the stream and waits until
/// no callback of it runs any more, so callers may free what the callbacks use.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
  /// Asks the stream to stop; returns at once. No on_end is reported after Cancel.
  virtual void Cancel() = 0;
};

using AgentEventFn = std::function<void(const coord::agent::AgentEvent&)>;
/// Called once, from the stream's thread, when the stream ends by itself (agent gone,
/// network error, agent shutdown): the status says why.
using WatchEndFn = std::function<void(const Status&)>;
using LogBatchFn = std::function<void(const coord::agent::LogBatch&)>;
/// Polled by blocking calls (TailLogs with follow) to stop early.
using CancelledFn = std::function<bool()>;

class AgentClient {
 public:
  virtual ~AgentClient() = default;

  /// \param timeout_ms deadline of the call; every unary call has one, so nothing hangs.
  virtual StatusOr<coord::agent::PingReply> Ping(int timeout_ms) = 0;
  virtual StatusOr<coord::agent::ReservePortReply> ReservePort(
      const coord::agent::ReservePortRequest& request, int timeout_ms) = 0;
  virtual StatusOr<coord::agent::LaunchReply> Launch(const coord::agent::LaunchRequest& request,
                                                     int timeout_ms) = 0;
  virtual StatusOr<coord::agent::KillReply> Kill(const coord::agent::KillRequest& request,
                                                 int timeout_ms) = 0;
  virtual StatusOr<coord::agent::ListJobsReply> ListJobs(int timeout_ms) = 0;
  virtual StatusOr<coord::agent::CheckNodeReply> CheckNode(
      const coord::agent::CheckNodeRequest& request, int timeout_ms) = 0;
  virtual StatusOr<coord::agent::SharedTokensReply> SharedTokens(
      const coord::agent::SharedTokensRequest& request, int timeout_ms) = 0;
  /// Where the generation's ranks on the node are (flight records, process states).
  virtual StatusOr<coord::agent::RankSnapshotsReply> RankSnapshots(
      const coord::agent::RankSnapshotsRequest& request, int timeout_ms) = 0;

  /// Opens the agent's event stream: a snapshot (replay = true), then live events and a
  /// heartbeat every `heartbeat_ms`. Callbacks of one stream run one at a time, in order,
  /// on threads that are not the caller's (gRPC's callback threads for the real client).
  virtual std::unique_ptr<WatchHandle> Watch(int heartbeat_ms, AgentEventFn on_event,
                                             WatchEndFn on_end) = 0;

  /// Streams log batches into `on_batch` (on the calling thread) until the agent ends the
  /// stream, `cancelled()` turns true, or `timeout_ms` passes (0: no deadline, for follow).
  virtual Status TailLogs(const coord::agent::TailLogsRequest& request, int timeout_ms,
                          const LogBatchFn& on_batch, const CancelledFn& cancelled) = 0;

  /// For shutdown: ends the launch path's calls in flight (Ping, ReservePort, Launch,
  /// CheckNode, SharedTokens, TailLogs) with Cancelled at once, and every later one, so
  /// no thread waits out a deadline (a launch to a frozen node: minutes). Kill,
  /// ListJobs and RankSnapshots still run to their deadlines: a kill in flight must
  /// finish. Streams (Watch) are closed by their handles, not here.
  virtual void CancelCalls() {}
};

/// Makes the client for one hosts-file entry. Called once per agent target, lazily.
using AgentClientFactory = std::function<std::unique_ptr<AgentClient>(const HostEntry&)>;

}  // namespace coord::coordinator
