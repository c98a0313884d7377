// The logger: a timestamped line to stderr per message, written with one write(2)
// so lines from threads (and from processes sharing the fd) never interleave.
#include "common/logging.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace coord {
namespace {

std::mutex g_tag_mu;
std::string g_tag = "coord";  // guarded by g_tag_mu
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char kLevelLetter[] = {'D', 'I', 'W', 'E'};

}  // namespace

void SetLogTag(const std::string& tag) {
  std::lock_guard<std::mutex> lock(g_tag_mu);
  g_tag = tag;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool ParseLogLevel(const std::string& text, LogLevel* level) {
  static const struct { const char* name; LogLevel level; } kLevels[] = {
      {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warning", LogLevel::kWarning}, {"error", LogLevel::kError}};
  for (const auto& l : kLevels) {
    if (text == l.name) {
      *level = l.level;
      return true;
    }
  }
  return false;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void LogLine(LogLevel level, const std::string& message) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char stamp[40];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(tv.tv_usec / 1000));
  std::string tag;
  {
    std::lock_guard<std::mutex> lock(g_tag_mu);
    tag = g_tag;
  }
  std::string line = std::string(stamp) + " " + kLevelLetter[static_cast<int>(level)] + " [" +
                     tag + "] " + message + "\n";
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace coord
