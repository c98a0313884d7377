// The job spec (`--config X.json`): one JSON file. This file owns parsing and
// validation of what the control plane needs (the "launch" section) and the
// top-level key check; the trainer validates "model"/"data"/"training"/"parallel".
//
// Every problem is reported with the file, the JSON path and what was expected:
//   job.json: launch.nproc_per_node: expected a positive integer, got "8"
// Syntax errors give line and column (common/json_file.h). Unknown keys are warnings with a
// did-you-mean ("launch.nproc_per_nod: unknown key; did you mean nproc_per_node?").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace coord {

struct LaunchSpec {
  int nproc_per_node = 0;                  // 0: not given (use hosts' slots, else 1)
  int master_port = 0;                     // 0: node 0's agent picks a free port
  std::map<std::string, std::string> env;  // extra environment for every rank
  std::vector<std::string> command;        // argv; a string command becomes {"/bin/sh","-c",cmd}
  std::string workdir;                     // empty: the submitter's cwd
  int max_restarts = 0;                    // restarts after a failure, from the latest checkpoint
  int restart_backoff_ms = 1000;           // before restart k: this x 2^(k-1), at most 60 s
  int hang_timeout_s = 0;                  // 0: no hang detection
  // From a generation's launch until every rank has written its first progress record
  // (rendezvous, data, checkpoint load); hang_timeout_s bounds the gaps after that.
  // 0: no startup deadline. Absent: DefaultStartupTimeoutS(hang_timeout_s).
  int startup_timeout_s = 0;
  int kill_grace_ms = 5000;                // SIGTERM -> SIGKILL grace (launch.kill_grace_s)
  // launch.nnodes, torchrun's: N, or "MIN:MAX" (elastic: a failed node without a spare
  // leaves the job on fewer nodes, down to MIN). 0: every host in the hosts file. Hosts
  // beyond MAX are spares that replace a failed node.
  int min_nodes = 0;
  int max_nodes = 0;
};

struct JobSpec {
  LaunchSpec launch;
  std::string name;         // optional "name"
  std::string source_path;  // the file it came from (for messages)
  std::string json_text;    // the full text, kept for the trainer and the journal
};

struct JobSpecResult {
  JobSpec spec;
  std::vector<std::string> warnings;  // each names the file and JSON path
};

// launch.startup_timeout_s when the spec leaves it out: max(600, hang_timeout_s) with hang
// detection on, else 0 (a job that promises no progress records gets no deadline for one).
int DefaultStartupTimeoutS(int hang_timeout_s);

// Parses and validates. `path` is used in messages only.
StatusOr<JobSpecResult> ParseJobSpec(const std::string& json_text, const std::string& path);
StatusOr<JobSpecResult> LoadJobSpec(const std::string& path);

// The candidate closest to `word` by edit distance if it is close enough to be
// a likely typo (distance <= max(1, len/3)); empty otherwise.
std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace coord
