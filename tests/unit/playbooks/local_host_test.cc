// Unit tests for LocalHost (playbooks/runner/local_host.h), the RemoteHost the
// runner's tests and `--connection local` use: both streams captured without a
// deadlock on big output, exit status and signals, the deadline killing the
// whole process group (verified gone), stdin from /dev/null, concurrent use,
// and atomic uploads with exact modes. Works in a fresh /tmp directory.
#include "playbooks/runner/local_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "tests/support/temp_dir.h"

namespace coord::playbooks {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class LocalHostTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(dir_, "/tmp") << "could not make a temporary directory"; }

  CommandResult RunOk(const std::string& command, milliseconds timeout = milliseconds(10000)) {
    StatusOr<CommandResult> r = host_.Run(command, timeout);
    EXPECT_TRUE(r.ok()) << command << ": " << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  }

  LocalHost host_{"local"};
  // A fresh directory per test, removed with the fixture.
  coord::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

// A process is gone when it does not exist or is a zombie nobody reaped yet
// (an orphan's reaper may be a container's init that reaps lazily).
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren == std::string::npos || text.substr(paren + 2, 1) == "Z";
}

TEST_F(LocalHostTest, CapturesBothStreamsAndTheExitStatus) {
  EXPECT_EQ(host_.name(), "local");
  CommandResult r = RunOk("echo out; echo err >&2; exit 3");
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.exit_signal, "");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_TRUE(RunOk("true").ok());
  // /bin/sh -c semantics: pipes, variables, quoting.
  EXPECT_EQ(RunOk("x='a b'; printf '%s|' $x | tr a A").stdout_text, "A|b|");
}

TEST_F(LocalHostTest, ReportsTheSignal) {
  CommandResult r = RunOk("kill -TERM $$");
  EXPECT_EQ(r.exit_status, -1);
  EXPECT_EQ(r.exit_signal, "TERM");
  EXPECT_FALSE(r.ok());
}

TEST_F(LocalHostTest, BigOutputOnBothStreamsDoesNotDeadlock) {
  // 3 MB to stderr before anything on stdout, then 3 MB to stdout: a reader
  // that blocks on one pipe while the other fills would hang here.
  CommandResult r = RunOk(
      "head -c 3000000 /dev/zero | tr '\\0' e >&2; head -c 3000000 /dev/zero | tr '\\0' o; "
      "head -c 1000 /dev/zero | tr '\\0' e >&2");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.stdout_text.size(), 3000000u);
  EXPECT_EQ(r.stderr_text.size(), 3001000u);
  EXPECT_EQ(r.stdout_text.find_first_not_of('o'), std::string::npos);
  EXPECT_EQ(r.stderr_text.find_first_not_of('e'), std::string::npos);
}

TEST_F(LocalHostTest, StdinIsDevNull) {
  CommandResult r = RunOk("cat; echo done", milliseconds(5000));
  EXPECT_EQ(r.stdout_text, "done\n");
}

TEST_F(LocalHostTest, DeadlineKillsTheWholeProcessGroup) {
  std::string pids = dir_ + "/pids";
  auto t0 = std::chrono::steady_clock::now();
  // The shell and a background child that also holds the pipes open.
  StatusOr<CommandResult> r = host_.Run(
      "sleep 30 & echo $! > " + pids + "; echo $$ >> " + pids + "; wait", milliseconds(500));
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("within 0.5 s"));
  EXPECT_LT(elapsed, 5.0);
  std::ifstream in(pids);
  std::vector<pid_t> seen;
  for (pid_t p; in >> p;) seen.push_back(p);
  ASSERT_EQ(seen.size(), 2u);
  for (pid_t p : seen) {
    // SIGKILL is asynchronous for the orphan; give it a moment.
    for (int i = 0; i < 200 && !ProcessGone(p); ++i) std::this_thread::sleep_for(milliseconds(5));
    EXPECT_TRUE(ProcessGone(p)) << "pid " << p << " survived the deadline";
  }
}

TEST_F(LocalHostTest, ShellThatClosesItsOutputStillHasADeadline) {
  StatusOr<CommandResult> r = host_.Run("exec >/dev/null 2>&1; sleep 30", milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
}

TEST_F(LocalHostTest, ManyThreadsAtOnce) {
  // Pipes are close-on-exec, so one command never holds another's pipe open.
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string want = std::to_string(t) + ":" + std::to_string(i);
        StatusOr<CommandResult> r = host_.Run("echo " + want, milliseconds(10000));
        if (!r.ok() || r->stdout_text != want + "\n") ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(8, 0));
}

int ModeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

TEST_F(LocalHostTest, UploadWritesContentAndExactModeAtomically) {
  std::string dest = dir_ + "/agent";
  mode_t old_umask = umask(077);  // the mode must not depend on the umask
  ASSERT_TRUE(host_.Upload("#!/bin/sh\necho hi\n", dest, 0755, milliseconds(5000)).ok());
  umask(old_umask);
  EXPECT_EQ(*ReadFile(dest), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(ModeOf(dest), 0755);
  EXPECT_EQ(RunOk(dest).stdout_text, "hi\n");

  ASSERT_TRUE(host_.Upload(std::string("bin\0ary", 7), dest, 0600, milliseconds(5000)).ok());
  EXPECT_EQ(*ReadFile(dest), std::string("bin\0ary", 7));
  EXPECT_EQ(ModeOf(dest), 0600);
  // Only the file itself is left: the temporary was renamed over it.
  EXPECT_EQ(*ListDir(dir_), std::vector<std::string>{"agent"});

  Status st = host_.Upload("x", dir_ + "/missing/dir/file", 0644, milliseconds(5000));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(dir_ + "/missing/dir/file"));
  EXPECT_FALSE(host_.Upload("x", dest, 010000, milliseconds(5000)).ok());
}

}  // namespace
}  // namespace coord::playbooks
