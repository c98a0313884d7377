// Test support: simulated nodes with networks of their own, so a test can cut a node's
// link for real. A "switch" namespace holds a bridge; the test's own namespace joins it
// as 10.213.S.1 and node i, in a namespace of its own, as 10.213.S.(i+2), each by a
// veth pair. Cut(i) takes node i's port on the bridge down: its packets go nowhere, its
// connections stay open, as when a switch port or a cable fails. Everything goes with
// the lab (deleting a namespace deletes its veths). Needs root and iproute2: Create()
// says why not elsewhere, and the test skips.
//
//   NetnsLab lab;
//   if (auto why = lab.Create(4); !why.empty()) GTEST_SKIP() << why;
//   cluster.StartAgent(i, {0, false, {}, lab.NodeAddr(i), lab.ExecPrefix(i)});
//   ASSERT_TRUE(lab.SetLink(1, false));
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace coord::testing {

class NetnsLab {
 public:
  NetnsLab() = default;
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  // The switch and `nodes` node namespaces, linked up. "" on success, else why not.
  std::string Create(int nodes);
  std::string NodeAddr(int i) const;
  // netns_exec's argv prefix that runs a command in node i's namespace.
  std::vector<std::string> ExecPrefix(int i) const;
  // Node i's link to the switch up or down.
  ::testing::AssertionResult SetLink(int i, bool up);

 private:
  std::string NodeNs(int i) const;
  std::string prefix_;  // unique per test process: namespaces and interfaces start with it
  std::string subnet_;  // "10.213.S."
  int nodes_ = 0;
  bool created_ = false;
};

}  // namespace coord::testing
