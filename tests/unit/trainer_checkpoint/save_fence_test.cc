// Fenced checkpoint saves (save_fence.h): who may claim a save directory, who may
// publish into it, a lock held by another process, a corrupt record, and the
// checkpoint writers refusing to publish for a replaced generation (tracker and
// iteration directories untouched, no temporary left).
#include "trainer/checkpoint/save_fence.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "trainer/checkpoint/megatron_checkpoint.h"

namespace trainer {
namespace {

using coord::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(SaveFenceTest, AnOlderGenerationOfTheSameRunCannotClaimOrPublish) {
  TempDir dir;
  const SaveOwner g0{"job-1", 0}, g1{"job-1", 1};
  ASSERT_TRUE(ClaimSaveDir(dir.path(), g0).ok());
  ASSERT_TRUE(ClaimSaveDir(dir.path(), g1).ok());

  coord::Status st = ClaimSaveDir(dir.path(), g0);
  EXPECT_EQ(st.code(), coord::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), AllOf(HasSubstr("generation 1 of run 'job-1' saves checkpoints here"),
                                  HasSubstr("generation 0 of run 'job-1', an older one")));
  bool published = false;
  st = PublishFenced(dir.path(), g0, [&] {
    published = true;
    return coord::Status::Ok();
  });
  EXPECT_EQ(st.code(), coord::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("not published: generation 1 of run 'job-1' has taken over"));
  EXPECT_FALSE(published);
  EXPECT_TRUE(PublishFenced(dir.path(), g1, [&] {
                published = true;
                return coord::Status::Ok();
              }).ok());
  EXPECT_TRUE(published);
}

TEST(SaveFenceTest, AnotherRunTakesTheDirectoryOverAndTheOldRunIsFencedOut) {
  TempDir dir;
  const SaveOwner old_job{"job-1", 3}, new_job{"job-2", 0};
  ASSERT_TRUE(ClaimSaveDir(dir.path(), old_job).ok());
  ASSERT_TRUE(ClaimSaveDir(dir.path(), new_job).ok());  // a new job resuming from here
  coord::Status st = PublishFenced(dir.path(), old_job, [] { return coord::Status::Ok(); });
  EXPECT_THAT(st.message(), HasSubstr("generation 0 of run 'job-2' has taken over"));
}

TEST(SaveFenceTest, WithoutARecordThePublisherClaimsTheDirectory) {
  TempDir dir;
  const SaveOwner me{"job-1", 2};
  ASSERT_TRUE(PublishFenced(dir.path(), me, [] { return coord::Status::Ok(); }).ok());
  EXPECT_EQ(ClaimSaveDir(dir.path(), {"job-1", 1}).code(), coord::StatusCode::kFailedPrecondition);
}

TEST(SaveFenceTest, ACorruptRecordIsNamedWithWhatToDo) {
  TempDir dir;
  ASSERT_TRUE(coord::testing::WriteTextFile(dir.File(kSaveOwnerFile), "{\"run_id\": 7}"));
  coord::Status st = ClaimSaveDir(dir.path(), {"job-1", 0});
  EXPECT_EQ(st.code(), coord::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr(dir.File(kSaveOwnerFile)), HasSubstr("delete it if no job uses")));
}

