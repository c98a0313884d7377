// Helpers for the gpt-rank end-to-end tests: where the demo data is (skip without
// it), a small fast job config on the Brown corpus, and reading JSON-lines files.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace gpt_rank::e2e {

inline std::string DataDir() {
  const char* d = std::getenv("COORD_DATA_DIR");
  if (d != nullptr && *d != '\0') return d;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.cache/coord";
}

// "" when the demo data is there, else why not (for GTEST_SKIP).
inline std::string MissingData() {
  for (const char* f : {"/brown/brown.jsonl", "/gpt2/encoder.json", "/gpt2/vocab.bpe"}) {
    if (!coord::PathExists(DataDir() + f)) {
      return DataDir() + f + " missing (scripts/fetch-demo-data.sh needs npm)";
    }
  }
  return "";
}

// A 2-layer GPT that trains at a few iterations per second on 2 cores, with
// dropout on and 2-way gradient accumulation, so every part of the state matters.
inline nlohmann::json SmallJob(const std::string& dir) {
  return {{"model",
           {{"num_layers", 2},
            {"hidden_size", 64},
            {"num_attention_heads", 4},
            {"seq_length", 32},
            {"max_position_embeddings", 32},
            {"hidden_dropout", 0.1},
            {"attention_dropout", 0.1}}},
          {"data",
           {{"train_data", DataDir() + "/brown/brown.jsonl"},
            {"vocab_file", DataDir() + "/gpt2/encoder.json"},
            {"merge_file", DataDir() + "/gpt2/vocab.bpe"},
            {"cache_dir", DataDir() + "/preprocessed"},
            {"split", "949,50,1"}}},
          {"training",
           {{"micro_batch_size", 4},
            {"global_batch_size", 8},
            {"train_iters", 30},
            {"lr", 3e-3},
            {"min_lr", 3e-4},
            {"lr_decay_style", "cosine"},
            {"lr_warmup_iters", 3},
            {"clip_grad", 1.0},
            {"weight_decay", 0.01},
            {"log_interval", 1},
            {"eval_interval", 10},
            {"eval_iters", 1},
            {"save", dir + "/save"},
            {"save_interval", 10},
            {"threads", 2}}}};
}

// SmallJob for multi-rank runs: 20 iterations of a global batch of 8 in micro-batches
// of 2, one thread per rank, small gradient buckets (several reductions per step).
inline nlohmann::json ParallelJob(const std::string& dir) {
  nlohmann::json job = SmallJob(dir);
  job["training"]["micro_batch_size"] = 2;
  job["training"]["global_batch_size"] = 8;
  job["training"]["train_iters"] = 20;
  job["training"]["eval_interval"] = 10;
  job["training"]["save_interval"] = 10;
  job["training"]["threads"] = 1;
  job["parallel"] = {{"bucket_cap_mb", 0.25}, {"collective_timeout_s", 120}};
  return job;
}

inline std::string WriteJob(const std::string& path, const nlohmann::json& job) {
  std::ofstream(path) << job.dump(2);
  return path;
}

inline std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// Iteration -> lm loss from a run's save_dir/metrics.jsonl. A resumed run repeats the
// iterations after its checkpoint: the last line for an iteration counts.
inline std::map<int64_t, double> LossPerIteration(const std::string& save_dir) {
  std::map<int64_t, double> out;
  for (const nlohmann::json& j : ReadJsonLines(save_dir + "/metrics.jsonl")) {
    if (j.contains("lm_loss") && j.contains("iteration")) {
      out[j["iteration"].get<int64_t>()] = j["lm_loss"].get<double>();
    }
  }
  return out;
}

// COORD_TEST_GPT_RANK: a gpt-rank from another build (tests/CMakeLists.txt).
inline std::string GptRank() {
#ifdef COORD_TEST_GPT_RANK
  return COORD_TEST_GPT_RANK;
#else
  return coord::testing::BinPath("gpt-rank");
#endif
}

// --- multi-rank runs: N `gpt-rank train` processes with torchrun's environment ------

struct RanksResult {
  std::vector<int> status;  // wait status per rank; -1 if it had to be killed
  std::vector<std::string> logs;
};

inline std::map<std::string, std::string> RankEnv(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)},       {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"},         {"MASTER_PORT", std::to_string(port)}};
}

// `world` ranks of argv, started and not waited for. Each dies with the test, even
// when ctest's timeout SIGKILLs it (Process: PR_SET_PDEATHSIG; harness_cleanup_test).
struct StartedRanks {
  std::vector<std::unique_ptr<coord::testing::Process>> procs;
  std::vector<std::string> logs;  // log_prefix-rankN.log
  bool ok = true;                 // false if a fork failed
};

inline StartedRanks StartRanks(const std::string& log_prefix, int world,
                               const std::vector<std::string>& argv,
                               const std::map<std::string, std::string>& extra_env = {}) {
  const int port = coord::testing::UnusedTcpPort();
  StartedRanks r;
  for (int rank = 0; rank < world; ++rank) {
    r.procs.push_back(std::make_unique<coord::testing::Process>());
    const std::string log = log_prefix + "-rank" + std::to_string(rank) + ".log";
    std::map<std::string, std::string> env = RankEnv(rank, world, port);
    env.insert(extra_env.begin(), extra_env.end());
    r.ok = r.procs.back()->Start(argv, log, env) && r.ok;
    r.logs.push_back(log);
  }
  return r;
}

// Runs `world` ranks of `gpt-rank train --config cfg` to completion.
inline RanksResult RunRanks(const coord::testing::TempDir& dir, const std::string& tag, int world, const std::string& cfg,
                     const std::vector<std::string>& sets, int timeout_ms = 120000,
                     const std::map<std::string, std::string>& extra_env = {}) {
  std::vector<std::string> argv = {GptRank(), "train", "--config", cfg};
  for (const std::string& s : sets) argv.insert(argv.end(), {"--set", s});
  StartedRanks started = StartRanks(dir.File(tag), world, argv, extra_env);
  EXPECT_TRUE(started.ok);
  RanksResult r;
  r.logs = started.logs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto& p : started.procs) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    r.status.push_back(p->Wait(std::max(left, 1)));
    p->Crash();  // no-op once it exited; kills a straggler
  }
  for (auto& log : r.logs) log = coord::testing::ReadAll(log);
  return r;
}

inline bool AllExitedZero(const RanksResult& r, std::string* why) {
  for (size_t i = 0; i < r.status.size(); ++i) {
    if (r.status[i] < 0 || !WIFEXITED(r.status[i]) || WEXITSTATUS(r.status[i]) != 0) {
      *why = "rank " + std::to_string(i) + " status " + std::to_string(r.status[i]) + ":\n" +
             r.logs[i].substr(r.logs[i].size() > 3000 ? r.logs[i].size() - 3000 : 0);
      return false;
    }
  }
  return true;
}

inline void ExpectSameLosses(const std::map<int64_t, double>& want, const std::map<int64_t, double>& got,
                      int64_t from, int64_t to, const std::string& what) {
  for (int64_t it = from; it <= to; ++it) {
    ASSERT_TRUE(want.count(it) && got.count(it)) << what << ": no loss for iteration " << it;
    const double a = want.at(it), b = got.at(it);
    EXPECT_LE(std::abs(a - b), 1e-5 * std::abs(a))
        << what << " iteration " << it << ": " << a << " vs " << b;
  }
}

}  // namespace gpt_rank::e2e
