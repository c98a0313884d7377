// systemd integration without systemd as PID 1: the unit files pass
// `systemd-analyze verify` with no warning at all, and both daemons send
// READY=1 to $NOTIFY_SOCKET once they serve (Type=notify).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace coord::testing {
namespace {

class UnitFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(UnitFileTest, VerifiesCleanly) {
  std::string unit = BinDir() + "/../systemd/" + GetParam() + ".service";
  RunResult r = RunCommand({"systemd-analyze", "verify", unit});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Unknown keys and bad values are only warnings (exit 0), so any output fails.
  EXPECT_EQ(r.err, "") << "systemd-analyze complained about " << unit;
  std::string text = ReadAll(unit);
  EXPECT_NE(text.find("Type=notify"), std::string::npos);
  EXPECT_NE(text.find("Restart=on-failure"), std::string::npos);
}

TEST(UnitFileTest, AgentUnitKeepsRanksAliveAcrossAgentRestarts) {
  std::string text = ReadAll(BinDir() + "/../systemd/coord-agent.service");
  EXPECT_NE(text.find("KillMode=process"), std::string::npos);
  EXPECT_NE(text.find("Delegate=yes"), std::string::npos);
  EXPECT_NE(text.find("LimitMEMLOCK=infinity"), std::string::npos);
  EXPECT_NE(text.find("LimitNOFILE="), std::string::npos);
}

// `cmake --install --prefix P` writes units that start P/bin/..., and those verify too.
TEST(UnitFileTest, InstalledUnitsNameTheInstallPrefix) {
  TempDir prefix;
  RunResult install = RunCommand({CMAKE_COMMAND_PATH, "--install", COORD_TEST_BUILD_DIR,
                                  "--prefix", prefix.path()}, {}, 120000);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  for (std::string unit : {"coord-agent", "coordd"}) {
    std::string path = prefix.File("lib/systemd/system/" + unit + ".service");
    EXPECT_NE(ReadAll(path).find("ExecStart=" + prefix.path() + "/bin/" + unit + " "),
              std::string::npos) << ReadAll(path);
    RunResult verify = RunCommand({"systemd-analyze", "verify", path});
    EXPECT_EQ(verify.exit_code, 0) << verify.err;
    EXPECT_EQ(verify.err, "") << verify.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Units, UnitFileTest, ::testing::Values("coord-agent", "coordd"));

// A datagram socket standing in for systemd's notify socket.
class FakeNotifySocket {
 public:
  explicit FakeNotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~FakeNotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  std::string Receive() {
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(SdNotifyTest, AgentAndCoordinatorReportReadyOnceServing) {
  TempDir dir;
  for (std::string daemon : {"coord-agent", "coordd"}) {
    FakeNotifySocket sock(dir.File(daemon + ".notify"));
    ASSERT_TRUE(sock.bound());
    Process p;
    std::string port_file = dir.File(daemon + ".port");
    ASSERT_TRUE(p.Start({BinPath(daemon), "--listen", "127.0.0.1:0", "--state-dir",
                         dir.File(daemon + "-state"), "--port-file", port_file},
                        dir.File(daemon + ".log"), {{"NOTIFY_SOCKET", dir.File(daemon + ".notify")}}));
    std::string msg = sock.Receive();
    EXPECT_NE(msg.find("READY=1"), std::string::npos) << daemon << ": got '" << msg << "'\n"
                                                      << ReadAll(dir.File(daemon + ".log"));
    // READY must not come before the port is bound and published.
    EXPECT_FALSE(ReadAll(port_file).empty()) << daemon;
    EXPECT_EQ(p.Stop(), 0) << daemon << " did not exit cleanly on SIGTERM";
  }
}

}  // namespace
}  // namespace coord::testing