// Numbers that do not fit, wrong types, deep nesting and invalid UTF-8: an error naming
// the file and the field, never an exception or undefined behaviour.
TEST(SaveFenceTest, HostileRecordsAreErrorsNamingTheFileAndField) {
  const struct {
    std::string text;
    const char* says;
  } cases[] = {
      {R"({"run_id": "a", "restart_count": 1e300})",
       "restart_count: expected an integer in [0, 2^31), got 1e+300"},
      {R"({"run_id": "a", "restart_count": 4294967296})", "restart_count: expected an integer"},
      {R"({"run_id": "a", "restart_count": -1})", "restart_count: expected an integer"},
      {R"({"run_id": "a", "restart_count": "3"})",
       "restart_count: expected an integer in [0, 2^31), got string"},
      {R"({"run_id": "a"})", "restart_count: expected an integer in [0, 2^31), got nothing"},
      {R"({"run_id": ["a"], "restart_count": 1})", "run_id: expected a string, got array"},
      {R"([1])", "expected {\"run_id\": string"},
      {R"({"run_id": "a", "restart_count": 1e400})", "the number 1e400 is out of range"},
      {std::string(100000, '['), "nested deeper than 64 levels"},
      {"{\"run_id\": \"a\xff\", \"restart_count\": 1}", "invalid JSON"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    ASSERT_TRUE(coord::testing::WriteTextFile(dir.File(kSaveOwnerFile), c.text));
    coord::Status st = ClaimSaveDir(dir.path(), {"job-1", 0});
    EXPECT_EQ(st.code(), coord::StatusCode::kInvalidArgument) << c.says;
    EXPECT_THAT(st.message(), AllOf(HasSubstr(dir.File(kSaveOwnerFile)), HasSubstr(c.says),
                                    HasSubstr("delete it if no job uses")));
  }
}

// fcntl locks are per process: the holder must be another one.
TEST(SaveFenceTest, ALockHeldByAnotherProcessTimesOutNamingItsPid) {
  TempDir dir;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = open(dir.File(kSaveLockFile).c_str(), O_RDWR | O_CREAT, 0644);
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0) _exit(1);
    (void)!write(ready[1], "x", 1);
    pause();  // until the parent kills it
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  bool published = false;
  coord::Status st = PublishFenced(
      dir.path(), {"job-1", 0},
      [&] {
        published = true;
        return coord::Status::Ok();
      },
      /*lock_timeout_ms=*/200);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(st.code(), coord::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(st.message(), HasSubstr("by pid " + std::to_string(child)));
  EXPECT_FALSE(published);
  // Released with its holder: the next publish goes through.
  EXPECT_TRUE(PublishFenced(dir.path(), {"job-1", 0}, [] { return coord::Status::Ok(); }).ok());
}

// The writers: a replaced generation writes its data but publishes nothing, and leaves
// neither its temporary directory nor a changed tracker behind.
TEST(SaveFenceTest, CheckpointWritersOfAReplacedGenerationPublishNothing) {
  TempDir dir;
  std::vector<float> p(64, 1.0f), m(64, 0.5f), v(64, 0.25f);
  TrainState state;
  state.iteration = 10;
  SetProcessSaveOwner({"job-1", 1});
  ASSERT_TRUE(ClaimSaveDir(dir.path(), {"job-1", 1}).ok());
  ASSERT_TRUE(SaveCheckpoint(dir.path(), state, {p.data(), m.data(), v.data(), p.size()}).ok());
  EXPECT_EQ(*coord::ReadFile(dir.File(kLatestIterationFile)), "10\n");

  ASSERT_TRUE(ClaimSaveDir(dir.path(), {"job-1", 2}).ok());  // the next generation started
  state.iteration = 12;
  coord::Status st = SaveCheckpoint(dir.path(), state, {p.data(), m.data(), v.data(), p.size()});
  EXPECT_EQ(st.code(), coord::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("generation 2 of run 'job-1' has taken over"));
  EXPECT_EQ(*coord::ReadFile(dir.File(kLatestIterationFile)), "10\n");
  EXPECT_FALSE(coord::PathExists(CheckpointIterDir(dir.path(), 12)));

  // Sharded: the generation's own temporary directory, removed when the install is refused.
  ASSERT_TRUE(BeginShardedSave(dir.path(), 12).ok());
  const std::string tmp = ShardedSaveTmpDir(dir.path(), 12);
  EXPECT_THAT(tmp, HasSubstr(".tmp-zero-g1-"));
  EXPECT_TRUE(coord::IsDirectory(tmp));
  st = InstallShardedSave(dir.path(), state, /*tp=*/0, /*pp=*/0);
  EXPECT_EQ(st.code(), coord::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_FALSE(coord::PathExists(tmp));
  EXPECT_FALSE(coord::PathExists(CheckpointIterDir(dir.path(), 12)));
  EXPECT_EQ(*coord::ReadFile(dir.File(kLatestIterationFile)), "10\n");
  const auto names = coord::ListDir(dir.path());
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name << " left behind";
  }
}

}  // namespace
}  // namespace trainer
