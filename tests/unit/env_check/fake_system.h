// A node described by maps, for env_check tests: every System query answers from
// a public member, so a test states the node it needs in a few assignments
// (fs.files["/proc/self/mountinfo"] = ...; fs.commands["nvidia-smi"] = ...).
// Anything not set looks like a bare node: missing files, programs not found,
// no symbols, empty environment, free ports, unresolvable hosts.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "env_check/system.h"

namespace coord::env_check::testing {

class FakeSystem : public System {
 public:
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<std::string>> dirs;
  // Keyed by the whole argv joined with spaces ("nvidia-smi -q"), else by argv[0].
  std::map<std::string, CommandResult> commands;
  // "library:symbol" -> address (tests point these at their own functions).
  std::map<std::string, void*> symbols;
  std::map<std::string, std::string> env;
  std::string hostname = "node0";
  std::map<std::string, uint64_t> free_bytes, total_bytes;  // by path
  std::map<int, ResourceLimit> limits;                      // default: unlimited
  std::map<std::string, Status> probes;                     // default: OK
  std::chrono::milliseconds space_delay{0};                 // Space() blocks this long
  std::map<std::string, ProgramInfo> programs;              // by name as given
  mutable std::map<std::string, std::string> small_files;   // WriteSmallFile's
  std::set<int> busy_ports;
  std::map<std::string, std::string> hosts;            // name -> address
  mutable std::vector<std::vector<std::string>> runs;  // every Run() argv, in order
  // RunAll calls the checks on concurrent threads: what the fake records is guarded.
  mutable std::mutex record_mu;

  StatusOr<std::string> ReadFile(const std::string& path) const override {
    auto it = files.find(path);
    if (it == files.end()) return NotFound(path + ": no such file");
    return it->second;
  }
  bool Exists(const std::string& path) const override {
    return files.count(path) > 0 || dirs.count(path) > 0;
  }
  StatusOr<std::vector<std::string>> ListDir(const std::string& path) const override {
    auto it = dirs.find(path);
    if (it == dirs.end()) return NotFound(path + ": no such directory");
    return it->second;
  }
  CommandResult Run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds) const override {
    {
      std::lock_guard<std::mutex> lock(record_mu);
      runs.push_back(argv);
    }
    std::string joined;
    for (const std::string& a : argv) joined += (joined.empty() ? "" : " ") + a;
    if (auto it = commands.find(joined); it != commands.end()) return it->second;
    if (!argv.empty()) {
      if (auto it = commands.find(argv[0]); it != commands.end()) return it->second;
    }
    CommandResult r;
    r.not_found = true;
    return r;
  }
  void* Symbol(const std::string& library, const std::string& symbol) const override {
    auto it = symbols.find(library + ":" + symbol);
    return it == symbols.end() ? nullptr : it->second;
  }
  std::string Getenv(const std::string& name) const override {
    auto it = env.find(name);
    return it == env.end() ? "" : it->second;
  }
  std::string Hostname() const override { return hostname; }
  StatusOr<FsSpace> Space(const std::string& path, std::chrono::milliseconds) const override {
    if (space_delay.count() > 0) std::this_thread::sleep_for(space_delay);
    auto f = free_bytes.find(path), t = total_bytes.find(path);
    if (f == free_bytes.end() && t == total_bytes.end())
      return NotFound("statvfs " + path + ": No such file or directory");
    return FsSpace{f == free_bytes.end() ? 0 : f->second, t == total_bytes.end() ? 0 : t->second};
  }
  StatusOr<ProgramInfo> LocateProgram(const std::string& program, const std::string&,
                                      std::chrono::milliseconds) const override {
    auto it = programs.find(program);
    if (it == programs.end()) return NotFound(program + " not found on PATH");
    return it->second;
  }
  Status WriteSmallFile(const std::string& path, const std::string& content,
                        std::chrono::milliseconds) const override {
    std::lock_guard<std::mutex> lock(record_mu);
    small_files[path] = content;
    return Status::Ok();
  }
  StatusOr<std::vector<StatusOr<std::string>>> ReadSmallFiles(
      const std::vector<std::string>& paths, std::chrono::milliseconds) const override {
    std::lock_guard<std::mutex> lock(record_mu);
    std::vector<StatusOr<std::string>> out;
    for (const std::string& path : paths) {
      auto it = small_files.find(path);
      if (it == small_files.end())
        out.push_back(NotFound("open " + path + ": No such file or directory"));
      else
        out.push_back(it->second);
    }
    return out;
  }
  Status RemoveSmallFile(const std::string& path, std::chrono::milliseconds) const override {
    std::lock_guard<std::mutex> lock(record_mu);
    small_files.erase(path);
    return Status::Ok();
  }
  ResourceLimit Limit(int resource) const override {
    auto it = limits.find(resource);
    if (it == limits.end()) return {UINT64_MAX, UINT64_MAX};
    return it->second;
  }
  Status ProbeDirectory(const std::string& path, bool, std::chrono::milliseconds) const override {
    auto it = probes.find(path);
    return it == probes.end() ? Status::Ok() : it->second;
  }
  bool PortFree(int port) const override { return busy_ports.count(port) == 0; }
  StatusOr<std::string> Resolve(const std::string& host) const override {
    auto it = hosts.find(host);
    if (it == hosts.end()) return NotFound(host + ": Name or service not known");
    return it->second;
  }
};

}  // namespace coord::env_check::testing
