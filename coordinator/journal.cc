// The job journal (see journal.h for the record format). Encoding uses nlohmann::json for
// the record envelope and protobuf's JSON mapping for the proto payloads, so a person can
// read the file and new proto fields need no code here.
#include "coordinator/journal.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/disk_space.h"
#include "common/fs.h"
#include "common/hostfile.h"
#include "common/json_file.h"
#include "common/logging.h"
#include "coordinator/job_state.h"
#include "coordinator/node_state.h"

namespace coord::coordinator {
namespace {

using nlohmann::json;
constexpr int kFormatVersion = 1;
constexpr char kFileName[] = "journal.jsonl";
constexpr char kTmpInfix[] = ".tmp.";  // WriteFileAtomic's temporaries: journal.jsonl.tmp.PID
constexpr char kLockFileName[] = "coordd.lock";

// Never throws: text from ranks' logs may hold invalid UTF-8, which dump() would reject.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json ProtoToJson(const google::protobuf::Message& msg) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // Cannot fail for our messages (no Any fields); an empty object is the safe fallback.
  if (!google::protobuf::util::MessageToJsonString(msg, &text, options).ok()) return json::object();
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

Status JsonToProto(const json& j, google::protobuf::Message* msg) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a newer coordd may have added fields
  auto st = google::protobuf::util::JsonStringToMessage(Dump(j), msg, options);
  if (!st.ok()) return InvalidArgument(std::string(st.message()));
  return Status::Ok();
}

json Envelope(const char* type, const std::string& job_id) {
  return json{{"v", kFormatVersion}, {"type", type}, {"job", job_id}, {"time_ms", WallMs()}};
}

json HostsToJson(const std::vector<HostEntry>& in) {
  json hosts = json::array();
  for (const HostEntry& h : in) {
    hosts.push_back({{"host", h.host}, {"port", h.port}, {"slots", h.slots}, {"line", h.line}});
  }
  return hosts;
}

std::vector<HostEntry> HostsFromJson(const json& j) {
  std::vector<HostEntry> out;
  for (const json& h : j) {
    HostEntry e;
    e.host = h.at("host").get<std::string>();
    e.port = JsonGet<int>(h.at("port"));
    e.slots = JsonGet<int>(h.at("slots"));
    e.line = JsonGet<int>(h.at("line"));
    out.push_back(e);
  }
  return out;
}

json PlanToJson(const JobPlan& p) {
  json hosts = HostsToJson(p.hosts);
  return json{{"name", p.name},
              {"config_json", p.config_json},
              {"config_path", p.config_path},
              {"hosts_text", p.hosts_text},
              {"hosts_path", p.hosts_path},
              {"workdir", p.workdir},
              {"allow_overlap", p.allow_overlap},
              {"skip_checks", p.skip_checks},
              {"hosts", hosts},
              {"pool", HostsToJson(p.pool)},
              {"min_nodes", p.min_nodes},
              {"max_nodes", p.max_nodes},
              {"nproc_per_node", p.nproc_per_node},
              {"world_size", p.world_size},
              {"master_addr", p.master_addr},
              {"master_port", p.master_port},
              {"argv", p.argv},
              {"env", p.env},
              {"kill_grace_ms", p.kill_grace_ms},
              {"max_restarts", p.max_restarts},
              {"restart_backoff_ms", p.restart_backoff_ms},
              {"hang_timeout_ms", p.hang_timeout_ms},
              {"startup_timeout_ms", p.startup_timeout_ms}};
}

// Throws json::exception on a field of the wrong type; the caller turns it into an error.
JobPlan PlanFromJson(const json& j) {
  JobPlan p;
  p.name = j.at("name").get<std::string>();
  p.config_json = j.at("config_json").get<std::string>();
  p.config_path = j.at("config_path").get<std::string>();
  p.hosts_text = j.at("hosts_text").get<std::string>();
  p.hosts_path = j.at("hosts_path").get<std::string>();
  p.workdir = j.at("workdir").get<std::string>();
  p.allow_overlap = j.at("allow_overlap").get<bool>();
  p.skip_checks = j.value("skip_checks", false);  // journals from before the checks lack it
  p.hosts = HostsFromJson(j.at("hosts"));
  // Journals from before spares: the pool was the nodes.
  p.pool = j.contains("pool") ? HostsFromJson(j.at("pool")) : p.hosts;
  p.min_nodes = JsonValue(j, "min_nodes", static_cast<int>(p.hosts.size()));
  p.max_nodes = JsonValue(j, "max_nodes", static_cast<int>(p.hosts.size()));
  p.nproc_per_node = JsonGet<int>(j.at("nproc_per_node"));
  p.world_size = JsonGet<int>(j.at("world_size"));
  p.master_addr = j.at("master_addr").get<std::string>();
  p.master_port = JsonGet<int>(j.at("master_port"));
  p.argv = j.at("argv").get<std::vector<std::string>>();
  p.env = j.at("env").get<std::map<std::string, std::string>>();
  p.kill_grace_ms = JsonGet<int>(j.at("kill_grace_ms"));
  p.max_restarts = JsonGet<int>(j.at("max_restarts"));
  p.restart_backoff_ms = JsonValue(j, "restart_backoff_ms", 1000);
  p.hang_timeout_ms = JsonValue(j, "hang_timeout_ms", 0);
  // Journals from before the startup deadline: the hang timeout counted from the launch.
  p.startup_timeout_ms = JsonValue(j, "startup_timeout_ms", p.hang_timeout_ms);
  return p;
}

// The numbers replay multiplies (nodes x processes per node) within what a job spec allows
// (common/job_spec.cc: 1024 processes per node; kMaxHosts nodes), so a corrupt record is an
// error rather than an overflow.
constexpr int kMaxProcsPerNode = 1024;

Status CheckPlanLayout(const JobPlan& p) {
  if (p.nproc_per_node < 1 || p.nproc_per_node > kMaxProcsPerNode) {
    return InvalidArgument("plan.nproc_per_node " + std::to_string(p.nproc_per_node) +
                           " is not in [1, " + std::to_string(kMaxProcsPerNode) + "]");
  }
  if (p.pool.size() > static_cast<size_t>(kMaxHosts) ||
      p.hosts.size() > static_cast<size_t>(kMaxHosts)) {
    return InvalidArgument("plan has more than " + std::to_string(kMaxHosts) + " hosts");
  }
  return Status::Ok();
}

// Replays parsed records in order. Jobs are kept in submit order.
class Replayer {
 public:
  Status Apply(const json& rec) {
    if (!rec.is_object()) return InvalidArgument("not a JSON object");
    if (JsonValue(rec, "v", 0) != kFormatVersion) {
      return InvalidArgument("unknown record version " + rec.value("v", json(0)).dump());
    }
    const std::string type = rec.at("type").get<std::string>();
    const std::string job_id = rec.at("job").get<std::string>();
    if (type == "submit") return ApplySubmit(job_id, rec);
    auto it = index_.find(job_id);
    if (it == index_.end())
      return InvalidArgument("record for job '" + job_id + "' before its submit");
    JournaledJob& job = jobs_[it->second];
    if (type == "state") {
      return ApplyState(job, rec.at("status"), rec.value("ranks_unchanged", false));
    }
    if (type == "rank") return ApplyRank(job, rec.at("rank"));
    if (type == "failure") return ApplyFailure(job, rec.at("failure"));
    return InvalidArgument("unknown record type '" + type + "'");
  }
  std::vector<JournaledJob> Take() { return std::move(jobs_); }

