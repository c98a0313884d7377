// SshSession against a real OpenSSH sshd (tests/support/sshd.h) on 127.0.0.2
// and 127.0.0.3: host key checks, the three ways to log in, Run's output, exit
// status and deadlines, a connection killed mid-command, atomic uploads, and
// sessions in parallel threads. Runs as root (sshd needs it).
#include "playbooks/runner/ssh_session.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/sshd.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::playbooks {
namespace {

using coord::testing::ReadAll;
using coord::testing::RunCommand;
using coord::testing::Sshd;
using coord::testing::TempDir;
using coord::testing::WaitUntil;
using coord::testing::WriteTextFile;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// OpenSSH's own fingerprint of a public key file: "SHA256:...".
std::string Fingerprint(const std::string& pub_path) {
  auto r = RunCommand({"ssh-keygen", "-l", "-E", "sha256", "-f", pub_path});
  std::istringstream in(r.out);
  std::string bits, fp;
  in >> bits >> fp;
  return fp;
}

std::string TypeAndKey(const std::string& pub_path) {
  std::istringstream in(ReadAll(pub_path));
  std::string type, key;
  in >> type >> key;
  return type + " " + key;
}

// Gone: no such process, or only a zombie waiting for its (foreign) parent.
bool ProcessGone(pid_t pid) {
  const std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close == std::string::npos || stat.compare(close + 2, 1, "Z") == 0;
}

pid_t PidFromFile(const std::string& path) {
  return static_cast<pid_t>(atoi(coord::testing::WaitForFile(path, 5000).c_str()));
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        names.push_back(e->d_name);
    closedir(d);
  }
  return names;
}

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                       \
  auto lhs##_or = (expr);                                     \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status().ToString(); \
  auto lhs = std::move(lhs##_or).value()

class SshSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    sshd_ = Sshd::Start("127.0.0.2", &error);
    ASSERT_NE(sshd_, nullptr) << error;
    known_hosts_ = tmp_.File("known_hosts");
    ASSERT_TRUE(sshd_->WriteKnownHosts(known_hosts_));
  }
  void TearDown() override {
    if (HasFailure() && sshd_)
      std::cerr << "--- sshd log " << sshd_->log_path() << ":\n" << sshd_->Log() << "---\n";
  }
  SshOptions Options() const {
    SshOptions o;
    o.user = "root";
    o.port = sshd_->port();
    o.identity_file = sshd_->user_key_path();
    o.known_hosts_file = known_hosts_;
    o.connect_timeout = milliseconds(5000);
    return o;
  }
  StatusOr<std::unique_ptr<SshSession>> Connect(const SshOptions& o) {
    return SshSession::Connect("node01", sshd_->address(), o);
  }
  std::string HostLabel() const {
    return "node01 (127.0.0.2:" + std::to_string(sshd_->port()) + ")";
  }

  TempDir tmp_;
  std::unique_ptr<Sshd> sshd_;
  std::string known_hosts_;
};

// --- Run -------------------------------------------------------------------------

TEST_F(SshSessionTest, RunReturnsOutputAndExitStatus) {
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  EXPECT_EQ(session->name(), "node01");
  EXPECT_EQ(session->host_key_fingerprint(), Fingerprint(sshd_->File("host_ed25519.pub")));

  ASSERT_OK_AND_ASSIGN(r, session->Run("echo out; echo err >&2; exit 3", seconds(10)));
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_EQ(r.stderr_text, "err\n");  // the status line of the wrapper is stripped
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.exit_signal, "");
  EXPECT_FALSE(r.ok());

  // Same session again; quoting survives; stderr without a final newline is exact.
  ASSERT_OK_AND_ASSIGN(r2, session->Run("echo \"it's $((6*7))\"; printf 'tail' >&2", seconds(10)));
  EXPECT_EQ(r2.stdout_text, "it's 42\n");
  EXPECT_EQ(r2.stderr_text, "tail");
  EXPECT_EQ(r2.exit_status, 0);
  EXPECT_TRUE(r2.ok());

  // stdin is at EOF: a command that reads it does not hang.
  ASSERT_OK_AND_ASSIGN(r3, session->Run("cat; echo done", seconds(10)));
  EXPECT_EQ(r3.stdout_text, "done\n");
}

