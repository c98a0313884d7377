// What a job spec asks of each node, as a CheckContext. Reads only what the
// checks need and leaves validation of the rest to ParseJobSpec and the trainer,
// except the optional "env_check" section, which belongs to us:
//   "env_check": {"shared_path": "/cfs", "shared_fs_types": ["nfs4"],
//                 "min_shm_gb": 8, "min_free_disk_gb": 50, "probe_deadline_s": 5,
//                 "cuda_runtime_version": 12040}
// The job needs GPUs when launch.gpus is true, training.fp16/bf16 is true (the
// trainer has no CPU half precision), or training/parallel "backend" is "cuda";
// only then is launch.nproc_per_node a GPU count the node must have.
// launch.command's first word is the program checked on every node. The free
// space wanted where checkpoints go is two checkpoints of the model (below),
// unless env_check.min_free_disk_gb says otherwise.
// training.save becomes checkpoint_dir with ${VAR} / ${VAR:-default} expanded
// from this process's environment, as gpt-rank will expand it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "env_check/check.h"

namespace coord::env_check {

// `path` names the file in messages ("job.json:3:14: syntax error ...",
// "job.json: env_check.min_shm_gb: expected a non-negative number, got \"8\"").
StatusOr<CheckContext> ContextFromJob(const std::string& job_json_text, const std::string& path);

// The size of one checkpoint of the "model" section (fp32 weights and Adam's two
// moments, GPT-2's padded vocabulary); 0 when the section gives no size. The
// checkpoint_disk check then asks for two of them free: the one being written
// while the latest stays.
uint64_t EstimateCheckpointBytes(const nlohmann::json& model);

// ${VAR} and ${VAR:-default} (defaults may nest); unset VAR expands to "".
std::string ExpandEnvVars(const std::string& text);

}  // namespace coord::env_check
