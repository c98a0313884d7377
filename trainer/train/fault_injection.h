// gpt-rank's fault-injection hooks for tests and benchmarks, read from the
// environment once at set-up (all unset in normal runs):
//   GPT_RANK_INJECT_OVERFLOW="3,7"      an inf gradient at these iterations (every rank)
//   GPT_RANK_INJECT_STOP="2:3"          pipeline stage 2 stops itself (SIGSTOP) as it
//                                       loads micro-batch 1 of iteration 3
//   GPT_RANK_INJECT_DELAY_MS="1:50"     rank 1 computes 50 ms longer every iteration (a
//                                       straggler); "1:50@20" from iteration 20 on;
//                                       several: "1:50,3:20"
//   GPT_RANK_INJECT_HANG="2:5"          rank 2 stops itself (SIGSTOP) inside its first
//                                       data-parallel collective of iteration 5, once
//                                       the collective is in its flight record
//   GPT_RANK_INJECT_EVENT_WRITE_FAULT=2500  rank 0's TensorBoard writes fill the disk after
//                                       2500 bytes (read in tensorboard_log.cc, where the
//                                       event writer is opened)
// Malformed values are InvalidArgument naming the variable and the expected form.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gpt_rank::train {

struct InjectedDelay {
  int rank = -1;
  int64_t ms = 0;
  int64_t from_iteration = 1;
};

struct FaultInjection {
  std::vector<int64_t> overflow_at;  // GPT_RANK_INJECT_OVERFLOW
  std::pair<int, int64_t> stop{-1, -1};  // GPT_RANK_INJECT_STOP: stage, iteration
  std::vector<InjectedDelay> delays;     // GPT_RANK_INJECT_DELAY_MS
  std::pair<int, int64_t> hang{-1, -1};  // GPT_RANK_INJECT_HANG: rank, iteration

  // The delay of `rank` at iteration `it` (0: none).
  int64_t DelayMs(int rank, int64_t it) const;
  // Sleeps for it (saying so in the log the first time).
  void MaybeDelay(int rank, int64_t it);

 private:
  bool delay_announced_ = false;
};

coord::StatusOr<FaultInjection> FaultInjectionFromEnv();

}  // namespace gpt_rank::train