 private:
  Status ApplySubmit(const std::string& job_id, const json& rec) {
    if (index_.count(job_id)) return InvalidArgument("job '" + job_id + "' submitted twice");
    JournaledJob job;
    job.plan = PlanFromJson(rec.at("plan"));
    RETURN_IF_ERROR(CheckPlanLayout(job.plan));
    json status = rec.at("status");
    UpgradeLegacyNodeStates(&status);
    RETURN_IF_ERROR(JsonToProto(status, &job.status));
    if (job.status.job_id() != job_id) return InvalidArgument("status of another job");
    index_[job_id] = jobs_.size();
    jobs_.push_back(std::move(job));
    return Status::Ok();
  }
  Status ApplyState(JournaledJob& job, const json& j, bool ranks_unchanged) {
    JobStatus next;
    json upgraded = j;
    UpgradeLegacyNodeStates(&upgraded);
    RETURN_IF_ERROR(JsonToProto(upgraded, &next));
    if (ranks_unchanged) next.mutable_ranks()->Swap(job.status.mutable_ranks());
    JobState from = job.status.state();
    if (next.job_id() != job.status.job_id()) return InvalidArgument("status of another job");
    // Same-state records only refresh the snapshot (node states, master port).
    if (next.state() != from && !IsValidTransition(from, next.state())) {
      return InvalidArgument(std::string("invalid transition ") + StateName(from) + " -> " +
                             StateName(next.state()) + " for job '" + job.status.job_id() + "'");
    }
    job.status = std::move(next);
    // A restart may have moved the job to other nodes (spares, elastic): the status's
    // node list is the current layout.
    if (job.status.nodes().empty()) return Status::Ok();
    std::vector<HostEntry> hosts;
    for (const NodeStatus& n : job.status.nodes()) {
      auto it = std::find_if(job.plan.pool.begin(), job.plan.pool.end(), [&](const HostEntry& h) {
        return h.host == n.host() && h.port == n.port() && h.line == n.line();
      });
      if (it == job.plan.pool.end()) {
        return InvalidArgument("job '" + job.status.job_id() + "' runs on " + n.host() + ":" +
                               std::to_string(n.port()) + ", which is not in its hosts file");
      }
      hosts.push_back(*it);
    }
    if (job.status.ranks_size() != static_cast<int>(hosts.size()) * job.plan.nproc_per_node) {
      return InvalidArgument("job '" + job.status.job_id() + "' has " +
                             std::to_string(job.status.ranks_size()) + " ranks on " +
                             std::to_string(hosts.size()) + " nodes");
    }
    SetNodes(&job.plan, std::move(hosts));
    return Status::Ok();
  }
  // The last failure, completed (stderr tail, kill confirmed, relaunched): it is also the
  // last entry of the history.
  Status ApplyFailure(JournaledJob& job, const json& j) {
    RETURN_IF_ERROR(JsonToProto(j, job.status.mutable_failure()));
    const int n = job.status.failures_size();
    if (n > 0) *job.status.mutable_failures(n - 1) = job.status.failure();
    return Status::Ok();
  }
  Status ApplyRank(JournaledJob& job, const json& j) {
    coord::agent::RankStatus rank;
    RETURN_IF_ERROR(JsonToProto(j, &rank));
    if (rank.rank() < 0 || rank.rank() >= job.status.ranks_size()) {
      return InvalidArgument("rank " + std::to_string(rank.rank()) + " outside job '" +
                             job.status.job_id() + "'");
    }
    *job.status.mutable_ranks(rank.rank()) = rank;
    return Status::Ok();
  }

