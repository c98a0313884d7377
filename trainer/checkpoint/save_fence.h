// Fenced checkpoint saves. A rank of an old generation of a job (on a node that was cut
// off, or slow to die) must never publish a checkpoint once a newer generation runs:
// it would replace the newer generation's iteration directory or move
// latest_checkpointed_iteration.txt back to its own, and the next restart would resume
// from the wrong place.
//
// The save directory records who saves there now, in coord_save_owner.json:
//   {"run_id": "<TORCHELASTIC_RUN_ID>", "restart_count": N}
// Rank 0 of each generation claims the directory when it starts (ClaimSaveDir). A
// checkpoint is published, i.e. its iteration directory renamed into place and the
// tracker file replaced (SaveCheckpoint, InstallShardedSave), only while the record
// still names this process's owner (PublishFenced). The check and the publish happen
// under an fcntl lock on the directory's .coord_save.lock, so a claim cannot slip in
// between. POSIX locks work on NFS (v4, or v3 with lockd), where checkpoints live.
//
// Claims: the same run with a lower restart count is refused (a stale rank restarting
// late); another run takes the directory over (a new job resuming from it: the old
// job's ranks, if any still live, can no longer publish there).
#pragma once

#include <functional>
#include <string>

#include "common/status.h"

namespace trainer {

inline constexpr char kSaveOwnerFile[] = "coord_save_owner.json";
inline constexpr char kSaveLockFile[] = ".coord_save.lock";

struct SaveOwner {
  std::string run_id;     // "" outside a launcher that names runs
  int restart_count = 0;  // the generation within the run
  bool operator==(const SaveOwner& o) const {
    return run_id == o.run_id && restart_count == o.restart_count;
  }
  // "generation 3 of run 'gpt-1a2b3c'"
  std::string Describe() const;
};

// Records `me` as the owner of save_dir (created if missing). FailedPrecondition, naming
// both, when a newer generation of the same run owns it already.
coord::Status ClaimSaveDir(const std::string& save_dir, const SaveOwner& me);

// Runs `publish` while save_dir's record names `me` (or names nobody: then `me` claims
// it first), holding the directory's lock. FailedPrecondition, naming the current
// owner, otherwise: nothing is published. `lock_timeout_ms` bounds the wait for a lock
// held by another process (its pid is named in the error).
coord::Status PublishFenced(const std::string& save_dir, const SaveOwner& me,
                            const std::function<coord::Status()>& publish,
                            int lock_timeout_ms = 60000);

// This process's owner, used by the checkpoint writers (megatron_checkpoint.h). Unset
// (the default, e.g. tools and tests that write checkpoints outside a training run):
// saves are not fenced. Set once by the trainer before its first save.
void SetProcessSaveOwner(const SaveOwner& owner);
const SaveOwner* ProcessSaveOwner();  // nullptr when unset

}  // namespace trainer
