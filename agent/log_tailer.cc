// TailLogs file reading (see log_tailer.h). Runs in coord-agent.
#include "agent/log_tailer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace coord::agent {

LogTailer::LogTailer(std::vector<LogSource> sources, int tail_lines) : tail_lines_(tail_lines) {
  for (auto& s : sources) {
    File f;
    f.src = std::move(s);
    files_.push_back(std::move(f));
  }
}

size_t LogTailer::TailStart(const std::string& data, int n) {
  if (n <= 0 || data.empty()) return 0;
  size_t end = data.size();
  if (data[end - 1] == '\n') --end;  // the final '\n' ends the last line, it starts none
  int count = 0;
  for (size_t p = end; p > 0; --p) {
    if (data[p - 1] == '\n' && ++count == n) return p;
  }
  return 0;
}

// The first open of a file positions it: at 0, or at the start of its last N lines.
bool LogTailer::OpenAt(File& f) {
  if (f.opened) return true;
  int fd = open(f.src.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // not created yet: try again on the next poll
  f.opened = true;
  if (tail_lines_ > 0) {
    // Read backwards in growing windows until it holds N newlines (or the file).
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
      uint64_t size = static_cast<uint64_t>(st.st_size);
      uint64_t window = 64 << 10;
      for (;;) {
        uint64_t from = size > window ? size - window : 0;
        std::string data(size - from, '\0');
        ssize_t n = pread(fd, data.data(), data.size(), static_cast<off_t>(from));
        if (n < 0) break;
        data.resize(static_cast<size_t>(n));
        size_t start = TailStart(data, tail_lines_);
        if (start > 0 || from == 0) {
          f.offset = from + start;
          break;
        }
        window *= 4;
      }
    }
  }
  close(fd);
  return true;
}

bool LogTailer::Flush(const std::function<bool(const LogBatch&)>& emit) {
  if (batch_.lines_size() == 0) return true;
  bool ok = emit(batch_);
  batch_.Clear();
  batch_bytes_ = 0;
  return ok;
}

bool LogTailer::AddLine(const File& f, std::string text,
                        const std::function<bool(const LogBatch&)>& emit) {
  LogLine* line = batch_.add_lines();
  line->set_rank(f.src.rank);
  line->set_stream(f.src.stream);
  batch_bytes_ += text.size();
  line->set_text(std::move(text));
  if (batch_.lines_size() >= kMaxLinesPerBatch || batch_bytes_ >= kMaxBatchBytes) {
    return Flush(emit);
  }
  return true;
}

bool LogTailer::ReadNew(bool flush_partial, const std::function<bool(const LogBatch&)>& emit) {
  for (auto& f : files_) {
    if (!OpenAt(f)) continue;
    int fd = open(f.src.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string buf(1 << 20, '\0');
    for (;;) {
      ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(f.offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      f.offset += static_cast<uint64_t>(n);
      size_t pos = 0;
      for (;;) {
        size_t nl = buf.find('\n', pos);
        if (nl == std::string::npos || nl >= static_cast<size_t>(n)) break;
        f.partial.append(buf, pos, nl - pos);
        if (!AddLine(f, std::move(f.partial), emit)) {
          close(fd);
          return false;
        }
        f.partial.clear();
        pos = nl + 1;
      }
      f.partial.append(buf, pos, static_cast<size_t>(n) - pos);
      while (f.partial.size() > kMaxLineBytes) {
        if (!AddLine(f, f.partial.substr(0, kMaxLineBytes), emit)) {
          close(fd);
          return false;
        }
        f.partial.erase(0, kMaxLineBytes);
      }
    }
    close(fd);
    if (flush_partial && !f.partial.empty()) {
      if (!AddLine(f, std::move(f.partial), emit)) return false;
      f.partial.clear();
    }
  }
  return Flush(emit);
}

Status StreamLogs(std::vector<LogSource> sources, int tail_lines, bool follow, int poll_ms,
                  const std::function<bool()>& finished, const std::function<bool()>& cancelled,
                  const std::function<bool(const LogBatch&)>& write) {
  LogTailer tailer(std::move(sources), tail_lines);
  for (;;) {
    // Sample `finished` BEFORE reading: whatever was written before the
    // generation ended is then certainly read in this pass.
    bool done = finished();
    if (!tailer.ReadNew(done, write)) return Status(StatusCode::kCancelled, "stream closed");
    if (!follow || done) return Status::Ok();
    if (cancelled()) return Status(StatusCode::kCancelled, "stream cancelled");
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

}  // namespace coord::agent
