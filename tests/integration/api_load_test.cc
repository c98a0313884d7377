// coordd's API under load while it supervises a job: 8 agents x 8 ranks (rank_probe)
// write their logs at full speed, then a progress record every 100 ms for 6 s, while 200 clients,
// each on its own connection, hammer coordd: 40 follow every rank's log (`coordctl logs
// -f`), 40 follow one rank's, 60 poll the job's status and 60 list the jobs. Must hold:
//   - every follower gets every line of what it follows, in order, none twice;
//   - no heartbeat misses its deadline: the job ends SUCCEEDED with no failure (a late
//     heartbeat would be a lost node, and a restart);
//   - coordd's memory stays bounded (its peak RSS is printed and bounded far above what
//     it needs, so only a leak or an unbounded buffer trips it).
// Timings are printed, not asserted (speed belongs to bench/).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/rpc_util.h"
#include "coordinator.grpc.pb.h"
#include "tests/support/files.h"
#include "tests/support/local_cluster.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord::testing {
namespace {

using nlohmann::json;
namespace pb = coord::coordinator;

constexpr int kNodes = 8, kRanksPerNode = 8, kRanks = kNodes * kRanksPerNode;
constexpr int kLinesPerRank = 4000;
constexpr int kWholeJobFollowers = 40, kRankFollowers = 40, kStatusPollers = 60, kJobsPollers = 60;
// Above coordd's need (about 360 MiB here, mostly gRPC's buffers for 200 clients): trips
// on a leak or an unbounded log buffer only. A sanitized coordd holds freed memory in
// quarantine, redzones and shadow (1.5 GiB measured under ASan): it gets 4x.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kMaxCoorddRssKiB = 4 << 20;
#else
constexpr int64_t kMaxCoorddRssKiB = 1 << 20;
#endif

int64_t PeakRssKiB(pid_t pid) {
  const std::string status = ReadAll("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::stoll(status.substr(at + 6));
}

// What one follower saw: per rank, the stdout lines "line I of rank R" in order.
struct Followed {
  std::map<int, int> next_line;  // rank -> the I expected next
  int out_of_order = 0;
  int lines = 0;
  std::string error;
};

Followed Follow(const std::string& coordinator, const std::string& job, int rank) {
  Followed f;
  auto stub = pb::Coordinator::NewStub(MakeChannel(coordinator));
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  pb::StreamLogsRequest req;
  req.set_job_id(job);
  req.set_rank(rank);
  req.set_follow(true);
  req.set_stream(coord::agent::LOG_STDOUT);
  auto reader = stub->StreamLogs(&ctx, req);
  pb::LogBatch batch;
  while (reader->Read(&batch)) {
    for (const pb::LogLine& l : batch.lines()) {
      int i = 0, r = 0;
      if (std::sscanf(l.text().c_str(), "line %d of rank %d", &i, &r) != 2) continue;
      ++f.lines;
      int& next = f.next_line[r];
      if (i != next || r != l.rank()) ++f.out_of_order;
      next = i + 1;
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) f.error = st.error_message();
  return f;
}

TEST(ApiLoadTest, TwoHundredClientsWhileSixtyFourRanksLogAtFullSpeedLoseNothing) {
  TempDir dir;
  LocalCluster cluster(dir);
  // Heartbeats every 200 ms, a node lost after 10 silent ones: the deadline under load
  // (x TimeScale() for sanitized builds, whose daemons run several times slower).
  const std::string missed = std::to_string(static_cast<int>(10 * TimeScale()));
  ASSERT_TRUE(
      cluster.StartCoordd({0, false, {"--heartbeat-ms", "200", "--missed-heartbeats", missed}}));
  ASSERT_TRUE(cluster.StartAgents(kNodes));
  const std::string cfg = dir.File("job.json");
  json spec = {{"name", "load"},
               {"launch",
                {{"nproc_per_node", kRanksPerNode},
                 {"command",
                  {BinPath("rank_probe"), "--print", std::to_string(kLinesPerRank),
                   "--progress-ms", "100", "--progress-count", "60", "--sleep-ms", "1"}},
                 {"kill_grace_s", 1}}}};
  ASSERT_TRUE(WriteTextFile(cfg, spec.dump()));
  RunResult started =
      cluster.Ctl({"start", "--hosts", cluster.hosts_file(), "--config", cfg, "--skip-checks"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  const std::string job = started.out.substr(0, started.out.find('\n'));

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<bool> done{false};
  std::atomic<int> status_calls{0}, status_errors{0};
  std::vector<Followed> followed(kWholeJobFollowers + kRankFollowers);
  std::vector<std::thread> clients;
  for (int i = 0; i < kWholeJobFollowers + kRankFollowers; ++i) {
    const int rank = i < kWholeJobFollowers ? -1 : i % kRanks;
    clients.emplace_back([&, i, rank] { followed[i] = Follow(cluster.coordinator(), job, rank); });
  }
  for (int i = 0; i < kStatusPollers + kJobsPollers; ++i) {
    clients.emplace_back([&, i] {
      auto stub = pb::Coordinator::NewStub(MakeChannel(cluster.coordinator()));
      while (!done) {
        auto ctx = ContextWithDeadline(30000);
        ctx->set_wait_for_ready(true);
        grpc::Status st;
        if (i < kStatusPollers) {
          pb::GetJobRequest req;
          req.set_job_id(job);
          pb::JobStatus reply;
          st = stub->GetJob(ctx.get(), req, &reply);
        } else {
          pb::ListJobsReply reply;
          st = stub->ListJobs(ctx.get(), pb::ListJobsRequest(), &reply);
        }
        ++status_calls;
        if (!st.ok()) ++status_errors;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  std::string state;
  WaitUntil(
      [&] {
        state = cluster.Status(job).value("state", "");
        return state == "SUCCEEDED" || state == "FAILED" || state == "KILLED";
      },
      240000, 250);
  done = true;
  for (std::thread& t : clients) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const json s = cluster.Status(job);
  EXPECT_EQ(state, "SUCCEEDED") << s.dump(1) << cluster.Logs();
  EXPECT_FALSE(s.contains("failures") && !s["failures"].empty())
      << "a heartbeat missed its deadline, or a rank failed: " << s.dump(1);
  int64_t lines = 0;
  for (int i = 0; i < kWholeJobFollowers + kRankFollowers; ++i) {
    const Followed& f = followed[i];
    const bool whole = i < kWholeJobFollowers;
    EXPECT_EQ(f.error, "") << "follower " << i;
    EXPECT_EQ(f.out_of_order, 0) << "follower " << i;
    EXPECT_EQ(f.lines, (whole ? kRanks : 1) * kLinesPerRank) << "follower " << i;
    EXPECT_EQ(f.next_line.size(), static_cast<size_t>(whole ? kRanks : 1)) << "follower " << i;
    for (const auto& [rank, next] : f.next_line) {
      EXPECT_EQ(next, kLinesPerRank) << "follower " << i << ", rank " << rank;
    }
    lines += f.lines;
  }
  EXPECT_EQ(status_errors.load(), 0);
  const int64_t rss = PeakRssKiB(cluster.coordd().pid());
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, kMaxCoorddRssKiB) << "coordd's peak RSS";
  std::cout << "api load: " << clients.size() << " clients for " << seconds << " s: "
            << lines << " log lines followed, " << status_calls << " status/jobs calls; "
            << "coordd peak RSS " << rss / 1024 << " MiB" << std::endl;
  cluster.StopAll();
  ExpectJobProcessesGone(job, 10000);
}

}  // namespace
}  // namespace coord::testing
