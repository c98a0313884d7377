// TFRecord framing and the all-or-nothing append (record_file.h).
#include "trainer/tensorboard/record_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "trainer/tensorboard/crc32c.h"

namespace trainer::tensorboard {
namespace {

void AppendLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

void AppendRecord(std::string_view data, std::string* out) {
  char length[8];
  for (int i = 0; i < 8; ++i) {
    length[i] = static_cast<char>((static_cast<uint64_t>(data.size()) >> (8 * i)) & 0xFF);
  }
  out->append(length, sizeof(length));
  AppendLe(MaskCrc32c(Crc32c(length, sizeof(length))), 4, out);
  out->append(data.data(), data.size());
  AppendLe(MaskCrc32c(Crc32c(data.data(), data.size())), 4, out);
}

// ---------------------------------------------------------------------------

coord::StatusOr<std::unique_ptr<RecordFile>> RecordFile::Create(const std::string& path,
                                                                PwriteFn pwrite) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return coord::ErrnoStatus("create " + path, errno);
  if (pwrite == nullptr) pwrite = ::pwrite;
  return std::unique_ptr<RecordFile>(new RecordFile(fd, path, std::move(pwrite)));
}

RecordFile::~RecordFile() {
  if (fd_ >= 0) close(fd_);
}

coord::Status RecordFile::Append(std::string_view bytes) {
  if (fd_ < 0) {
    return coord::FailedPrecondition(path_ + ": closed after a write that could not be undone");
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = pwrite_(fd_, bytes.data() + done, bytes.size() - done,
                              static_cast<off_t>(size_ + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    // n == 0 makes no progress: as good as ENOSPC.
    const int err = n < 0 ? errno : ENOSPC;
    coord::Status s = coord::ErrnoStatus("write " + path_, err);
    if (done > 0 && ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      const int terr = errno;
      close(fd_);
      fd_ = -1;
      return coord::Status(s.code(), s.message() + "; truncating back to " +
                                         std::to_string(size_) + " bytes also failed: " +
                                         std::strerror(terr) + "; no more records");
    }
    return s;
  }
  size_ += static_cast<int64_t>(bytes.size());
  return coord::Status::Ok();
}

}  // namespace trainer::tensorboard
