// Test support: TempDir (see temp_dir.h).
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"

namespace coord::testing {
namespace {
constexpr char kPrefix[] = "/tmp/coord-test-";
}  // namespace

TempDir::TempDir() {
  std::string tmpl = std::string(kPrefix) + "XXXXXX";
  if (mkdtemp(tmpl.data()) != nullptr) {
    path_ = tmpl;
  } else {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    path_ = "/tmp";
  }
}

TempDir::~TempDir() {
  if (!keep_) (void)Remove();
}

// Only a directory this class made: the "/tmp" fallback is never removed.
bool TempDir::Owned() const { return path_.rfind(kPrefix, 0) == 0; }

Status TempDir::Remove() {
  if (removed_ || !Owned()) return Status::Ok();
  removed_ = true;
  return RemoveTree(path_);
}

}  // namespace coord::testing
