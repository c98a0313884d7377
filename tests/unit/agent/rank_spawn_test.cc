// RankSpawner (agent/rank_spawn.h) starting real programs: what the rank gets (stdio,
// progress fd, workdir, session, signals, descriptors) and how each step's failure is
// reported. Every child is waited for by PID.
#include "agent/rank_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "tests/support/temp_dir.h"

namespace coord::agent {
namespace {

class RankSpawnTest : public ::testing::Test {
 protected:
  // Argv and envp as the supervisor holds them: char* into strings that outlive the spawn.
  // Output goes to out_, err_ and progress_ (a test may point them elsewhere first);
  // `spawner` is for a test that needs one made after it changed the signals.
  SpawnResult Spawn(std::vector<std::string> argv, const std::string& workdir,
                    const std::string& cgroup_procs = "", RankSpawner* spawner = nullptr) {
    argv_strings_ = std::move(argv);
    argv_.clear();
    for (auto& a : argv_strings_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    env_strings_ = {"PATH=/usr/bin:/bin", "COORD_TEST=1"};
    envp_.clear();
    for (auto& e : env_strings_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
    RankExec exec;
    exec.exe = argv_strings_[0].c_str();
    exec.argv = argv_.data();
    exec.envp = envp_.data();
    exec.cgroup_procs = cgroup_procs.c_str();
    exec.out_path = out_.c_str();
    exec.err_path = err_.c_str();
    exec.progress_path = progress_.c_str();
    exec.workdir = workdir.c_str();
    return (spawner != nullptr ? spawner : &spawner_)->Spawn(exec);
  }

  // Waits for a spawned child by its PID and returns its exit code (-signal if killed).
  static int Wait(int pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  static std::string Read(const std::string& path) {
    StatusOr<std::string> text = ReadFile(path);
    return text.ok() ? *text : "<missing " + path + ">";
  }

  testing::TempDir dir_;
  std::vector<std::string> argv_strings_, env_strings_;
  std::vector<char*> argv_, envp_;
  std::string out_ = dir_.File("r.out"), err_ = dir_.File("r.err"),
              progress_ = dir_.File("r.progress");
  RankSpawner spawner_;
};

TEST_F(RankSpawnTest, RankGetsItsFilesWorkdirAndEnvironment) {
  const std::string work = dir_.File("work");
  ASSERT_TRUE(MakeDirs(work, 0755).ok());
  SpawnResult r = Spawn({"/bin/sh", "-c",
                         "echo out; echo err >&2; echo progress >&3; pwd; echo $COORD_TEST; "
                         "read line; echo \"stdin:$line.\""},
                        work);
  ASSERT_GT(r.pid, 0) << SpawnStageName(r.failed) << ": " << r.err;
  EXPECT_EQ(Wait(r.pid), 0);
  EXPECT_EQ(Read(out_), "out\n" + work + "\n1\nstdin:.\n");
  EXPECT_EQ(Read(err_), "err\n");
  EXPECT_EQ(Read(progress_), "progress\n");
}

TEST_F(RankSpawnTest, RankStartsInItsOwnSessionWithDefaultSignalsAndNoneBlocked) {
  // Ignored and blocked here, as in the supervisor: neither may reach the rank. The
  // spawner asks the dispositions when it is made, so this test makes its own.
  struct sigaction ign = {}, old_term = {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGTERM, &ign, &old_term);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, &old_mask);
  RankSpawner spawner;
  SpawnResult r = Spawn({"/bin/sleep", "30"}, "/", "", &spawner);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  ASSERT_GT(r.pid, 0) << SpawnStageName(r.failed) << ": " << r.err;
  const std::string status = Read("/proc/" + std::to_string(r.pid) + "/status");
  EXPECT_NE(status.find("\nSigIgn:\t0000000000000000\n"), std::string::npos) << status;
  EXPECT_NE(status.find("\nSigBlk:\t0000000000000000\n"), std::string::npos) << status;
  EXPECT_EQ(getsid(r.pid), r.pid);
  kill(r.pid, SIGKILL);
  EXPECT_EQ(Wait(r.pid), -SIGKILL);
}

TEST_F(RankSpawnTest, NoDescriptorOfTheSupervisorReachesTheRank) {
  const int null_fd = open("/dev/null", O_RDONLY);
  const int leak = fcntl(null_fd, F_DUPFD, 50);  // not CLOEXEC on purpose
  close(null_fd);
  ASSERT_GE(leak, 50);
  SpawnResult r = Spawn({"/bin/sh", "-c", "ls /proc/$$/fd"}, "/");
  close(leak);
  ASSERT_GT(r.pid, 0);
  EXPECT_EQ(Wait(r.pid), 0);
  // 0-2, the progress fd 3, and whatever the shell opens for `ls` (nothing above 9).
  const std::string fds = Read(out_);
  EXPECT_EQ(fds.find("\n" + std::to_string(leak) + "\n"), std::string::npos) << fds;
  EXPECT_EQ(fds.rfind("0\n1\n2\n3\n", 0), 0u) << fds;
}

TEST_F(RankSpawnTest, EachStepThatFailsIsNamedWithItsErrno) {
  SpawnResult r = Spawn({dir_.File("no-such-program")}, "/");
  EXPECT_EQ(r.pid, -1);
  EXPECT_EQ(r.failed, SpawnStage::kExec);
  EXPECT_EQ(r.err, ENOENT);

  ASSERT_TRUE(WriteFileAtomic(dir_.File("not-executable"), "#!/bin/sh\n").ok());
  r = Spawn({dir_.File("not-executable")}, "/");
  EXPECT_EQ(r.failed, SpawnStage::kExec);
  EXPECT_EQ(r.err, EACCES);

  r = Spawn({"/bin/true"}, dir_.File("no-such-workdir"));
  EXPECT_EQ(r.failed, SpawnStage::kChdir);
  EXPECT_EQ(r.err, ENOENT);

  r = Spawn({"/bin/true"}, "/", dir_.File("no-such-cgroup/cgroup.procs"));
  EXPECT_EQ(r.failed, SpawnStage::kCgroup);
  EXPECT_EQ(r.err, ENOENT);
  EXPECT_STREQ(SpawnStageName(r.failed), "join cgroup");

  // The spawner is still usable after failures, and reaped every failed child.
  r = Spawn({"/bin/true"}, "/");
  ASSERT_GT(r.pid, 0);
  EXPECT_EQ(Wait(r.pid), 0);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(RankSpawnTest, AnUnwritableLogIsAStdioFailure) {
  out_ = dir_.File("missing-dir/r.out");
  SpawnResult r = Spawn({"/bin/true"}, "/");
  EXPECT_EQ(r.pid, -1);
  EXPECT_EQ(r.failed, SpawnStage::kStdio);
  EXPECT_EQ(r.err, ENOENT);
}

}  // namespace
}  // namespace coord::agent
