// One logger for every Coord process: "2026-11-23T10:00:00.123 I [coordd] message".
// Thread-safe (one write(2) per line). The tag names the process and, for
// ranks, "[host:rank]"; set it once in main with SetLogTag.
#pragma once

#include <sstream>
#include <string>

namespace coord {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogTag(const std::string& tag);
void SetLogLevel(LogLevel level);
// Parses "debug|info|warning|error"; false on anything else.
bool ParseLogLevel(const std::string& text, LogLevel* level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, const std::string& message);

// Collects a message with << and writes it on destruction.
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  template <typename T>
  LogMessage& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace coord

namespace coord {
// Turns `LogMessage(...) << a << b` into a void expression, so the macro below is one
// expression (no dangling else in `if (x) LOG_INFO << ...;`), as glog does.
struct LogVoidify {
  void operator&(const LogMessage&) const {}
};
}  // namespace coord

// The message is built (and its arguments evaluated) only when the level is enabled.
#define COORD_LOG(level)                                       \
  !::coord::LogEnabled(::coord::LogLevel::k##level)            \
      ? (void)0                                                \
      : ::coord::LogVoidify() & ::coord::LogMessage(::coord::LogLevel::k##level)

#define LOG_DEBUG COORD_LOG(Debug)
#define LOG_INFO COORD_LOG(Info)
#define LOG_WARN COORD_LOG(Warning)
#define LOG_ERROR COORD_LOG(Error)