TEST_F(SshSessionTest, ExitBySignalFillsExitSignal) {
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  ASSERT_OK_AND_ASSIGN(term, session->Run("echo before; kill -TERM $$; echo after", seconds(10)));
  EXPECT_EQ(term.exit_signal, "TERM");
  EXPECT_EQ(term.exit_status, -1);
  EXPECT_EQ(term.stdout_text, "before\n");
  ASSERT_OK_AND_ASSIGN(kill9, session->Run("kill -KILL $$", seconds(10)));
  EXPECT_EQ(kill9.exit_signal, "KILL");
  EXPECT_FALSE(kill9.ok());
  // The wrapper around the command (the session leader, field 6 of stat) dies
  // before it can report: sshd's exit-signal message fills in.
  ASSERT_OK_AND_ASSIGN(
      wrapper, session->Run("kill -KILL $(cut -d' ' -f6 /proc/$$/stat); sleep 0.2", seconds(10)));
  EXPECT_EQ(wrapper.exit_signal, "KILL");
  EXPECT_EQ(wrapper.stderr_text, "");
  ASSERT_OK_AND_ASSIGN(high, session->Run("exit 255", seconds(10)));
  EXPECT_EQ(high.exit_status, 255);  // above 128 + the last signal: a plain status
}

TEST_F(SshSessionTest, LargeInterleavedOutputComesBackWholeAndExact) {
  // 4 MiB on each stream, written in alternating 256 KiB chunks, stderr first:
  // each chunk is bigger than what the remote pipe buffers, so the command
  // blocks on one stream until the client drains it.
  constexpr size_t kSize = 4 << 20, kChunk = 256 << 10;
  const std::string out = RandomBytes(kSize, 1), err = RandomBytes(kSize, 2);
  ASSERT_TRUE(WriteTextFile(tmp_.File("out.bin"), out));
  ASSERT_TRUE(WriteTextFile(tmp_.File("err.bin"), err));
  const std::string dd = "dd bs=" + std::to_string(kChunk) + " count=1 status=none skip=$i if=";
  const std::string command = "i=0; while [ $i -lt " + std::to_string(kSize / kChunk) + " ]; do " +
                              dd + tmp_.File("err.bin") + " >&2; " + dd + tmp_.File("out.bin") +
                              "; i=$((i+1)); done";
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  const auto start = Clock::now();
  ASSERT_OK_AND_ASSIGN(r, session->Run(command, seconds(30)));
  std::cout << "8 MiB interleaved in " << SecondsSince(start) << " s\n";
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.stdout_text.size(), kSize);
  EXPECT_EQ(r.stderr_text.size(), kSize);
  EXPECT_TRUE(r.stdout_text == out) << "stdout differs";
  EXPECT_TRUE(r.stderr_text == err) << "stderr differs";
}

// --- host keys ----------------------------------------------------------------------

TEST_F(SshSessionTest, UnknownHostIsRefusedWithItsFingerprint) {
  const std::string fp = Fingerprint(sshd_->File("host_ed25519.pub"));
  ASSERT_EQ(fp.rfind("SHA256:", 0), 0u) << fp;
  ASSERT_TRUE(WriteTextFile(known_hosts_, "# nothing yet\n"));
  auto s = Connect(Options());
  ASSERT_FALSE(s.ok());
  const std::string msg = s.status().message();
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied) << msg;
  EXPECT_EQ(msg.rfind(HostLabel() + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(fp), std::string::npos) << msg;
  EXPECT_NE(msg.find(known_hosts_), std::string::npos) << msg;
  EXPECT_NE(
      msg.find("ssh-keyscan -p " + std::to_string(sshd_->port()) + " 127.0.0.2 >> " + known_hosts_),
      std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("CHANGED"), std::string::npos) << msg;

  SshOptions o = Options();
  o.known_hosts_file = tmp_.File("no_such_known_hosts");
  auto missing = Connect(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos)
      << missing.status().message();
}

TEST_F(SshSessionTest, KnownHostsEntriesArePortAware) {
  const std::string key = sshd_->host_public_key();
  // The right key recorded for another port, or as a bare host (= port 22), is
  // not a record of this server, exactly as for OpenSSH.
  for (const std::string& line : {"[127.0.0.2]:1 " + key, "127.0.0.2 " + key}) {
    ASSERT_TRUE(WriteTextFile(known_hosts_, line + "\n"));
    auto s = Connect(Options());
    ASSERT_FALSE(s.ok()) << line;
    EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(s.status().message().find("is not in"), std::string::npos) << s.status().message();
  }
  // A stale bare-host entry does not shadow the right [host]:port one; an entry
  // libssh2 cannot parse does not hide the lines after it.
  const std::string other = TypeAndKey(sshd_->other_key_path() + ".pub");
  ASSERT_TRUE(WriteTextFile(known_hosts_, "127.0.0.2 " + other +
                                              "\n@cert-authority *.example ssh-ed25519 AAAA\n" +
                                              sshd_->KnownHostsLine() + "\n"));
  auto s = Connect(Options());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
}

