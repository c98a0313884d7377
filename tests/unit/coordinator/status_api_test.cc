// The status page's JSON API over real HTTP (an HttpServer on 127.0.0.1:0 with
// AddStatusApiRoutes) on a JobManager whose agents are in memory (fake_agent): the
// jobs list and one job, the progress and resource series a heartbeat feeds, a rank's
// log and the search across ranks; and the bad requests: unknown job or rank (404),
// malformed or out-of-range parameters and a bad regex (400), path tricks (never
// anything but the job's own logs). Plus DownsampledSeries's bound.
#include "coordinator/status_api.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http_server.h"
#include "coordinator/job_history.h"
#include "job_manager_fixture.h"
#include "tests/support/http_client.h"

namespace coord::coordinator {
namespace {

using coord::testing::HttpGet;
using coord::testing::HttpResult;
using nlohmann::json;

TEST(DownsampledSeriesTest, KeepsTheWholeLifeInAFixedNumberOfPoints) {
  DownsampledSeries s(8, 1);
  for (int i = 0; i < 1000; ++i) {
    const double v = i;
    s.Add(i * 1000, &v);
  }
  const auto points = s.Points();
  EXPECT_LE(points.size(), 8u + 1);  // the merged points and the pending partial one
  EXPECT_GE(points.size(), 4u);
  EXPECT_EQ(s.samples(), 1000);
  // The first point still averages the first samples; the last is the newest time.
  EXPECT_LT(points.front().v[0], 200);
  EXPECT_EQ(points.back().t_ms, 999000);
  // Means, never made-up values: every point lies within the samples' range.
  for (const auto& p : points) EXPECT_TRUE(p.v[0] >= 0 && p.v[0] <= 999) << p.v[0];
}

TEST(DownsampledSeriesTest, NanIsNoValueNotZero) {
  DownsampledSeries s(4, 2);
  const double a[2] = {1.0, std::nan("")};
  const double b[2] = {3.0, 5.0};
  for (int i = 0; i < 4; ++i) s.Add(i, i % 2 ? b : a);  // compacted once: pairs merged
  const auto points = s.Points();
  ASSERT_EQ(points.size(), 2u);
  EXPECT_DOUBLE_EQ(points[0].v[0], 2.0);
  EXPECT_DOUBLE_EQ(points[0].v[1], 5.0);  // the mean of what was there
  EXPECT_EQ(s.stride(), 2);
}

TEST(UsageColumnsTest, RatesFromTwoSamplesLevelsFromOne) {
  agent::NodeUsage a, b;
  a.set_cpu_busy_s(10);
  a.set_cpu_total_s(100);
  a.set_net_rx_bytes(1000);
  a.set_net_tx_bytes(0);
  b = a;
  b.set_cpu_busy_s(15);
  b.set_cpu_total_s(120);  // 5 of 20 CPU-seconds busy
  b.set_net_rx_bytes(3000);
  b.set_mem_total_bytes(1000);
  b.set_mem_available_bytes(250);
  auto c = UsageColumns(b, &a, 2000);
  EXPECT_DOUBLE_EQ(c[0], 25.0);
  EXPECT_DOUBLE_EQ(c[1], 750.0);
  EXPECT_DOUBLE_EQ(c[3], 1000.0);  // 2000 bytes over 2 s
  EXPECT_TRUE(std::isnan(c[5]));   // no GPUs: no value, not 0 %
  auto first = UsageColumns(b, nullptr, 0);
  EXPECT_TRUE(std::isnan(first[0]));
  // Counters that went back (the agent restarted): no rate rather than a huge one.
  b.set_net_rx_bytes(10);
  EXPECT_TRUE(std::isnan(UsageColumns(b, &a, 2000)[3]));
}

class StatusApiTest : public JobManagerTest {
 protected:
  void SetUp() override {
    JobManagerTest::SetUp();
    heartbeat_ms_ = 60000;
    Start();
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    auto server = HttpServer::Create(o);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    AddStatusApiRoutes(server_.get(), jm_.get());
    ASSERT_TRUE(server_->Start().ok());
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_->Stop();
    JobManagerTest::TearDown();
  }
  json Get(const std::string& path, int want = 200) {
    HttpResult r = HttpGet(addr_, path);
    EXPECT_EQ(r.status, want) << path << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json") << path;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << ": " << r.body;
    if (want != 200) {
      EXPECT_TRUE(j.contains("error")) << r.body;
    }
    return j;
  }
  // 2 nodes x 2 ranks, running; rank 0 reports iterations 1..n, node 0 its usage.
  std::string StartRunning() {
    std::string id = MustStart(Request(2, 2)).job_id();
    EXPECT_TRUE(WaitUntil([&] { return StateNow(id) == RUNNING; }, 5000));
    return id;
  }
  void Heartbeat(const std::string& id, int node, int64_t iteration, double cpu_busy,
                 bool usage = true, const std::string& text = "") {
    agent::AgentEvent e;
    e.set_time_ms(WallMs());
    agent::Heartbeat* hb = e.mutable_heartbeat();
    hb->set_running_ranks(2);
    agent::RankProgress* p = hb->add_progress();
    p->set_job_id(id);
    p->set_rank(node * 2);
    p->set_records(iteration * 100);
    p->set_time_ms(WallMs());
    p->set_iteration(iteration);
    p->set_loss(10.0 / static_cast<double>(iteration));
    p->set_checkpoint(iteration >= 5 ? 5 : -1);
    p->set_tokens_per_s(1000);
    p->set_text(text.empty() ? R"({"iteration":)" + std::to_string(iteration) + R"(,"lr":0.001})"
                             : text);
    if (!usage) {
      Node(node)->PushEvent(e);
      return;
    }
    agent::NodeUsage* u = hb->mutable_usage();
    u->set_cpu_busy_s(cpu_busy);
    u->set_cpu_total_s(iteration * 10.0);
    u->set_mem_total_bytes(8ull << 30);
    u->set_mem_available_bytes(6ull << 30);
    Node(node)->PushEvent(e);
  }

