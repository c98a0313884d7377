// The hang report: when coordd declares a job hung it asks every node's agent where
// each rank is (RankSnapshots: the ranks' flight records and process states) before
// it kills the generation, and this file turns the answers into one line for the
// failure record:
//   "ranks 0, 2-3 in all_reduce #12 (dp, 1.2 MiB) for 31 s, in backward on nodes
//    127.0.0.2, 127.0.0.3; rank 1 (stopped) in all_reduce #12 (dp, 1.2 MiB) for 31 s,
//    in backward on node 127.0.0.2"
// (a pipeline peer is named by its stage: "recv #40 (pp, from stage 2, 128.0 KiB)").
// Ranks that are in the same place are listed together; a rank in a different
// collective, behind in sequence, stopped, or outside any collective stands out.
// Pure functions: unit-tested on made-up snapshots.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "proto/agent.pb.h"

namespace coord::coordinator {

/// One node's answer (or why there is none).
struct NodeSnapshots {
  std::string name;  // how messages name the node ("127.0.0.2", or host:port)
  Status status;     // the RPC's
  coord::agent::RankSnapshotsReply reply;
  std::vector<int> ranks;  // the node's ranks in the job (for those with no answer)
};

/// Where one rank is, in words: `where` ("in all_reduce #12 (dp, 1.2 MiB)", "(stopped)
/// in backward (micro-batch 1)", "without a flight record"), for how long (-1:
/// unknown), and `then` (", in backward" for the phase around a collective, ", after
/// all_reduce #11" for the last one outside any). Ranks with the same words are in
/// the same place.
struct RankPlace {
  std::string where;
  int64_t for_ms = -1;
  std::string then;
  std::string Key() const { return where + then; }
  std::string Text() const;  // "in all_reduce #12 (dp, 1.2 MiB) for 31 s, in backward"
};
RankPlace DescribeRank(const coord::agent::RankSnapshot& s);

/// The report line: groups of ranks in the same place, lowest rank first, each with
/// its node(s); nodes that did not answer say so. "" when no node answered at all.
std::string SummarizeHang(const std::vector<NodeSnapshots>& nodes);

/// "0-2, 4, 6-7" (ascending, duplicates ignored).
std::string RankRanges(std::vector<int> ranks);
/// "512 B", "1.5 KiB", "4.0 MiB", "2.0 GiB".
std::string FormatBytes(uint64_t bytes);

}  // namespace coord::coordinator
