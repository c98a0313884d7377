#include "tests/support/netns_lab.h"

#include <unistd.h>

#include "tests/support/process.h"

namespace coord::testing {
namespace {

// One `ip` command; the failure carries its stderr.
::testing::AssertionResult Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunCommand(argv, {}, 10000);
  if (r.exit_code == 0) return ::testing::AssertionSuccess();
  std::string line;
  for (const std::string& a : argv) line += a + " ";
  return ::testing::AssertionFailure() << line << "failed: " << r.err;
}

}  // namespace

std::string NetnsLab::NodeNs(int i) const { return prefix_ + "n" + std::to_string(i); }

std::string NetnsLab::NodeAddr(int i) const { return subnet_ + std::to_string(i + 2); }

std::vector<std::string> NetnsLab::ExecPrefix(int i) const {
  return {BinPath("netns_exec"), "/run/netns/" + NodeNs(i), "--"};
}

std::string NetnsLab::Create(int nodes) {
  if (geteuid() != 0) return "network namespaces need root";
  if (RunCommand({"ip", "-V"}).exit_code != 0) return "iproute2's ip is not installed";
  // Names fit IFNAMSIZ (15): "cpt" + the PID. The subnet varies with the PID, so labs of
  // two test processes do not share addresses.
  const int pid = static_cast<int>(getpid());
  prefix_ = "cpt" + std::to_string(pid);
  subnet_ = "10.213." + std::to_string(pid % 200 + 20) + ".";
  const std::string sw = prefix_ + "sw";
  created_ = true;  // from here on the destructor cleans up whatever exists
  nodes_ = nodes;
  std::vector<std::vector<std::string>> steps = {
      {"netns", "add", sw},
      {"-n", sw, "link", "add", "br0", "type", "bridge"},
      {"-n", sw, "link", "set", "br0", "up"},
      {"link", "add", prefix_, "type", "veth", "peer", "name", "up0", "netns", sw},
      {"-n", sw, "link", "set", "up0", "master", "br0", "up"},
      {"addr", "add", subnet_ + "1/24", "dev", prefix_},
      {"link", "set", prefix_, "up"},
  };
  for (int i = 0; i < nodes; ++i) {
    const std::string ns = NodeNs(i), port = "n" + std::to_string(i);
    steps.push_back({"netns", "add", ns});
    steps.push_back({"-n", ns, "link", "set", "lo", "up"});
    steps.push_back({"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                     "netns", sw});
    steps.push_back({"-n", sw, "link", "set", port, "master", "br0", "up"});
    steps.push_back({"-n", ns, "addr", "add", NodeAddr(i) + "/24", "dev", "eth0"});
    steps.push_back({"-n", ns, "link", "set", "eth0", "up"});
  }
  for (const auto& step : steps) {
    ::testing::AssertionResult r = Ip(step);
    if (!r) return r.message();
  }
  return "";
}

::testing::AssertionResult NetnsLab::SetLink(int i, bool up) {
  return Ip({"-n", prefix_ + "sw", "link", "set", "n" + std::to_string(i), up ? "up" : "down"});
}

NetnsLab::~NetnsLab() {
  if (!created_) return;
  for (int i = 0; i < nodes_; ++i) RunCommand({"ip", "netns", "del", NodeNs(i)}, {}, 10000);
  RunCommand({"ip", "netns", "del", prefix_ + "sw"}, {}, 10000);
  RunCommand({"ip", "link", "del", prefix_}, {}, 10000);  // gone with its peer, normally
}

}  // namespace coord::testing