  std::unique_ptr<HttpServer> server_;
  std::string addr_;
};

TEST_F(StatusApiTest, JobsListAndOneJob) {
  const std::string id = StartRunning();
  json list = Get("/api/jobs");
  ASSERT_EQ(list["jobs"].size(), 1u);
  EXPECT_EQ(list["jobs"][0]["id"], id);
  EXPECT_EQ(list["jobs"][0]["state"], "RUNNING");
  EXPECT_EQ(list["jobs"][0]["nodes"], 2);
  EXPECT_EQ(list["jobs"][0]["ranks"], 4);
  EXPECT_EQ(list["jobs"][0]["generation"], 0);
  EXPECT_TRUE(list["jobs"][0]["age_s"].is_number());

  json job = Get("/api/jobs/" + id);
  EXPECT_EQ(job["job"]["id"], id);
  ASSERT_EQ(job["nodes"].size(), 2u);
  for (int n = 0; n < 2; ++n) {
    ASSERT_EQ(job["nodes"][n]["ranks"].size(), 2u) << job.dump();
    EXPECT_EQ(job["nodes"][n]["ranks"][0]["rank"], n * 2);
    EXPECT_EQ(job["nodes"][n]["ranks"][0]["state"], "running");
    EXPECT_EQ(job["nodes"][n]["ranks"][0]["straggler"], false);
  }
  // submitted -> LAUNCHING -> RUNNING, as they happened.
  std::vector<std::string> to;
  for (const json& s : job["states"]) to.push_back(s["to"]);
  EXPECT_EQ(to, (std::vector<std::string>{"PENDING", "LAUNCHING", "RUNNING"}));
  EXPECT_TRUE(job["failures"].empty());
}

// The jobs list and the resources view copy no rank tables under coordd's lock (a poll
// of them costs O(jobs) and O(nodes), not O(ranks)), yet say what the full copy says.
TEST_F(StatusApiTest, TheJobsListAndResourcesCopyNoRankTables) {
  const std::string id = StartRunning();
  Heartbeat(id, 0, 3, 1.0);
  ASSERT_TRUE(WaitUntil([&] { return Get("/api/jobs/" + id)["job"]["iteration"] == 3; }, 5000));
  std::vector<JobSnapshot> full = jm_->Snapshot();
  std::vector<JobSnapshot> summaries = jm_->SnapshotSummaries();
  ASSERT_EQ(summaries.size(), 1u);
  ASSERT_EQ(full[0].status.ranks_size(), 4);
  ASSERT_FALSE(full[0].progress.empty());
  EXPECT_EQ(summaries[0].status.ranks_size(), 0);
  EXPECT_EQ(summaries[0].status.nodes_size(), 0);
  EXPECT_EQ(summaries[0].status.rank_timings_size(), 0);
  EXPECT_TRUE(summaries[0].progress.empty());
  EXPECT_EQ(JobsListJson(summaries, 1000), JobsListJson(full, 1000));

  auto nodes = jm_->SnapshotJobNodes(id);
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_EQ(nodes->status.ranks_size(), 0);
  EXPECT_EQ(nodes->status.nodes_size(), 2);
  EXPECT_TRUE(nodes->progress.empty());
  EXPECT_EQ(nodes->status.counts().ranks_running(), 4);
  EXPECT_EQ(jm_->SnapshotJobNodes("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(StatusApiTest, OneJobIsPagedWithTheWholeJobCounted) {
  const std::string id = StartRunning();  // 2 nodes x 2 ranks
  json job = Get("/api/jobs/" + id);      // the default page holds all four
  EXPECT_EQ(job["page"], json({{"offset", 0}, {"limit", 256}, {"ranks", 4}, {"total", 4}}));
  EXPECT_EQ(job["trouble"], json({{"total", 0}, {"ranks", json::array()}}));
  job = Get("/api/jobs/" + id + "?limit=2&offset=2");
  EXPECT_EQ(job["page"], json({{"offset", 2}, {"limit", 2}, {"ranks", 2}, {"total", 4}}));
  ASSERT_EQ(job["nodes"].size(), 1u) << job.dump();
  EXPECT_EQ(job["nodes"][0]["node_rank"], 1);
  ASSERT_EQ(job["nodes"][0]["ranks"].size(), 2u);
  EXPECT_EQ(job["nodes"][0]["ranks"][0]["rank"], 2);
  EXPECT_EQ(job["counts"]["ranks_running"], 4);
  EXPECT_EQ(job["counts"]["nodes"], 2);
  EXPECT_EQ(job["counts"]["node_states"], json({{"launched", 2}}));
  EXPECT_EQ(job["job"]["nodes"], 2);  // the whole job's, not the page's
  EXPECT_EQ(job["job"]["ranks"], 4);
  job = Get("/api/jobs/" + id + "?offset=3&limit=1024");
  EXPECT_EQ(job["page"]["ranks"], 1);
}

TEST_F(StatusApiTest, ProgressResourcesAndCheckpointsFromHeartbeats) {
  const std::string id = StartRunning();
  // Until coordd's watch stream is open, the fake agent drops events: a first record
  // (without usage) is sent until it is seen; from then on delivery is synchronous.
  ASSERT_TRUE(WaitUntil(
      [&] {
        Heartbeat(id, 0, 1, 0, /*usage=*/false);
        return Get("/api/jobs/" + id)["job"]["iteration"] == 1;
      },
      5000));
  for (int i = 1; i <= 6; ++i) {
    Heartbeat(id, 0, i, i * 2.0);
    ASSERT_EQ(Get("/api/jobs/" + id)["job"]["iteration"], i);
  }
  json p = Get("/api/jobs/" + id + "/progress");
  EXPECT_EQ(p["columns"], json({"t_ms", "iteration", "loss", "lr", "tokens_per_s"}));
  ASSERT_EQ(p["points"].size(), 6u) << p.dump();
  EXPECT_EQ(p["points"][0][1], 1);
  EXPECT_DOUBLE_EQ(p["points"][0][2].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(p["points"][5][3].get<double>(), 0.001);
  json r = Get("/api/jobs/" + id + "/resources");
  ASSERT_EQ(r["nodes"].size(), 1u) << r.dump();
  EXPECT_EQ(r["nodes"][0]["node_rank"], 0);
  ASSERT_EQ(r["nodes"][0]["points"].size(), 6u);
  EXPECT_TRUE(r["nodes"][0]["points"][0][1].is_null());                 // no rate from one sample
  EXPECT_DOUBLE_EQ(r["nodes"][0]["points"][5][1].get<double>(), 20.0);  // 2 of 10 s busy
  EXPECT_DOUBLE_EQ(r["nodes"][0]["points"][5][2].get<double>(), 2.0 * (1ull << 30));
  EXPECT_EQ(r["page"], json({{"offset", 0}, {"limit", 32}, {"nodes", 1}, {"total", 1}}));
  // Paged by node rank: node 0's curves are on the page from 0, not on the one from 1.
  EXPECT_EQ(Get("/api/jobs/" + id + "/resources?limit=1&offset=1")["nodes"].size(), 0u);
  EXPECT_EQ(Get("/api/jobs/" + id + "/resources?limit=1")["nodes"].size(), 1u);
  for (const char* bad : {"?limit=0", "?limit=129", "?offset=2", "?offset=x", "?node=1"}) {
    const std::string name = std::string(bad).substr(1, std::string(bad).find('=') - 1);
    EXPECT_NE(Get("/api/jobs/" + id + "/resources" + bad, 400).value("error", "").find(name),
              std::string::npos)
        << bad;
  }
  json job = Get("/api/jobs/" + id);
  EXPECT_EQ(job["checkpoints"]["last_iteration"], 5);
  ASSERT_EQ(job["checkpoints"]["seen"].size(), 1u);
  EXPECT_EQ(job["checkpoints"]["seen"][0]["iteration"], 5);
}

// The lr of the progress curve comes from rank 0's own text: an lr out of double range,
// nesting without end, bytes that are not UTF-8 or an lr that is not a number leave the
// point's lr empty (null), and coordd goes on serving the rest.
TEST_F(StatusApiTest, HostileProgressTextLeavesTheLrEmpty) {
  const std::string id = StartRunning();
  ASSERT_TRUE(WaitUntil(
      [&] {
        Heartbeat(id, 0, 1, 0, /*usage=*/false);
        return Get("/api/jobs/" + id)["job"]["iteration"] == 1;
      },
      5000));
  const std::vector<std::string> texts = {
      R"({"lr":1e400})",
      R"({"lr":)" + std::string(100000, '['),
      "{\"lr\":0.5,\"x\":\"\xff\"}",
      R"({"lr":"0.5"})",
  };
  for (size_t i = 0; i < texts.size(); ++i) {
    const int64_t iteration = static_cast<int64_t>(i) + 2;
    Heartbeat(id, 0, iteration, 0, /*usage=*/false, texts[i]);
    ASSERT_EQ(Get("/api/jobs/" + id)["job"]["iteration"], iteration);
  }
  json p = Get("/api/jobs/" + id + "/progress");
  ASSERT_EQ(p["points"].size(), texts.size() + 1) << p.dump();
  EXPECT_DOUBLE_EQ(p["points"][0][3].get<double>(), 0.001);
  for (size_t i = 1; i <= texts.size(); ++i) {
    EXPECT_EQ(p["points"][i][1], static_cast<int64_t>(i) + 1);
    EXPECT_TRUE(p["points"][i][3].is_null()) << i << ": " << p["points"][i].dump();
  }
}

TEST_F(StatusApiTest, RankLogAndSearch) {
  const std::string id = StartRunning();
  std::vector<std::string> lines;
  for (int i = 1; i <= 50; ++i) lines.push_back("step " + std::to_string(i) + " ok");
  lines[41] = "step 42 NCCL WARN timeout";
  Node(1)->SetStderr(3, lines);
  Node(0)->SetStderr(0, {"hello", "nccl warn elsewhere"});

  json tail = Get("/api/jobs/" + id + "/ranks/3/log?tail=5");
  ASSERT_EQ(tail["lines"].size(), 5u);
  EXPECT_EQ(tail["lines"][4]["text"], "step 50 ok");
  EXPECT_EQ(tail["numbered"], false);
  json range = Get("/api/jobs/" + id + "/ranks/3/log?from=40&lines=3");
  ASSERT_EQ(range["lines"].size(), 3u) << range.dump();
  EXPECT_EQ(range["lines"][2]["n"], 42);
  EXPECT_EQ(range["lines"][2]["text"], "step 42 NCCL WARN timeout");
  json small = Get("/api/jobs/" + id + "/ranks/3/log?tail=50&max_bytes=20");
  EXPECT_EQ(small["truncated"], true);
  EXPECT_LE(small["bytes"].get<int>(), 20);

  json hits = Get("/api/jobs/" + id + "/logs/search?q=NCCL%20WARN");
  ASSERT_EQ(hits["matches"].size(), 1u) << hits.dump();
  EXPECT_EQ(hits["matches"][0]["rank"], 3);
  EXPECT_EQ(hits["matches"][0]["line"], 42);
  EXPECT_EQ(hits["complete"], true);
  json icase = Get("/api/jobs/" + id + "/logs/search?q=nccl%20warn&icase=1");
  EXPECT_EQ(icase["matches"].size(), 2u) << icase.dump();
  json re = Get("/api/jobs/" + id + "/logs/search?q=step%20(4%5B0-9%5D)%20ok&regex=1");
  EXPECT_EQ(re["matches"].size(), 9u) << re.dump();  // 40..49 but 42
  json capped = Get("/api/jobs/" + id + "/logs/search?q=ok&max_matches=3");
  EXPECT_EQ(capped["matches"].size(), 3u);
  EXPECT_EQ(capped["truncated"], true);
  json scan = Get("/api/jobs/" + id + "/logs/search?q=nothing&max_scan_bytes=30");
  EXPECT_EQ(scan["complete"], false);
  EXPECT_LE(scan["scanned_bytes"].get<int>(), 30 + 40);  // stops at the line that passes it
  // Only the job's own nodes were asked, and only for this job's logs.
  for (const auto& t : Node(1)->tails()) EXPECT_EQ(t.job_id(), id);
}

TEST_F(StatusApiTest, UnknownJobsAndRanksAre404) {
  const std::string id = StartRunning();
  Get("/api/jobs/nope-123456", 404);
  Get("/api/jobs/nope-123456/progress", 404);
  Get("/api/jobs/nope-123456/ranks/0/log", 404);
  Get("/api/jobs/" + id + "/ranks/4/log", 404);  // world size 4
  Get("/api/jobs/" + id + "/logs/search?q=x&rank=9", 404);
  Get("/api/jobs/" + id + "/nothing", 404);
  Get("/api/nothing", 404);
}

TEST_F(StatusApiTest, BadParametersAre400) {
  const std::string id = StartRunning();
  const std::string log = "/api/jobs/" + id + "/ranks/0/log";
  Get("/api/jobs/" + id + "/ranks/-1/log", 400);
  Get("/api/jobs/" + id + "/ranks/x/log", 400);
  Get(log + "?tail=0", 400);
  Get(log + "?tail=99999999", 400);  // a huge range
  Get(log + "?from=1&lines=100000", 400);
  Get(log + "?lines=5", 400);  // lines without from
  Get(log + "?tail=5&from=3", 400);
  Get(log + "?max_bytes=999999999999", 400);
  Get(log + "?stream=both&stream=stdout", 400);
  Get(log + "?stream=journal", 400);
  Get(log + "?path=/etc/passwd", 400);  // no parameter names a file
  const std::string search = "/api/jobs/" + id + "/logs/search";
  Get(search, 400);  // no q
  Get(search + "?q=" + std::string(300, 'a'), 400);
  Get(search + "?q=(unclosed&regex=1", 400);
  Get(search + "?q=x&max_matches=5000", 400);
  Get(search + "?q=x&max_scan_bytes=99999999999", 400);
  Get(search + "?q=x&regex=maybe", 400);
  // The job's page: each error names its parameter.
  const std::string one = "/api/jobs/" + id;
  for (const char* query : {"?limit=0", "?limit=1025", "?limit=ten", "?offset=-1", "?offset=4",
                            "?offset=1&offset=2", "?ranks=all"}) {
    const std::string name = std::string(query).substr(1, std::string(query).find('=') - 1);
    EXPECT_NE(Get(one + query, 400).value("error", "").find(name), std::string::npos) << query;
  }
}

TEST_F(StatusApiTest, PathTricksReachNothingButJobs) {
  StartRunning();
  Node(0)->SetStderr(0, {"line"});
  // Encoded slashes and dots become a job id that is no job; a rank that is a path is
  // not a rank. The API never opens a file named by the request.
  for (const char* p : {"/api/jobs/..%2F..%2Fetc%2Fpasswd", "/api/jobs/%2e%2e/ranks/0/log",
                        "/api/jobs/..%2f/logs/search?q=root"}) {
    HttpResult r = HttpGet(addr_, p);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << p << ": " << r.status << " " << r.body;
    EXPECT_EQ(r.body.find("root:"), std::string::npos);
  }
  HttpResult r = HttpGet(addr_, "/api/jobs/x/ranks/..%2F..%2Fetc%2Fpasswd/log");
  EXPECT_TRUE(r.status == 404 || r.status == 400) << r.status << " " << r.body;
  EXPECT_EQ(r.body.find("root:"), std::string::npos);
  for (const auto& t : Node(0)->tails()) EXPECT_FALSE(t.job_id().empty());
}

}  // namespace
}  // namespace coord::coordinator
