// cgroup v2 helpers (see cgroup.h). Runs in coord-agent and coord-supervisor.
#include "agent/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "common/fs.h"

namespace coord::agent {
namespace {

// mountinfo escapes spaces etc. as \ooo.
std::string UnescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

Status WriteSmall(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  if (n < 0) return ErrnoStatus("write " + path, err);
  return Status::Ok();
}

}  // namespace

std::string ParseCgroup2Mount(const std::string& mountinfo) {
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    // "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mount;
    if (head >> id >> parent >> dev >> root >> mount) return UnescapeMountField(mount);
  }
  return "";
}

std::string ParseOwnCgroup(const std::string& proc_self_cgroup) {
  std::istringstream in(proc_self_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 3, "0::") == 0) return line.substr(3);
  }
  return "";
}

std::string DefaultCgroupParent(const std::string& mount, const std::string& own,
                                const std::string& agent_tag) {
  std::string base = mount;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string rel = own;
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  if (!rel.empty() && rel[0] != '/') rel = "/" + rel;
  return base + rel + "/coord-" + agent_tag;
}

StatusOr<std::string> SetUpCgroupParent(const std::string& option, const std::string& agent_tag) {
  if (option == "none") return std::string();
  std::string parent = option;
  if (parent.empty()) {
    auto mountinfo = ReadFile("/proc/self/mountinfo");
    if (!mountinfo.ok()) return mountinfo.status();
    std::string mount = ParseCgroup2Mount(*mountinfo);
    if (mount.empty()) return FailedPrecondition("no cgroup2 file system is mounted");
    auto own = ReadFile("/proc/self/cgroup");
    if (!own.ok()) return own.status();
    std::string own_path = ParseOwnCgroup(*own);
    if (own_path.empty()) return FailedPrecondition("/proc/self/cgroup has no cgroup2 entry");
    parent = DefaultCgroupParent(mount, own_path, agent_tag);
  }
  if (parent.empty() || parent[0] != '/') {
    return InvalidArgument("cgroup parent '" + parent + "' is not an absolute path");
  }
  RETURN_IF_ERROR(MakeDirs(parent));
  if (!PathExists(JoinPath(parent, "cgroup.procs"))) {
    return FailedPrecondition(parent + " is not a cgroup2 directory");
  }
  // A probe child proves we may create the per-job cgroups (read-only mounts and
  // EACCES fail here, once, instead of on every launch).
  std::string probe = JoinPath(parent, "probe." + std::to_string(getpid()));
  if (mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST)
    return ErrnoStatus("mkdir " + probe, errno);
  rmdir(probe.c_str());
  return parent;
}

std::string GenCgroupDir(const std::string& parent, const std::string& job_id, int generation) {
  return JoinPath(parent, job_id + ".g" + std::to_string(generation));
}

std::string RankCgroupDir(const std::string& gen_dir, int rank) {
  return JoinPath(gen_dir, "rank-" + std::to_string(rank));
}

Status CreateGenCgroup(const std::string& gen_dir, const std::vector<int>& ranks) {
  if (mkdir(gen_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir " + gen_dir, errno);
  }
  for (int r : ranks) {
    std::string d = RankCgroupDir(gen_dir, r);
    if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + d, errno);
  }
  return Status::Ok();
}

std::vector<int> CgroupProcs(const std::string& dir) {
  std::vector<int> pids;
  auto text = ReadFile(JoinPath(dir, "cgroup.procs"));
  if (text.ok()) {
    std::istringstream in(*text);
    int pid;
    while (in >> pid) pids.push_back(pid);
  }
  auto names = ListDir(dir);
  if (!names.ok()) return pids;
  for (const auto& n : *names) {
    std::string sub = JoinPath(dir, n);
    if (IsDirectory(sub)) {
      auto more = CgroupProcs(sub);
      pids.insert(pids.end(), more.begin(), more.end());
    }
  }
  return pids;
}

bool CgroupPopulated(const std::string& dir) {
  auto text = ReadFile(JoinPath(dir, "cgroup.events"));
  if (!text.ok()) return false;
  return text->find("populated 1") != std::string::npos;
}

Status CgroupKill(const std::string& dir) {
  if (!IsDirectory(dir)) return Status::Ok();
  Status st = WriteSmall(JoinPath(dir, "cgroup.kill"), "1");
  if (st.ok()) return st;
  // Older kernels: kill what is listed (a fork racing with this is caught by the
  // caller's verify loop, which calls us again).
  for (int pid : CgroupProcs(dir)) kill(pid, SIGKILL);
  return Status::Ok();
}

bool RemoveCgroupTree(const std::string& dir) {
  if (!IsDirectory(dir)) return true;
  auto names = ListDir(dir);
  if (names.ok()) {
    for (const auto& n : *names) {
      std::string sub = JoinPath(dir, n);
      if (IsDirectory(sub)) RemoveCgroupTree(sub);
    }
  }
  return rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

}  // namespace coord::agent
