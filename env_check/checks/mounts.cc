// The shared ("CFS") mount every node must have at the same path: mounted as its
// own filesystem of an allowed type (not a local directory that happens to sit at
// that path), and answering stat/readdir/write within a deadline.
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "env_check/check.h"
#include "env_check/checks/result.h"

namespace coord::env_check {
namespace {

struct MountEntry {
  std::string mount_point, options, fstype, source, super_options;
};

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        std::all_of(s.begin() + i + 1, s.begin() + i + 4,
                    [](char c) { return c >= '0' && c <= '7'; })) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// proc(5): "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":
// id, parent, major:minor, root, mount point, options, optional fields up to "-",
// then fstype, source, super options.
std::vector<MountEntry> ParseMountinfo(const std::string& text) {
  std::vector<MountEntry> mounts;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string w; f >> w;) fields.push_back(w);
    if (fields.size() < 10) continue;
    auto dash = std::find(fields.begin() + 6, fields.end(), "-");
    if (fields.end() - dash < 4) continue;
    mounts.push_back({Unescape(fields[4]), fields[5], dash[1], Unescape(dash[2]), dash[3]});
  }
  return mounts;
}

bool UnderMount(const std::string& path, const std::string& mount_point) {
  if (mount_point == "/") return true;
  return path.compare(0, mount_point.size(), mount_point) == 0 &&
         (path.size() == mount_point.size() || path[mount_point.size()] == '/');
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

CheckResult SharedMount(const CheckContext& ctx, const System& sys) {
  if (ctx.shared_path.empty())
    return Result("shared_mount", true, Severity::kInfo, "not configured");
  CheckResult r = Result("shared_mount", false, Severity::kFail, "",
                         Join(ctx.shared_fs_types, " or ") + " mounted at " + ctx.shared_path,
                         "mount the shared filesystem at " + ctx.shared_path +
                             " on this node (same export as the other nodes; check /etc/fstab and "
                             "`mount | grep " +
                             ctx.shared_path + "`)");
  StatusOr<std::string> mi = sys.ReadFile("/proc/self/mountinfo");
  if (!mi.ok()) {
    r.found = mi.status().message();
    return r;
  }
  std::string path = ctx.shared_path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // Later entries over-mount earlier ones at the same point, so ties go to the last.
  const MountEntry* best = nullptr;
  std::vector<MountEntry> mounts = ParseMountinfo(*mi);
  for (const MountEntry& m : mounts) {
    if (UnderMount(path, m.mount_point) &&
        (!best || m.mount_point.size() >= best->mount_point.size()))
      best = &m;
  }
  if (!best) {
    r.found = "no mount holds " + ctx.shared_path;
    return r;
  }
  r.found =
      best->fstype + " " + best->source + " on " + best->mount_point + " (" + best->options + ")";
  r.facts.push_back({"shared_fs_type", best->fstype});
  r.facts.push_back({"shared_fs_source", best->source});
  if (best->mount_point == "/") {
    r.found = ctx.shared_path + " is not a mount (on the root filesystem: " + r.found + ")";
    return r;
  }
  bool type_ok = std::find(ctx.shared_fs_types.begin(), ctx.shared_fs_types.end(), best->fstype) !=
                 ctx.shared_fs_types.end();
  if (!type_ok) {
    r.hint = ctx.shared_path + " is " + best->fstype +
             ", a node-local filesystem to the job; mount the " +
             "shared export there, or allow the type in env_check.shared_fs_types";
    return r;
  }
  r.passed = true;
  return r;
}

CheckResult SharedMountResponsive(const CheckContext& ctx, const System& sys) {
  if (ctx.shared_path.empty())
    return Result("shared_mount_responsive", true, Severity::kInfo, "not configured");
  CheckResult r = Result("shared_mount_responsive", true, Severity::kFail, "",
                         "stat, readdir and a small write in " + ctx.shared_path + " succeed",
                         "a hung NFS server or a read-only/permission-restricted mount; check "
                         "`dmesg | grep -i nfs`, the server, and that the job's user can write " +
                             ctx.shared_path);
  Status st = sys.ProbeDirectory(ctx.shared_path, /*write=*/true, ctx.probe_deadline);
  r.passed = st.ok();
  r.found = st.ok() ? ctx.shared_path + " readable and writable" : st.message();
  return r;
}

}  // namespace

const std::vector<Check>& MountChecks() {
  static const std::vector<Check> k = {
      {"shared_mount", "the shared (CFS) path is a mount of an allowed type", SharedMount},
      {"shared_mount_responsive", "the shared path answers stat/readdir/write in time",
       SharedMountResponsive},
  };
  return k;
}

}  // namespace coord::env_check
