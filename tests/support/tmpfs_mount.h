// Test support: a small tmpfs over a test's directory (a full disk, a read-only file
// system), unmounted when the guard goes away. Mounting needs root: Mount() says false
// elsewhere, and the test skips. The unmount is lazy (MNT_DETACH), so a daemon of the
// test still holding a file there does not keep it mounted.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <string>

namespace coord::testing {

class TmpfsMount {
 public:
  TmpfsMount() = default;
  ~TmpfsMount() {
    if (!path_.empty()) umount2(path_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  // Mounts a tmpfs of `size` ("64k", "16m") at the existing directory `path`.
  bool Mount(const std::string& path, const std::string& size, unsigned long flags = 0) {
    if (geteuid() != 0 ||
        mount("tmpfs", path.c_str(), "tmpfs", flags, ("size=" + size).c_str()) != 0) {
      return false;
    }
    path_ = path;
    return true;
  }

 private:
  std::string path_;
};

}  // namespace coord::testing
