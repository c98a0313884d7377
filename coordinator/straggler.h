// Straggler detection for one job generation (coordd): which rank is persistently
// slower than its peers. Every rank reports each iteration's timings in its progress
// records (compute = forward-backward minus data loading and minus waiting for peers:
// in synchronous training every rank's step takes as long as the slowest one's, so
// the step time cannot say who is slow, the compute time can). For each of a rank's
// last `window` iterations, its compute time over the median of its peers' at that
// same iteration (peers: the other ranks of the same pipeline stage, which do the same
// work); its score is the median of these ratios, 1.0 being as fast as them. Pairing
// iterations cancels what all ranks share (a slow first iteration, a busy machine),
// and the median over the window needs a majority of slow iterations. A rank whose
// score exceeds `threshold` is named, and stays named until its score falls below
// `clear_threshold` (so a score hovering at the threshold does not flap); it is named
// once its score has stayed above the threshold through `confirm` more iterations, so
// a burst that tips the median for an iteration or two (a busy machine) names nobody. NVIDIA's resiliency extension scores ranks the same way relative to
// each other (as fastest/rank, 0..1); here the reference is the peers' median, so one
// fast outlier does not make everyone else slow.
//
// Pure and clock-free (callers pass wall times for the record); not thread-safe:
// JobManager holds one per job under its mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "proto/agent.pb.h"

namespace coord::coordinator {

struct StragglerOptions {
  int window = 20;              // iterations per rank in its median
  int min_samples = 10;         // a rank is scored once this many have peers to compare
  double threshold = 1.2;       // named above this score; <= 0: detection off
  double clear_threshold = 1.1; // no longer named below this one
  int confirm = 3;              // ... above it through this many more of its iterations
};

/// One rank's view over its window (medians, ms).
struct RankScore {
  int rank = 0;
  int stage = 0;
  int64_t iteration = -1;  // the newest sample's
  int samples = 0;
  double step_ms = 0, compute_ms = 0, wait_ms = 0, data_ms = 0, optimizer_ms = 0;
  double peers_compute_ms = 0;  // the median over the window of its peers' median; 0: none
  double score = 0;             // median of compute / peers' (iteration by iteration); 0:
                                // not scored (too few iterations with peers to compare)
};

/// A rank named as a straggler.
struct StragglerRecord {
  int rank = 0;
  double score = 0;
  double compute_ms = 0, peers_compute_ms = 0;
  int64_t since_iteration = 0;  // its newest sample when it was named
  int64_t since_ms = 0;         // when it was named (the caller's wall clock)
};

class StragglerDetector {
 public:
  explicit StragglerDetector(const StragglerOptions& options = {});

  /// Forgets everything (a new generation).
  void Reset();
  /// One iteration of one rank. Ignored (false, counted) when a time is negative, not
  /// finite or absurd (> 1e9 ms), the rank is negative, or the iteration is not newer
  /// than the rank's last (a record read twice, or an agent replaying it).
  bool Add(int rank, int stage, const coord::agent::IterationTiming& timing);
  /// Recomputes the scores and who is named; `now_ms` stamps newly named ranks.
  void Update(int64_t now_ms);

  const std::vector<RankScore>& scores() const { return scores_; }   // by rank
  const std::vector<StragglerRecord>& stragglers() const { return named_; }  // by rank
  int64_t ignored_samples() const { return ignored_; }
  const StragglerOptions& options() const { return options_; }

 private:
  struct Sample {
    int64_t iteration;
    double step_ms, compute_ms, wait_ms, data_ms, optimizer_ms;
  };
  struct RankWindow {
    int stage = 0;
    std::deque<Sample> samples;  // oldest first, at most options_.window
    int64_t above_since = -1;    // its iteration when its score went above; -1: not above
  };

  StragglerOptions options_;
  std::map<int, RankWindow> ranks_;
  std::vector<RankScore> scores_;
  std::vector<StragglerRecord> named_;
  int64_t ignored_ = 0;
};

}  // namespace coord::coordinator
