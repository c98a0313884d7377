// journal_replay_bench: how long coordd's start-up replay of its journal takes after a
// long time of jobs and restarts, written record by record (what coordd appends), and
// after compaction (coordinator/journal.h: a snapshot of the newest --keep finished jobs).
// Prints one JSON object with both replays and their ratio (the uncompacted replay is
// the reference, measured in the same run). Results: docs/benchmarks.md.
//
//   journal_replay_bench --dir /tmp/x --jobs 3000 --nodes 8 --nproc 8 --restarts 2 --keep 1000
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/fs.h"
#include "coordinator/job_state.h"
#include "coordinator/journal.h"

namespace {

using coord::coordinator::JobPlan;
using coord::coordinator::JobStatus;
using coord::coordinator::Journal;
using coord::coordinator::JournaledJob;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string dir;
  int jobs = 3000, nodes = 8, nproc = 8, restarts = 2, keep = 1000;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--dir") {
      a->dir = v;
      continue;
    }
    const long n = std::strtol(v, nullptr, 10);
    if (n < 0 || n > 1000000) return false;
    if (k == "--jobs") a->jobs = static_cast<int>(n);
    else if (k == "--nodes") a->nodes = static_cast<int>(n);
    else if (k == "--nproc") a->nproc = static_cast<int>(n);
    else if (k == "--restarts") a->restarts = static_cast<int>(n);
    else if (k == "--keep") a->keep = static_cast<int>(n);
    else return false;
  }
  return !a->dir.empty() && a->nodes > 0 && a->nproc > 0;
}

JobPlan Plan(const Args& a) {
  JobPlan p;
  p.name = "train";
  p.config_json = R"({"name": "train", "launch": {"command": ["gpt-rank", "train"]}})";
  p.config_path = "job.json";
  p.hosts_path = "hosts.txt";
  p.workdir = "/cfs/work";
  for (int n = 0; n < a.nodes; ++n) {
    coord::HostEntry h;
    h.host = "node-" + std::to_string(n);
    h.slots = a.nproc;
    h.line = n + 1;
    p.hosts_text += h.host + " slots=" + std::to_string(a.nproc) + "\n";
    p.pool.push_back(h);
  }
  coord::coordinator::SetNodes(&p, p.pool);
  p.nproc_per_node = a.nproc;
  p.world_size = a.nodes * a.nproc;
  p.argv = {"gpt-rank", "train", "--config", "job.json"};
  p.max_restarts = a.restarts;
  return p;
}

JobStatus Status(const JobPlan& p, const std::string& id) {
  JobStatus s;
  s.set_job_id(id);
  s.set_state(coord::coordinator::PENDING);
  s.set_world_size(p.world_size);
  s.set_nproc_per_node(p.nproc_per_node);
  for (size_t n = 0; n < p.hosts.size(); ++n) {
    auto* node = s.add_nodes();
    node->set_host(p.hosts[n].host);
    node->set_port(p.hosts[n].port);
    node->set_line(p.hosts[n].line);
    node->set_node_rank(static_cast<int>(n));
  }
  for (int r = 0; r < p.world_size; ++r) {
    auto* rank = s.add_ranks();
    rank->set_job_id(id);
    rank->set_rank(r);
    rank->set_node_rank(r / p.nproc_per_node);
    rank->set_local_rank(r % p.nproc_per_node);
  }
  return s;
}

