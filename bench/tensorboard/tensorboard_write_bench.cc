// Times what TensorBoard adds to one training iteration on rank 0: TensorBoardLog's
// OnIteration (12 scalar events, tensorboard_log_interval 1: the most frequent
// setting) and OnLogLine (2 events), each batch serialized, framed, CRC'd and
// appended with one pwrite to a real file in a temp dir. Prints one JSON object.
// Usage: tensorboard_write_bench [ITERATIONS]   (bench/tensorboard_bench.py runs it)
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "common/fs.h"
#include "trainer/train/tensorboard_log.h"

int main(int argc, char** argv) {
  const int64_t iters = argc > 1 ? std::atoll(argv[1]) : 20000;
  char tmpl[] = "/tmp/tb-write-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  gpt_rank::train::TrainingConfig tr;
  tr.tensorboard_dir = dir;
  tr.log_interval = 1;
  tr.train_iters = iters;
  tr.global_batch_size = 8;
  auto tb = gpt_rank::train::TensorBoardLog::Open(tr, 1);
  if (!tb.ok()) {
    std::fprintf(stderr, "%s\n", tb.status().ToString().c_str());
    return 1;
  }
  gpt_rank::train::IterationRecord r;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 1; it <= iters; ++it) {
    (*tb)->OnIteration({it, 8 * it, 10.0 / static_cast<double>(it), 1.5, 1e-3, 0.0});
    r.iteration = it;
    r.elapsed_ms = 100.0 + static_cast<double>(it % 7);
    r.tflops = 0.5;
    (*tb)->OnLogLine(r);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto size = coord::ReadFile((*tb)->writer().path());
  std::printf("{\"iterations\": %lld, \"us_per_iteration\": %.3f, \"bytes_per_iteration\": %.1f}\n",
              static_cast<long long>(iters), 1e6 * s / static_cast<double>(iters),
              size.ok() ? static_cast<double>(size->size()) / static_cast<double>(iters) : 0.0);
  tb->reset();
  (void)coord::RemoveTree(dir);
  return 0;
}
