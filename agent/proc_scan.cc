// /proc scanning (see proc_scan.h). Runs in coord-agent and coord-supervisor.
#include "agent/proc_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace coord::agent {

bool ReadProcFile(const std::string& path, std::string* out, size_t limit) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() >= limit) break;
  }
  close(fd);
  return true;
}

bool ParseProcStat(const std::string& text, ProcStat* out) {
  // "pid (comm) S ppid pgrp session ..."; comm may contain anything, so split at
  // the LAST ')'.
  size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= text.size()) return false;
  out->pid = std::atoi(text.c_str());
  const char* p = text.c_str() + close_paren + 2;
  out->state = *p;
  // Fields after comm, 1-based from field 3 (state).
  int field = 3;
  const char* cur = p;
  while (*cur && field < 24) {
    const char* next = std::strchr(cur, ' ');
    if (!next) break;
    cur = next + 1;
    ++field;
    if (field == 4) out->ppid = std::atoi(cur);
    if (field == 5) out->pgrp = std::atoi(cur);
    if (field == 6) out->session = std::atoi(cur);
    if (field == 14) out->utime_ticks = std::strtoull(cur, nullptr, 10);
    if (field == 15) out->stime_ticks = std::strtoull(cur, nullptr, 10);
    if (field == 22) out->start_ticks = std::strtoull(cur, nullptr, 10);
    if (field == 24) out->rss_pages = std::strtoll(cur, nullptr, 10);
  }
  return field >= 22;
}

bool ReadProcStat(int pid, ProcStat* out) {
  std::string text;
  if (!ReadProcFile("/proc/" + std::to_string(pid) + "/stat", &text)) return false;
  return ParseProcStat(text, out);
}

uint64_t ProcStartTicks(int pid) {
  ProcStat st;
  if (pid <= 0 || !ReadProcStat(pid, &st) || st.state == 'Z' || st.state == 'X') return 0;
  return st.start_ticks;
}

bool ProcAlive(int pid, uint64_t start_ticks) {
  return start_ticks != 0 && ProcStartTicks(pid) == start_ticks;
}

std::vector<int> ListPids() {
  std::vector<int> pids;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  int self = getpid();
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    if (pid > 0 && pid != self) pids.push_back(pid);
  }
  closedir(d);
  return pids;
}

std::string EnvironBlockValue(const std::string& block, const std::string& key) {
  const std::string want = key + "=";
  size_t pos = 0;
  while (pos < block.size()) {
    size_t end = block.find('\0', pos);
    if (end == std::string::npos) end = block.size();
    if (block.compare(pos, want.size(), want) == 0) {
      return block.substr(pos + want.size(), end - pos - want.size());
    }
    pos = end + 1;
  }
  return "";
}

std::string EnvironValue(int pid, const std::string& key) {
  std::string block;
  if (!ReadProcFile("/proc/" + std::to_string(pid) + "/environ", &block, 4 << 20)) return "";
  return EnvironBlockValue(block, key);
}

std::vector<TaggedProc> FindTagged(const std::string& prefix, bool exact, int rank) {
  std::vector<TaggedProc> out;
  const std::string rank_text = std::to_string(rank);
  for (int pid : ListPids()) {
    std::string block;
    if (!ReadProcFile("/proc/" + std::to_string(pid) + "/environ", &block, 4 << 20)) continue;
    if (block.empty()) continue;  // kernel threads and zombies
    std::string tag = EnvironBlockValue(block, "COORD_JOB_TAG");
    if (tag.empty() || tag.compare(0, prefix.size(), prefix) != 0) continue;
    if (exact && tag.size() != prefix.size()) continue;
    if (rank >= 0 && EnvironBlockValue(block, "RANK") != rank_text) continue;
    if (ProcStartTicks(pid) == 0) continue;  // zombie: dead already
    out.push_back({pid, tag});
  }
  return out;
}

std::vector<int> FindInPgrps(const std::set<int>& pgrps) {
  std::vector<int> out;
  if (pgrps.empty()) return out;
  for (int pid : ListPids()) {
    ProcStat st;
    if (!ReadProcStat(pid, &st) || st.state == 'Z' || st.state == 'X') continue;
    if (pgrps.count(st.pgrp)) out.push_back(pid);
  }
  return out;
}

}  // namespace coord::agent
