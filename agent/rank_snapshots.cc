// RankSnapshots: where each running rank of a generation on this node is, for
// coordd's hang report. Reads each rank's flight record (rank-R.flight, which the rank
// updates in place: readable while the rank is stopped, hung or busy) and its process
// state from /proc; never signals or waits for the rank.
#include "agent/agent_service.h"
#include "agent/proc_scan.h"
#include "common/flight_record.h"
#include "common/fs.h"

namespace coord::agent {
namespace {

struct StateName {
  char letter;
  const char* name;
};
constexpr StateName kProcStates[] = {
    {'R', "running"}, {'S', "sleeping"}, {'D', "disk sleep"}, {'T', "stopped"},
    {'t', "traced"},  {'Z', "zombie"},   {'X', "dead"},       {'I', "idle"},
};

// The process state of `pid` if it is still the process that started at start_ticks.
std::string ProcessState(const ProcId& proc) {
  ProcStat st;
  if (proc.pid <= 0 || !ReadProcStat(proc.pid, &st)) return "";
  if (proc.start_ticks != 0 && st.start_ticks != proc.start_ticks) return "";
  for (const StateName& s : kProcStates) {
    if (s.letter == st.state) return s.name;
  }
  return "";
}

void FillFromFlight(const FlightSnapshot& f, int64_t now_ms, RankSnapshot* out) {
  out->set_iteration(f.iteration);
  out->set_phase(RankPhaseName(f.phase));
  out->set_micro_batch(f.micro_batch);
  out->set_phase_ms(f.phase_since_ms > 0 ? std::max<int64_t>(0, now_ms - f.phase_since_ms) : 0);
  out->set_collectives(f.collectives);
  for (const coord::CollectiveRecord& c : f.recent) {
    coord::agent::CollectiveRecord* r = out->add_recent();
    r->set_seq(c.seq);
    r->set_op(CollectiveOpName(c.op));
    r->set_group(c.group);
    r->set_bytes(c.bytes);
    r->set_peer(c.peer);
    r->set_started_ms(c.started_ms);
    r->set_finished_ms(c.finished_ms);
    r->set_failed(c.failed);
  }
}

}  // namespace

Status AgentService::RankSnapshots(const RankSnapshotsRequest& req, RankSnapshotsReply* reply) {
  RETURN_IF_ERROR(ValidateJobId(req.job_id()));
  struct Target {
    int rank;
    ProcId proc;
    std::string path;
  };
  std::vector<Target> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    GenPtr gen = FindLocked(req.job_id(), req.generation());
    if (!gen) {
      return NotFound("job " + req.job_id() + " generation " + std::to_string(req.generation()) +
                      " is not known on node " + hostname_);
    }
    for (const Rank& r : gen->ranks) {
      if (r.state != RANK_RUNNING) continue;
      targets.push_back({r.rank, r.proc, JoinPath(gen->dir, RankFlightName(r.rank))});
    }
  }
  // Files and /proc are read without mu_: a slow disk must not stall the heartbeats.
  reply->set_hostname(hostname_);
  for (const Target& t : targets) {
    RankSnapshot* s = reply->add_ranks();
    s->set_rank(t.rank);
    s->set_pid(t.proc.pid);
    s->set_process_state(ProcessState(t.proc));
    s->set_time_ms(clock_->WallMs());
    StatusOr<FlightSnapshot> f = ReadFlightRecord(t.path);
    if (!f.ok()) {
      s->set_error(f.status().code() == StatusCode::kNotFound
                       ? "no flight record (the program does not write COORD_FLIGHT_RECORD)"
                       : f.status().message());
      continue;
    }
    FillFromFlight(*f, s->time_ms(), s);
  }
  return Status::Ok();
}

}  // namespace coord::agent
