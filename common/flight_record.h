// A rank's flight record: where it is (iteration, phase) and its last collectives
// (operation, group, bytes, sequence number, started/finished), kept in a small
// fixed-size file that gpt-rank maps and updates in place and coord-agent reads
// without the rank's help, so a hung, SIGSTOPped or spinning rank still says where it
// is (PyTorch's flight recorder, read live instead of dumped after the fact).
//
// Writer: one process (gpt-rank; its training and reducer threads, serialized by a
// mutex). Readers: any process (the agent), any time. The file holds two copies of the
// state, each behind a sequence counter (odd while being written): the writer updates
// copy 0, then copy 1 (Linux's seqcount latch), so a writer stopped halfway through an
// update leaves the other copy whole and the reader always gets a consistent state.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

// What the rank's training loop is doing (as coarse as the loop sets it cheaply).
enum class RankPhase : uint8_t {
  kUnknown = 0,
  kStarting,     // set-up, rendezvous, checkpoint load
  kDataLoading,  // reading a micro-batch
  kForward,
  kBackward,
  kForwardBackward,  // a pipeline schedule: forwards and backwards interleaved
  kOptimizer,    // grad norm, clipping, the update, ZeRO's gathers
  kEvaluation,
  kCheckpoint,
  kFinished,
};
// "data loading", "forward", ... ("unknown" for a value this build does not know).
const char* RankPhaseName(RankPhase phase);

enum class CollectiveOp : uint8_t {
  kNone = 0,
  kAllReduce,
  kReduceScatter,
  kAllGather,
  kBroadcast,
  kBarrier,
  kSend,
  kRecv,
  kSendRecv,  // a batch with sends and receives
};
// "all_reduce", "reduce_scatter", ... ("unknown" otherwise).
const char* CollectiveOpName(CollectiveOp op);

struct CollectiveRecord {
  uint64_t seq = 0;  // 1, 2, ... over the process's life, every group together
  CollectiveOp op = CollectiveOp::kNone;
  std::string group;  // "tp", "dp", "pp", "world", "embedding"
  uint64_t bytes = 0;
  int32_t peer = -1;  // send/recv: the peer's rank in the group (its first op's)
  int64_t started_ms = 0;   // wall clock
  int64_t finished_ms = 0;  // 0: still in flight
  bool failed = false;
};

struct FlightSnapshot {
  int32_t rank = -1;
  int32_t pid = 0;
  int64_t iteration = 0;  // the iteration in progress (completed + 1 while training)
  RankPhase phase = RankPhase::kUnknown;
  int32_t micro_batch = -1;     // within the iteration, -1: none
  int64_t phase_since_ms = 0;   // wall clock
  uint64_t collectives = 0;     // collectives begun so far (the newest seq)
  std::vector<CollectiveRecord> recent;  // the last kFlightRing, oldest first
  // The newest collective not finished (nullptr: none in flight).
  const CollectiveRecord* InFlight() const;
};

inline constexpr int kFlightRing = 32;

// The writer. Thread-safe.
class FlightRecorder {
 public:
  // Creates (or truncates) `path` and maps it; "" keeps the record in memory only
  // (Snapshot still works). Fails when the file cannot be created or mapped.
  static StatusOr<std::unique_ptr<FlightRecorder>> Create(const std::string& path, int rank);
  ~FlightRecorder();
  FlightRecorder(const FlightRecorder&) = delete;
  FlightRecorder& operator=(const FlightRecorder&) = delete;

  const std::string& path() const { return path_; }
  void SetIteration(int64_t iteration);
  void SetPhase(RankPhase phase, int32_t micro_batch = -1);
  // Returns the collective's seq, for EndCollective. `group` is copied (at most 11 bytes).
  uint64_t BeginCollective(CollectiveOp op, const char* group, uint64_t bytes, int32_t peer = -1);
  void EndCollective(uint64_t seq, bool ok);
  FlightSnapshot Snapshot() const;

  struct Body;  // the file's state (flight_record.cc)
  struct File;

 private:
  FlightRecorder(std::string path, File* file, size_t size, int rank);
  void PublishLocked();  // copies body_ into both copies of the file

  const std::string path_;
  File* file_ = nullptr;  // the mapping (null: memory only)
  size_t size_ = 0;
  mutable std::mutex mu_;
  std::unique_ptr<Body> body_;  // guarded by mu_: the newest state
  uint64_t publishes_ = 0;      // guarded by mu_
};

// Reads a flight record written by another process. NotFound when there is none,
// InvalidArgument when the file is not one (wrong magic, version or size),
// Unavailable when no consistent copy could be read (a writer racing every try).
StatusOr<FlightSnapshot> ReadFlightRecord(const std::string& path);

// For tests of the latch: marks copy `copy` (0 or 1) of the file as being written
// (its counter odd), as a writer stopped in the middle of an update leaves it.
Status MarkFlightCopyTornForTest(const std::string& path, int copy);

}  // namespace coord
