// /proc scanning: process identity (pid + start ticks, to defend against pid
// reuse), process-group membership and COORD_JOB_TAG lookups in environ. Used by
// coord-agent (kill, verify, orphan cleanup) and coord-supervisor (fallback kill).
// Stateless free functions; safe from any thread. Never matches by process name.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace coord::agent {

struct ProcStat {
  int pid = 0;
  char state = '?';  // 'Z' = zombie (already dead, waiting to be reaped)
  int ppid = 0;
  int pgrp = 0;
  int session = 0;
  uint64_t utime_ticks = 0;  // field 14: user CPU time, in clock ticks
  uint64_t stime_ticks = 0;  // field 15: system CPU time
  uint64_t start_ticks = 0;  // field 22
  int64_t rss_pages = 0;     // field 24: resident set size
};

// Reads a /proc file in one go, up to `limit` bytes (fs.h's ReadFile trusts st_size,
// which is 0 for /proc files). False when it cannot be opened.
bool ReadProcFile(const std::string& path, std::string* out, size_t limit = 1 << 20);

// Parses the text of /proc/<pid>/stat (robust to ')' and spaces in comm).
bool ParseProcStat(const std::string& text, ProcStat* out);
bool ReadProcStat(int pid, ProcStat* out);
// 0 when the process does not exist (or is a zombie).
uint64_t ProcStartTicks(int pid);
// True when `pid` is alive (not a zombie) and started at `start_ticks`.
bool ProcAlive(int pid, uint64_t start_ticks);

// Every numeric entry of /proc except ourselves.
std::vector<int> ListPids();

// The value of `key` in /proc/<pid>/environ ("" when absent or unreadable).
std::string EnvironValue(int pid, const std::string& key);
// Finds the value of `key` in a NUL-separated environ block.
std::string EnvironBlockValue(const std::string& block, const std::string& key);

struct TaggedProc {
  int pid = 0;
  std::string tag;  // the COORD_JOB_TAG value
};
// Live (non-zombie) processes whose COORD_JOB_TAG starts with `prefix`
// (a full tag with exact=true). When `rank` >= 0, RANK must equal it as well.
std::vector<TaggedProc> FindTagged(const std::string& prefix, bool exact, int rank = -1);
// Live (non-zombie) processes in any of these process groups.
std::vector<int> FindInPgrps(const std::set<int>& pgrps);

}  // namespace coord::agent
