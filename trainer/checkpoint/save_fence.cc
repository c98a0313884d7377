#include "trainer/checkpoint/save_fence.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/fs.h"
#include "common/json_file.h"

namespace trainer {
namespace {

using coord::Status;
using coord::StatusOr;

constexpr int kLockPollMs = 10;

// The owner recorded in save_dir; nullopt when there is no record yet. Whatever the
// file holds, a bad record is an error naming the file and the field, never a throw.
StatusOr<std::optional<SaveOwner>> ReadOwner(const std::string& save_dir) {
  const std::string path = coord::JoinPath(save_dir, kSaveOwnerFile);
  if (!coord::PathExists(path)) return std::optional<SaveOwner>();
  StatusOr<std::string> text = coord::ReadFile(path);
  if (!text.ok()) return text.status().WithContext("reading the checkpoint directory's owner");
  const std::string fix =
      "; it records which run saves checkpoints here: delete it if no job uses this directory";
  StatusOr<nlohmann::json> j = coord::ParseJson(*text, path);
  if (!j.ok()) return coord::InvalidArgument(j.status().message() + fix);
  auto bad = [&](const std::string& field, const std::string& expected, const nlohmann::json* got) {
    return coord::InvalidArgument(path + ": " + field + "expected " + expected + ", got " +
                                  (got == nullptr     ? "nothing"
                                   : got->is_number() ? got->dump()
                                                      : got->type_name()) +
                                  fix);
  };
  if (!j->is_object()) {
    return bad("", "{\"run_id\": string, \"restart_count\": integer >= 0}", &*j);
  }
  auto run_id = j->find("run_id");
  if (run_id == j->end() || !run_id->is_string()) {
    return bad("run_id: ", "a string", run_id == j->end() ? nullptr : &*run_id);
  }
  // Negative integers parse as number_integer, the others as number_unsigned.
  auto restart = j->find("restart_count");
  if (restart == j->end() || !restart->is_number_unsigned() ||
      restart->get<uint64_t>() > INT32_MAX) {
    return bad("restart_count: ", "an integer in [0, 2^31)",
               restart == j->end() ? nullptr : &*restart);
  }
  SaveOwner owner;
  owner.run_id = run_id->get<std::string>();
  owner.restart_count = coord::JsonGet<int>(*restart);  // in range: checked above
  return std::optional<SaveOwner>(owner);
}

Status WriteOwner(const std::string& save_dir, const SaveOwner& owner) {
  const nlohmann::json j = {{"run_id", owner.run_id}, {"restart_count", owner.restart_count}};
  return coord::WriteFileAtomic(coord::JoinPath(save_dir, kSaveOwnerFile), j.dump() + "\n");
}

// An exclusive fcntl lock on save_dir's lock file, released by the destructor (close).
class DirLock {
 public:
  static StatusOr<std::unique_ptr<DirLock>> Acquire(const std::string& save_dir, int timeout_ms) {
    const std::string path = coord::JoinPath(save_dir, kSaveLockFile);
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return coord::ErrnoStatus("open " + path, errno);
    std::unique_ptr<DirLock> lock(new DirLock(fd));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      struct flock fl = {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (fcntl(fd, F_SETLK, &fl) == 0) return lock;
      if (errno != EACCES && errno != EAGAIN && errno != EINTR) {
        return coord::ErrnoStatus("lock " + path, errno);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        struct flock who = {};
        who.l_type = F_WRLCK;
        who.l_whence = SEEK_SET;
        const bool known = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK;
        return coord::DeadlineExceeded(
            path + " stayed locked for " + std::to_string(timeout_ms) + " ms" +
            (known ? " by pid " + std::to_string(who.l_pid) : std::string()) +
            ": another rank is publishing a checkpoint here and does not finish (stopped?)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(kLockPollMs));
    }
  }
  ~DirLock() { close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

std::mutex g_owner_mu;
std::optional<SaveOwner> g_owner;  // guarded by g_owner_mu

}  // namespace

std::string SaveOwner::Describe() const {
  return "generation " + std::to_string(restart_count) +
         (run_id.empty() ? std::string(" (no run id)") : " of run '" + run_id + "'");
}

Status ClaimSaveDir(const std::string& save_dir, const SaveOwner& me) {
  RETURN_IF_ERROR(coord::MakeDirs(save_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<DirLock> lock, DirLock::Acquire(save_dir, 60000));
  ASSIGN_OR_RETURN(std::optional<SaveOwner> owner, ReadOwner(save_dir));
  if (owner && owner->run_id == me.run_id && owner->restart_count > me.restart_count) {
    return coord::FailedPrecondition(
        save_dir + ": " + owner->Describe() + " saves checkpoints here, and this process is " +
        me.Describe() +
        ", an older one: it must not write checkpoints (a rank of a node "
        "that was cut off, or that did not die when its generation was replaced)");
  }
  if (owner && *owner == me) return Status::Ok();
  return WriteOwner(save_dir, me);
}

Status PublishFenced(const std::string& save_dir, const SaveOwner& me,
                     const std::function<Status()>& publish, int lock_timeout_ms) {
  ASSIGN_OR_RETURN(std::unique_ptr<DirLock> lock, DirLock::Acquire(save_dir, lock_timeout_ms));
  ASSIGN_OR_RETURN(std::optional<SaveOwner> owner, ReadOwner(save_dir));
  if (!owner) {
    RETURN_IF_ERROR(WriteOwner(save_dir, me));
  } else if (!(*owner == me)) {
    return coord::FailedPrecondition("not published: " + owner->Describe() + " has taken over " +
                                     save_dir + " since this process (" + me.Describe() +
                                     ") started; its checkpoints stay as they are");
  }
  return publish();
}

void SetProcessSaveOwner(const SaveOwner& owner) {
  std::lock_guard<std::mutex> lock(g_owner_mu);
  g_owner = owner;
}

const SaveOwner* ProcessSaveOwner() {
  std::lock_guard<std::mutex> lock(g_owner_mu);
  return g_owner ? &*g_owner : nullptr;
}

}  // namespace trainer