  std::vector<JournaledJob> jobs_;
  std::map<std::string, size_t> index_;
};

// Splits `text` at '\n'; a final piece without '\n' is a line too.
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

bool IsBlank(const std::string& line) {
  return line.find_first_not_of(std::string(" \t\r\0", 4)) == std::string::npos;
}

// Replays `text`; sets *keep_len to the bytes to keep: through the last good record, so a
// torn last line and trailing garbage (zero-filled blocks after a crash) are cut off.
Status ReplayText(const std::string& path, const std::string& text, std::vector<JournaledJob>* jobs,
                  size_t* keep_len) {
  std::vector<std::string> lines = SplitLines(text);
  size_t last = lines.size();
  while (last > 0 && IsBlank(lines[last - 1])) --last;
  Replayer replayer;
  size_t offset = 0;
  *keep_len = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    size_t line_start = offset;
    offset += line.size() + 1;
    if (IsBlank(line)) continue;
    std::string where = path + ":" + std::to_string(i + 1);
    // The shared parser bounds the nesting: JsonToProto's Dump() recurses over it.
    StatusOr<json> parsed = ParseJson(line, where);
    if (!parsed.ok()) {
      if (i + 1 == last) {
        LOG_WARN << where << ": torn final record (coordd stopped mid-write?); skipped";
        *keep_len = line_start;
        break;
      }
      return InvalidArgument(where +
                             ": corrupt journal record (not JSON); fix or move the "
                             "journal aside to start coordd (" +
                             parsed.status().message() + ")");
    }
    const json& rec = *parsed;
    Status st;
    try {
      st = replayer.Apply(rec);
    } catch (const json::exception& e) {
      st = InvalidArgument(std::string("bad field: ") + e.what());
    }
    if (!st.ok()) return InvalidArgument(where + ": " + st.message());
    *keep_len = std::min(offset, text.size());
  }
  *jobs = replayer.Take();
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& state_dir,
                                                 std::vector<JournaledJob>* jobs) {
  RETURN_IF_ERROR(MakeDirs(state_dir, 0700));
  const std::string lock_path = JoinPath(state_dir, kLockFileName);
  const int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return ErrnoStatus("open " + lock_path, errno);
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd);
    return FailedPrecondition("another coordd is using state dir " + state_dir + " (" + lock_path +
                              " is locked)");
  }
  std::string path = JoinPath(state_dir, kFileName);
  // Compactions that did not reach their rename (WriteFileAtomic's temporaries): the
  // journal itself is whole.
  if (StatusOr<std::vector<std::string>> names = ListDir(state_dir); names.ok()) {
    for (const std::string& name : *names) {
      if (name.rfind(std::string(kFileName) + kTmpInfix, 0) == 0) {
        (void)unlink(JoinPath(state_dir, name).c_str());
      }
    }
  }
  bool existed = PathExists(path);
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    close(lock_fd);
    return ErrnoStatus("open " + path, errno);
  }
  std::unique_ptr<Journal> journal(new Journal(path, fd, lock_fd));
  if (!existed) {
    // The new file's directory entry must be durable before its records are.
    int dfd = open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  size_t keep_len = text.size();
  RETURN_IF_ERROR(ReplayText(path, text, jobs, &keep_len));
  if (keep_len < text.size()) {
    // Cut the torn tail so the next record starts on a line of its own.
    if (ftruncate(fd, static_cast<off_t>(keep_len)) != 0 || fdatasync(fd) != 0) {
      return ErrnoStatus("truncate " + path, errno);
    }
  }
  journal->size_ = journal->snapshot_size_ = keep_len;
  if (keep_len > 0 && text[keep_len - 1] != '\n') {
    RETURN_IF_ERROR(journal->AppendLine(""));  // a good last record without its newline
  }
  return journal;
}

