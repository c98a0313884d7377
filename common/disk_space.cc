// Free space on a filesystem (see disk_space.h).
#include "common/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>

namespace coord {

StatusOr<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) return ErrnoStatus("statvfs " + path, errno);
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace coord