#define CHECK_OK(expr)                                                   \
  do {                                                                   \
    coord::Status st_ = (expr);                                          \
    if (!st_.ok()) {                                                     \
      std::fprintf(stderr, "%s: %s\n", #expr, st_.ToString().c_str());  \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

// What coordd appends over one job's life: submit, each generation's launch, its ranks
// starting, a failure and restart, and at the end every rank's exit and SUCCEEDED.
void WriteJob(Journal* j, const JobPlan& plan, const std::string& id, int restarts) {
  using namespace coord::coordinator;
  JobStatus s = Status(plan, id);
  CHECK_OK(j->AppendSubmit(plan, s));
  for (int g = 0; g <= restarts; ++g) {
    s.set_generation(g);
    s.set_state(LAUNCHING);
    CHECK_OK(j->AppendState(s, false));
    s.set_state(RUNNING);
    CHECK_OK(j->AppendState(s));
    for (auto& r : *s.mutable_ranks()) {
      r.set_state(coord::agent::RANK_RUNNING);
      r.set_pid(1000 + r.rank());
      CHECK_OK(j->AppendRank(id, r));
    }
    if (g == restarts) break;
    Failure f;
    f.set_kind(FAILURE_RANK_EXIT);
    f.set_rank(3);
    f.set_exit_code(1);
    f.set_message("rank 3 exited 1");
    *s.mutable_failure() = f;
    *s.add_failures() = f;
    s.set_state(RESTARTING);
    CHECK_OK(j->AppendState(s));
    f.add_stderr_tail("Traceback (most recent call last):");
    CHECK_OK(j->AppendFailure(id, f));
  }
  for (auto& r : *s.mutable_ranks()) {
    r.set_state(coord::agent::RANK_EXITED);
    r.set_exit_code(0);
    CHECK_OK(j->AppendRank(id, r));
  }
  s.set_state(SUCCEEDED);
  CHECK_OK(j->AppendState(s));
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Opens (replays) the journal; returns the seconds it took.
double TimedReplay(const std::string& dir, std::vector<JournaledJob>* jobs) {
  const auto t0 = Clock::now();
  auto j = Journal::Open(dir, jobs);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!j.ok()) {
    std::fprintf(stderr, "replay: %s\n", j.status().ToString().c_str());
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: journal_replay_bench --dir DIR [--jobs N] [--nodes N] [--nproc N] "
                 "[--restarts N] [--keep N]\n");
    return 2;
  }
  CHECK_OK(coord::MakeDirs(a.dir));
  const std::string path = coord::JoinPath(a.dir, "journal.jsonl");
  if (coord::PathExists(path)) {
    std::fprintf(stderr, "%s exists: give an empty --dir\n", path.c_str());
    return 2;
  }
  const JobPlan plan = Plan(a);
  const auto t0 = Clock::now();
  {
    std::vector<JournaledJob> none;
    auto j = Journal::Open(a.dir, &none);
    CHECK_OK(j.status());
    for (int i = 0; i < a.jobs; ++i) WriteJob(j->get(), plan, "train-" + std::to_string(i), a.restarts);
  }
  const double write_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const uint64_t full_bytes = FileSize(path);
  std::vector<JournaledJob> jobs;
  const double full_s = TimedReplay(a.dir, &jobs);
  const size_t replayed = jobs.size();
  // What coordd's compaction keeps: the newest `keep` finished jobs (all are finished).
  if (jobs.size() > static_cast<size_t>(a.keep)) {
    jobs.erase(jobs.begin(), jobs.end() - a.keep);
  }
  double compact_s = 0;
  {
    std::vector<JournaledJob> unused;
    auto j = Journal::Open(a.dir, &unused);
    CHECK_OK(j.status());
    const auto c0 = Clock::now();
    CHECK_OK((*j)->Compact(jobs));
    compact_s = std::chrono::duration<double>(Clock::now() - c0).count();
  }
  const uint64_t compact_bytes = FileSize(path);
  std::vector<JournaledJob> after;
  const double snapshot_s = TimedReplay(a.dir, &after);
  std::printf(
      "{\"jobs\": %d, \"ranks_per_job\": %d, \"restarts\": %d, \"keep\": %d, \"write_s\": %.3f, "
      "\"full_bytes\": %llu, \"full_replay_s\": %.4f, \"full_jobs\": %zu, \"compact_s\": %.4f, "
      "\"snapshot_bytes\": %llu, \"snapshot_replay_s\": %.4f, \"snapshot_jobs\": %zu, "
      "\"replay_speedup\": %.1f}\n",
      a.jobs, a.nodes * a.nproc, a.restarts, a.keep, write_s,
      static_cast<unsigned long long>(full_bytes), full_s, replayed, compact_s,
      static_cast<unsigned long long>(compact_bytes), snapshot_s, after.size(),
      snapshot_s > 0 ? full_s / snapshot_s : 0.0);
  return 0;
}
