// TailLogs: reads a generation's rank-<R>.out/.err files (ranks write them
// directly; nothing passes through the agent while they run) and turns them into
// LogBatch messages: last N lines first, then, with follow, new lines every
// poll until the generation has ended and every file is drained. Runs in
// coord-agent on the gRPC thread of one TailLogs call; not shared between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/agent.pb.h"

namespace coord::agent {

struct LogSource {
  int rank = 0;
  LogStream stream = LOG_STDOUT;
  std::string path;
};

class LogTailer {
 public:
  static constexpr int kMaxLinesPerBatch = 256;
  static constexpr size_t kMaxBatchBytes = 1 << 20;  // stays well under gRPC's 4 MB
  static constexpr size_t kMaxLineBytes = 64 << 10;  // longer lines are split

  LogTailer(std::vector<LogSource> sources, int tail_lines);

  // Reads everything new from every file and passes full batches to `emit`
  // (which returns false when the stream is gone). With flush_partial, a last
  // line without '\n' is sent too. Returns false when emit failed.
  bool ReadNew(bool flush_partial, const std::function<bool(const LogBatch&)>& emit);

  // Byte offset where the last `n` lines of `data` start (the whole text when it
  // has fewer). A final line without '\n' counts as a line.
  static size_t TailStart(const std::string& data, int n);

 private:
  struct File {
    LogSource src;
    bool opened = false;
    uint64_t offset = 0;
    std::string partial;  // bytes after the last '\n' read so far
  };
  bool OpenAt(File& f);
  bool AddLine(const File& f, std::string text, const std::function<bool(const LogBatch&)>& emit);
  bool Flush(const std::function<bool(const LogBatch&)>& emit);

  std::vector<File> files_;
  int tail_lines_;
  LogBatch batch_;
  size_t batch_bytes_ = 0;
};

// One whole TailLogs call: tails, and with follow keeps polling every poll_ms
// until finished() is true and the files are drained, or cancelled().
Status StreamLogs(std::vector<LogSource> sources, int tail_lines, bool follow, int poll_ms,
                  const std::function<bool()>& finished, const std::function<bool()>& cancelled,
                  const std::function<bool(const LogBatch&)>& write);

}  // namespace coord::agent