TEST_F(SshSessionTest, HashedKnownHostsEntryIsAccepted) {
  auto hash = RunCommand({"ssh-keygen", "-H", "-f", known_hosts_});
  ASSERT_EQ(hash.exit_code, 0) << hash.err;
  const std::string hashed = ReadAll(known_hosts_);
  ASSERT_EQ(hashed.rfind("|1|", 0), 0u) << hashed;
  ASSERT_EQ(hashed.find("127.0.0.2"), std::string::npos) << hashed;
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  ASSERT_OK_AND_ASSIGN(r, session->Run("echo hashed", seconds(10)));
  EXPECT_EQ(r.stdout_text, "hashed\n");
}

TEST_F(SshSessionTest, ChangedHostKeyIsRefusedLoudly) {
  // The record says another key: what a man-in-the-middle (or a reinstall) looks like.
  const std::string other = TypeAndKey(sshd_->other_key_path() + ".pub");
  ASSERT_TRUE(WriteTextFile(known_hosts_,
                            "[127.0.0.2]:" + std::to_string(sshd_->port()) + " " + other + "\n"));
  auto s = Connect(Options());
  ASSERT_FALSE(s.ok());
  const std::string msg = s.status().message();
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied) << msg;
  EXPECT_NE(msg.find("has CHANGED"), std::string::npos) << msg;
  EXPECT_NE(msg.find(Fingerprint(sshd_->File("host_ed25519.pub"))), std::string::npos) << msg;
  EXPECT_NE(msg.find("ssh-keygen -R"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("is not in"), std::string::npos) << msg;
  EXPECT_EQ(sshd_->Log().find("Accepted publickey"), std::string::npos)
      << "must not log in to a host whose key changed";
}

// --- authentication ------------------------------------------------------------------