Journal::~Journal() {
  close(fd_);
  close(lock_fd_);
}

Status Journal::AppendLine(const std::string& line, bool sync) {
  std::string data = line + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  Status written = WriteAll(fd_, data, path_);
  if (!written.ok()) {
    // A full disk can take part of the record: cut it off, or the next record would
    // share its line and the journal would no longer replay.
    if (ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      return written.WithContext("and cutting the partial record off failed too (" +
                                 std::string(std::strerror(errno)) + ")");
    }
    return written;
  }
  size_ += data.size();
  if (sync && fdatasync(fd_) != 0) return ErrnoStatus("fdatasync " + path_, errno);
  return Status::Ok();
}

Status Journal::Compact(const std::vector<JournaledJob>& jobs) {
  std::string snapshot;
  for (const JournaledJob& job : jobs) {
    json rec = Envelope("submit", job.status.job_id());
    rec["plan"] = PlanToJson(job.plan);
    rec["status"] = ProtoToJson(job.status);
    snapshot += Dump(rec) + "\n";
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Temporary file, fsync, rename, fsync of the directory: the old journal or the new.
  Status written = WriteFileAtomic(path_, snapshot, /*durable=*/true, 0600);
  if (!written.ok()) return written.WithContext("compacting the journal (it stays as it was)");
  // From here journal.jsonl is the snapshot: appends must go to it.
  const int fd = open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path_ + " after compacting it", errno);
  close(fd_);
  fd_ = fd;
  size_ = snapshot_size_ = snapshot.size();
  return Status::Ok();
}

Status Journal::CheckRoom(uint64_t bytes) {
  // By path, not fd_: path_ is const and always names the journal (compaction renames
  // over it), so no lock is needed.
  ASSIGN_OR_RETURN(const uint64_t free_bytes, FreeBytes(path_));
  if (free_bytes >= bytes) return Status::Ok();
  return ResourceExhausted(path_ + ": only " + std::to_string(free_bytes / 1024) +
                           " KiB free on its filesystem, and coordd keeps " +
                           std::to_string(bytes >> 20) +
                           " MiB for journaling the jobs it runs; free space there to start jobs "
                           "(running jobs are still supervised)");
}

uint64_t Journal::size_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

uint64_t Journal::snapshot_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_size_;
}

Status Journal::AppendSubmit(const JobPlan& plan, const JobStatus& status) {
  json rec = Envelope("submit", status.job_id());
  rec["plan"] = PlanToJson(plan);
  rec["status"] = ProtoToJson(status);
  return AppendLine(Dump(rec));
}

Status Journal::AppendState(const JobStatus& status, bool sync, bool ranks_unchanged) {
  json rec = Envelope("state", status.job_id());
  rec["status"] = ProtoToJson(status);
  if (ranks_unchanged) rec["ranks_unchanged"] = true;
  return AppendLine(Dump(rec), sync);
}

Status Journal::AppendRank(const std::string& job_id, const coord::agent::RankStatus& rank) {
  json rec = Envelope("rank", job_id);
  rec["rank"] = ProtoToJson(rank);
  return AppendLine(Dump(rec), /*sync=*/false);
}

Status Journal::AppendFailure(const std::string& job_id, const Failure& failure) {
  json rec = Envelope("failure", job_id);
  rec["failure"] = ProtoToJson(failure);
  return AppendLine(Dump(rec));
}

}  // namespace coord::coordinator
