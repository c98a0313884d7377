// TFRecord framing (TensorBoard's summary/writer/record_writer.py) and an
// append-only file of such records. A record on disk is
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   length bytes of data          | uint32 masked CRC-32C of the data
// (CRCs little-endian, masked as in crc32c.h). RecordFile appends whole batches of
// framed records or nothing, so a full disk never leaves a torn record behind.
// Used by rank 0's event writer; not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace trainer::tensorboard {

// Appends `data` framed as one TFRecord to *out.
void AppendRecord(std::string_view data, std::string* out);

// pwrite(2)'s signature: tests inject short writes and ENOSPC here.
using PwriteFn = std::function<ssize_t(int fd, const void* buf, size_t size, off_t offset)>;

class RecordFile {
 public:
  // Creates `path`, which must not exist (O_EXCL: a file already there, e.g. an
  // earlier run's, is never rewritten; that is AlreadyExists). `pwrite` null: ::pwrite.
  static coord::StatusOr<std::unique_ptr<RecordFile>> Create(const std::string& path,
                                                             PwriteFn pwrite = nullptr);
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

  // Appends `bytes` (whole framed records) with as few writes as the kernel allows,
  // straight to the file (no user-space buffer: a killed process loses nothing it
  // appended). On a failed or short write the file is truncated back to where this
  // batch began and the error returned; if even that fails the file is closed for
  // good (FailedPrecondition from then on) rather than ever appending after a tear.
  coord::Status Append(std::string_view bytes);

  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }  // bytes of whole records

 private:
  RecordFile(int fd, std::string path, PwriteFn pwrite)
      : fd_(fd), path_(std::move(path)), pwrite_(std::move(pwrite)) {}

  int fd_ = -1;
  std::string path_;
  PwriteFn pwrite_;
  int64_t size_ = 0;
};

}  // namespace trainer::tensorboard