TEST_F(SshSessionTest, WrongUserKeyIsRefusedAndTheErrorSaysWhatWasTried) {
  SshOptions o = Options();
  o.identity_file = sshd_->other_key_path();
  auto s = Connect(o);
  ASSERT_FALSE(s.ok());
  const std::string msg = s.status().message();
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied) << msg;
  EXPECT_NE(msg.find("user 'root'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("key file " + sshd_->other_key_path() + " (not accepted)"), std::string::npos)
      << msg;

  o.identity_file = tmp_.File("no_such_key");
  auto missing = Connect(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("(does not exist)"), std::string::npos)
      << missing.status().message();
}

TEST_F(SshSessionTest, KeyFromSshAgent) {
  const std::string sock = tmp_.File("agent.sock");
  coord::testing::Process agent;
  ASSERT_TRUE(agent.Start({"ssh-agent", "-D", "-a", sock}, tmp_.File("agent.log")));
  ASSERT_TRUE(WaitUntil([&] { return access(sock.c_str(), F_OK) == 0; }, 5000))
      << ReadAll(tmp_.File("agent.log"));
  SshOptions o = Options();
  o.identity_file.clear();
  o.agent_socket = sock;

  // Only the unauthorized key in the agent: refused, and the error says so.
  auto add = RunCommand({"ssh-add", sshd_->other_key_path()}, {{"SSH_AUTH_SOCK", sock}});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  auto refused = Connect(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("ssh-agent at " + sock + " (1 key, none accepted)"),
            std::string::npos)
      << refused.status().message();

  add = RunCommand({"ssh-add", sshd_->user_key_path()}, {{"SSH_AUTH_SOCK", sock}});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  ASSERT_OK_AND_ASSIGN(session, Connect(o));
  ASSERT_OK_AND_ASSIGN(r, session->Run("echo via-agent", seconds(10)));
  EXPECT_EQ(r.stdout_text, "via-agent\n");
  agent.Stop(2000);  // by PID
}

TEST_F(SshSessionTest, DefaultKeyFileUnderHome) {
  TempDir home;
  ASSERT_EQ(mkdir((home.path() + "/.ssh").c_str(), 0700), 0);
  ASSERT_TRUE(WriteTextFile(home.path() + "/.ssh/id_ed25519", ReadAll(sshd_->user_key_path())));
  chmod((home.path() + "/.ssh/id_ed25519").c_str(), 0600);
  // No other thread reads the environment while it changes: the sshd accept
  // thread forks only when a connection arrives.
  const char* old_home = getenv("HOME");
  const char* old_sock = getenv("SSH_AUTH_SOCK");
  const std::string saved_home = old_home ? old_home : "", saved_sock = old_sock ? old_sock : "";
  setenv("HOME", home.path().c_str(), 1);
  unsetenv("SSH_AUTH_SOCK");
  SshOptions o = Options();
  o.identity_file.clear();
  auto s = Connect(o);
  if (old_home) setenv("HOME", saved_home.c_str(), 1);
  if (old_sock) setenv("SSH_AUTH_SOCK", saved_sock.c_str(), 1);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
}

// --- deadlines and failures -----------------------------------------------------------

TEST_F(SshSessionTest, RunDeadlineStopsTheRemoteCommand) {
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  // The shell and a background child of it: the whole process group must go.
  const std::string sh_pid = tmp_.File("sh.pid"), bg_pid = tmp_.File("bg.pid");
  auto start = Clock::now();
  auto r = session->Run("echo $$ > " + sh_pid + "; sleep 60 & echo $! > " + bg_pid + "; wait",
                        milliseconds(1000));
  const double took = SecondsSince(start);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("within 1.000 s"), std::string::npos) << r.status().message();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 4.0);
  const pid_t p1 = PidFromFile(sh_pid), p2 = PidFromFile(bg_pid);
  ASSERT_GT(p1, 1);
  ASSERT_GT(p2, 1);
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(p1) && ProcessGone(p2); }, 3000));

  // A command that ignores SIGTERM gets SIGKILL 2 s later.
  const std::string stubborn = tmp_.File("stubborn.pid");
  start = Clock::now();
  r = session->Run("trap '' TERM; sleep 60 & echo $! > " + stubborn + "; wait", milliseconds(500));
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(SecondsSince(start), 5.0);
  const pid_t p3 = PidFromFile(stubborn);
  ASSERT_GT(p3, 1);
  EXPECT_TRUE(WaitUntil([&] { return ProcessGone(p3); }, 3000));
  for (pid_t p : {p1, p2, p3})  // only when the test failed: leave nothing running
    if (!ProcessGone(p)) kill(p, SIGKILL);

  // The kill was confirmed, so the session is still good.
  ASSERT_OK_AND_ASSIGN(after, session->Run("echo alive", seconds(10)));
  EXPECT_EQ(after.stdout_text, "alive\n");
}

TEST_F(SshSessionTest, KilledConnectionMidCommandIsAnError) {
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  const std::string pid_file = tmp_.File("cmd.pid");
  auto run = std::async(std::launch::async, [&] {
    return session->Run("echo $$ > " + pid_file + "; sleep 20; echo finished", seconds(30));
  });
  const pid_t cmd = PidFromFile(pid_file);
  ASSERT_GT(cmd, 0);
  const pid_t cmd_group = getpgid(cmd);
  const std::vector<pid_t> sshd_pids = sshd_->ConnectionPids();
  // One `sshd -i` per connection (root logins get no separate session child).
  ASSERT_FALSE(sshd_pids.empty());
  const auto killed_at = Clock::now();
  coord::testing::KillPids(sshd_pids);
  const bool done = run.wait_for(seconds(10)) == std::future_status::ready;
  if (cmd_group > 1 && cmd_group != getpgrp())
    kill(-cmd_group, SIGKILL);  // the orphaned command: ours to clean up
  ASSERT_TRUE(done) << "Run did not notice the dead connection";
  auto r = run.get();
  EXPECT_LT(SecondsSince(killed_at), 5.0);
  ASSERT_FALSE(r.ok()) << "a dead connection must not look like success: exit " << r->exit_status
                       << " out '" << r->stdout_text << "'";
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(r.status().message().rfind(HostLabel(), 0), 0u) << r.status().message();
  auto again = session->Run("true", seconds(5));
  EXPECT_FALSE(again.ok());
}

