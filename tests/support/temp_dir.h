// Test support: a scratch directory per test. Every test that needs files makes a
// TempDir instead of its own mkdtemp; the destructor removes the whole tree, so
// nothing is left in /tmp after a passing run.
#pragma once

#include <string>

#include "common/status.h"

namespace coord::testing {

// A fresh directory /tmp/coord-test-XXXXXX (mode 0700), removed with everything
// in it by the destructor (coord::RemoveTree: never follows a symlink out of the
// tree). If mkdtemp fails the current test fails, and path() is "/tmp", which is
// never removed. Not copyable: one owner removes the tree.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

  // Removes the tree now (for a test that asserts its cleanup); the destructor
  // then has nothing left to do.
  Status Remove();
  // Leaves the tree on disk for a person to look at (after a failure, or when the
  // test's own KEEP variable is set); the destructor then removes nothing.
  void Keep() { keep_ = true; }

 private:
  bool Owned() const;

  std::string path_;
  bool keep_ = false;
  bool removed_ = false;
};

}  // namespace coord::testing
