// State-dir layout and records (see state_dir.h). Runs in coord-agent and in
// coord-supervisor; records are JSON so people can read them with cat.
#include "agent/state_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "common/logging.h"

namespace coord::agent {

using nlohmann::json;

// --- names and validation ----------------------------------------------------

Status ValidateJobId(const std::string& job_id) {
  if (job_id.empty()) return InvalidArgument("job_id is empty");
  if (job_id.size() > 128) return InvalidArgument("job_id is longer than 128 characters");
  if (job_id[0] == '.') return InvalidArgument("job_id '" + job_id + "' starts with '.'");
  for (char c : job_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return InvalidArgument("job_id '" + job_id +
                             "' may only contain letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

std::string AgentTag(const std::string& abs_state_dir) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64: stable across builds and compilers
  for (unsigned char c : abs_state_dir) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

std::string JobTag(const std::string& agent_tag, const std::string& job_id, int generation) {
  return agent_tag + ":" + job_id + ":g" + std::to_string(generation);
}

bool ParseJobTag(const std::string& tag, std::string* agent_tag, std::string* job_id,
                 int* generation) {
  size_t first = tag.find(':');
  size_t last = tag.rfind(':');
  if (first == std::string::npos || first == last) return false;
  int gen = ParseGenDirName(tag.substr(last + 1));
  if (gen < 0) return false;
  *agent_tag = tag.substr(0, first);
  *job_id = tag.substr(first + 1, last - first - 1);
  *generation = gen;
  return !agent_tag->empty() && !job_id->empty();
}

std::string JobsDir(const std::string& state_dir) { return JoinPath(state_dir, "jobs"); }

std::string GenDir(const std::string& state_dir, const std::string& job_id, int generation) {
  return JoinPath(JoinPath(JobsDir(state_dir), job_id), "g" + std::to_string(generation));
}

static int ParseNonNegative(const std::string& s) {
  if (s.empty() || s.size() > 9) return -1;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

int ParseGenDirName(const std::string& name) {
  if (name.size() < 2 || name[0] != 'g') return -1;
  return ParseNonNegative(name.substr(1));
}

std::string RankStartedName(int rank) { return "rank-" + std::to_string(rank) + ".started"; }
std::string RankExitName(int rank) { return "rank-" + std::to_string(rank) + ".exit"; }
std::string RankOutName(int rank) { return "rank-" + std::to_string(rank) + ".out"; }
std::string RankErrName(int rank) { return "rank-" + std::to_string(rank) + ".err"; }
std::string RankProgressName(int rank) { return "rank-" + std::to_string(rank) + ".progress"; }
std::string RankFlightName(int rank) { return "rank-" + std::to_string(rank) + ".flight"; }

int ParseRankRecordName(const std::string& name, const std::string& suffix) {
  const std::string prefix = "rank-";
  if (name.size() <= prefix.size() + suffix.size()) return -1;
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return -1;
  return ParseNonNegative(name.substr(prefix.size(), name.size() - prefix.size() - suffix.size()));
}

Status WriteRecord(const std::string& path, const std::string& contents) {
  // Records must survive a crashed process, not a power loss: no fsync on the
  // launch path (it would cost milliseconds per rank).
  return WriteFileAtomic(path, contents, /*durable=*/false);
}

Status CreateRecordReserve(const std::string& gen_dir) {
  const std::string path = JoinPath(gen_dir, kReserveFile);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create " + path, errno);
  // Real blocks, not a sparse file: freeing it must give the space back.
  const int err = posix_fallocate(fd, 0, kRecordReserveBytes);
  close(fd);
  if (err != 0) {
    unlink(path.c_str());
    return ErrnoStatus("reserve " + std::to_string(kRecordReserveBytes / 1024) + " KiB in " + path,
                       err);
  }
  return Status::Ok();
}

Status WriteRecordOrUseReserve(const std::string& gen_dir, const std::string& path,
                               const std::string& contents) {
  Status s = WriteRecord(path, contents);
  if (s.ok() || s.code() != StatusCode::kResourceExhausted) return s;
  const std::string reserve = JoinPath(gen_dir, kReserveFile);
  if (unlink(reserve.c_str()) != 0) return s;  // spent already
  LOG_WARN << path << ": the disk is full; written from the space kept for the last records";
  return WriteRecord(path, contents);
}

// --- records -----------------------------------------------------------------

std::string ToJson(const GenSpec& v) {
  json ranks = json::array();
  for (const auto& r : v.ranks) {
    ranks.push_back(
        {{"rank", r.rank}, {"local_rank", r.local_rank}, {"argv", r.argv}, {"env", r.env}});
  }
  json j = {{"job_id", v.job_id}, {"generation", v.generation}, {"node_rank", v.node_rank},
            {"tag", v.tag},       {"workdir", v.workdir},       {"cgroup_dir", v.cgroup_dir},
            {"ranks", ranks}};
  return j.dump(1) + "\n";
}

std::string ToJson(const ProcId& v) {
  return json({{"pid", v.pid}, {"start_ticks", v.start_ticks}}).dump() + "\n";
}

std::string ToJson(const RankStarted& v) {
  return json({{"rank", v.rank},
               {"local_rank", v.local_rank},
               {"pid", v.proc.pid},
               {"start_ticks", v.proc.start_ticks},
               {"start_ms", v.start_ms}})
             .dump() +
         "\n";
}

std::string ToJson(const RankExit& v) {
  return json({{"rank", v.rank},
               {"exit_code", v.exit_code},
               {"signal", v.signal},
               {"end_ms", v.end_ms},
               {"error", v.error}})
             .dump() +
         "\n";
}

std::string ToJson(const Launched& v) {
  return json({{"ok", v.ok}, {"failed_rank", v.failed_rank}, {"error", v.error}}).dump() + "\n";
}

// Parses `text` and runs `fill` on it, turning any JSON error into INVALID_ARGUMENT.
template <typename F>
static Status ParseWith(const std::string& text, F fill) {
  try {
    json j = json::parse(text);
    fill(j);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad record: ") + e.what());
  }
  return Status::Ok();
}

Status FromJson(const std::string& text, GenSpec* v) {
  return ParseWith(text, [v](const json& j) {
    v->job_id = j.at("job_id").get<std::string>();
    v->generation = JsonGet<int>(j.at("generation"));
    v->node_rank = JsonGet<int>(j.at("node_rank"));
    v->tag = j.at("tag").get<std::string>();
    v->workdir = j.at("workdir").get<std::string>();
    v->cgroup_dir = j.at("cgroup_dir").get<std::string>();
    v->ranks.clear();
    for (const auto& r : j.at("ranks")) {
      RankSpec rs;
      rs.rank = JsonGet<int>(r.at("rank"));
      rs.local_rank = JsonGet<int>(r.at("local_rank"));
      rs.argv = r.at("argv").get<std::vector<std::string>>();
      rs.env = r.at("env").get<std::vector<std::string>>();
      v->ranks.push_back(std::move(rs));
    }
  });
}

Status FromJson(const std::string& text, ProcId* v) {
  return ParseWith(text, [v](const json& j) {
    v->pid = JsonGet<int>(j.at("pid"));
    v->start_ticks = JsonGet<uint64_t>(j.at("start_ticks"));
  });
}

Status FromJson(const std::string& text, RankStarted* v) {
  return ParseWith(text, [v](const json& j) {
    v->rank = JsonGet<int>(j.at("rank"));
    v->local_rank = JsonGet<int>(j.at("local_rank"));
    v->proc.pid = JsonGet<int>(j.at("pid"));
    v->proc.start_ticks = JsonGet<uint64_t>(j.at("start_ticks"));
    v->start_ms = JsonGet<int64_t>(j.at("start_ms"));
  });
}

Status FromJson(const std::string& text, RankExit* v) {
  return ParseWith(text, [v](const json& j) {
    v->rank = JsonGet<int>(j.at("rank"));
    v->exit_code = JsonGet<int>(j.at("exit_code"));
    v->signal = JsonGet<int>(j.at("signal"));
    v->end_ms = JsonGet<int64_t>(j.at("end_ms"));
    v->error = j.at("error").get<std::string>();
  });
}

Status FromJson(const std::string& text, Launched* v) {
  return ParseWith(text, [v](const json& j) {
    v->ok = j.at("ok").get<bool>();
    v->failed_rank = JsonGet<int>(j.at("failed_rank"));
    v->error = j.at("error").get<std::string>();
  });
}

template <typename T>
Status ReadRecord(const std::string& path, T* out) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return FromJson(*text, out).WithContext(path);
}

template Status ReadRecord<GenSpec>(const std::string&, GenSpec*);
template Status ReadRecord<ProcId>(const std::string&, ProcId*);
template Status ReadRecord<RankStarted>(const std::string&, RankStarted*);
template Status ReadRecord<RankExit>(const std::string&, RankExit*);
template Status ReadRecord<Launched>(const std::string&, Launched*);

}  // namespace coord::agent