TEST_F(SshSessionTest, ConnectDeadlineAndRefusedPort) {
  // A listener that never accepts: TCP connects (backlog), the SSH banner never comes.
  const int silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &addr.sin_addr);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(silent, 4), 0);
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  SshOptions o = Options();
  o.port = ntohs(addr.sin_port);
  o.connect_timeout = milliseconds(300);
  const auto start = Clock::now();
  auto s = Connect(o);
  EXPECT_LT(SecondsSince(start), 2.0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDeadlineExceeded) << s.status().ToString();
  close(silent);

  // Bound but not listening: refused at once.
  const int closed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr.sin_port = 0;
  ASSERT_EQ(bind(closed, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(closed, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  o.port = ntohs(addr.sin_port);
  o.connect_timeout = milliseconds(5000);
  auto refused = Connect(o);
  close(closed);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("Connection refused"), std::string::npos)
      << refused.status().message();
}

// --- Upload ----------------------------------------------------------------------------

TEST_F(SshSessionTest, UploadIsAtomicWithContentAndMode) {
  ASSERT_OK_AND_ASSIGN(session, Connect(Options()));
  const std::string dir = tmp_.File("etc");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  const std::string path = dir + "/blob.bin";
  const std::string blob = RandomBytes(3 << 20, 3);  // zero bytes included
  Status st = session->Upload(blob, path, 0640, seconds(20));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(ReadAll(path) == blob) << "content differs";
  struct stat first;
  ASSERT_EQ(stat(path.c_str(), &first), 0);
  EXPECT_EQ(first.st_mode & 07777, 0640u);
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"blob.bin"});

  // Over an existing file: a new inode renamed into place, never a rewrite in place.
  st = session->Upload("v2\n", path, 0755, seconds(20));
  ASSERT_TRUE(st.ok()) << st.ToString();
  struct stat second;
  ASSERT_EQ(stat(path.c_str(), &second), 0);
  EXPECT_EQ(ReadAll(path), "v2\n");
  EXPECT_EQ(second.st_mode & 07777, 0755u);
  EXPECT_NE(second.st_ino, first.st_ino);
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"blob.bin"});

  // Failures leave nothing behind.
  st = session->Upload("x", dir + "/missing/file", 0644, seconds(20));
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
  st = session->Upload("x", dir + "/sub", 0644, seconds(20));  // a directory is in the way
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("upload to " + dir + "/sub"), std::string::npos) << st.ToString();
  EXPECT_EQ(DirEntries(dir).size(), 2u);
  EXPECT_TRUE(DirEntries(dir + "/sub").empty());
}

// --- parallel sessions ------------------------------------------------------------------

TEST_F(SshSessionTest, ParallelSessionsToTwoHosts) {
  std::string error;
  auto second = Sshd::Start("127.0.0.3", &error);
  ASSERT_NE(second, nullptr) << error;
  ASSERT_TRUE(WriteTextFile(known_hosts_,
                            sshd_->KnownHostsLine() + "\n" + second->KnownHostsLine() + "\n"));
  Sshd* hosts[2] = {sshd_.get(), second.get()};
  constexpr int kThreads = 4;  // two sessions per host
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Sshd* host = hosts[t % 2];
      SshOptions o = Options();
      o.port = host->port();
      o.identity_file = host->user_key_path();
      auto s = SshSession::Connect("node" + std::to_string(t), host->address(), o);
      if (!s.ok()) {
        failures[t] = s.status().ToString();
        return;
      }
      const std::string path = tmp_.File("par" + std::to_string(t));
      const std::string content = RandomBytes(512 << 10, 10 + t);
      auto r =
          (*s)->Run("head -c 2097152 /dev/zero | tr '\\0' x; echo " + std::to_string(t) + " >&2",
                    seconds(20));
      if (!r.ok() || r->stdout_text != std::string(2 << 20, 'x') ||
          r->stderr_text != std::to_string(t) + "\n") {
        failures[t] = "run: " + (r.ok() ? r->stderr_text : r.status().ToString());
        return;
      }
      Status st = (*s)->Upload(content, path, 0600, seconds(20));
      if (!st.ok() || ReadAll(path) != content) failures[t] = "upload: " + st.ToString();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "session " << t;
  EXPECT_EQ(sshd_->connections_accepted(), 2);
  EXPECT_EQ(second->connections_accepted(), 2);
  if (HasFailure()) std::cerr << "--- second sshd log:\n" << second->Log();
}

}  // namespace
}  // namespace coord::playbooks
