// coordd's status page end to end: coordd and two agents on loopback (LocalCluster) run
// a real two-node gpt-rank job (tiny config: real loss); the JSON API answers for it
// (jobs list, the job's grid, progress and resources, a rank's log, a search across
// ranks; 404/400 and path tricks); and headless Chromium (Debian's chromium) loads the
// job page: its DOM shows the job's state, every rank in the grid, a loss chart that drew
// points (the canvas's data-points) and a log search hit. The screenshot is kept in the
// build tree (web_page_test_artifacts/job.png; the path is printed). Skipped only when
// chromium or the demo data is missing. A second test pages a job of 40 simulated nodes
// x 8 ranks (tests/programs/sim_agents): the API's limit/offset and their 400s, and the
// page's grid, pager and "ranks needing attention" in Chromium.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "common/fs.h"
#include "tests/programs/sim_agents.h"
#include "tests/support/files.h"
#include "tests/support/http_client.h"
#include "tests/support/local_cluster.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace coord::testing {
namespace {

using nlohmann::json;

constexpr const char* kChromium = "/usr/bin/chromium";

json GetJson(const std::string& addr, const std::string& path, int want = 200) {
  HttpResult r = HttpGet(addr, path, nullptr, 15000);
  EXPECT_EQ(r.status, want) << path << ": " << r.body << r.error;
  return json::parse(r.body, nullptr, false);
}

// Chromium headless on `url`: the DOM after scripts ran (or a screenshot to `png`). Its
// profile lives in `dir`; virtual time lets the page's polls and draws settle.
RunResult Chromium(const TempDir& dir, const std::string& url, const std::string& png = "") {
  std::vector<std::string> argv = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--user-data-dir=" + dir.File("chromium-profile"),
                                   "--window-size=1400,2600",
                                   "--virtual-time-budget=8000"};
  if (png.empty()) {
    argv.push_back("--dump-dom");
  } else {
    argv.push_back("--screenshot=" + png);
  }
  argv.push_back(url);
  return RunCommand(argv, {}, 90000);
}

class WebPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PathExists(kChromium)) {
      GTEST_SKIP() << kChromium << " not installed (Debian: chromium; scripts/install-deps.sh)";
    }
    if (std::string why = gpt_rank::e2e::MissingData(); !why.empty()) GTEST_SKIP() << why;
  }
  void TearDown() override {
    if (!job_.empty()) {
      cluster_.Ctl({"kill", job_});
      ExpectJobProcessesGone(job_, 30000);
    }
    cluster_.StopAll();
    if (HasFailure()) std::cerr << cluster_.Logs();
  }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::string job_;
};

TEST_F(WebPageTest, ChromiumShowsTheRunningJob) {
  ASSERT_TRUE(cluster_.StartCoordd({0, true, {}}));
  // Usage every 500 ms, so the resource charts have points within seconds.
  ASSERT_TRUE(cluster_.StartAgents(2, {0, false, {"--usage-ms", "500"}}));
  const std::string http = cluster_.coordd_http();

  json job = gpt_rank::e2e::ParallelJob(dir_.path());
  job["name"] = "webpage";
  job["training"]["train_iters"] = 5000;  // runs until the test kills it
  job["training"]["eval_interval"] = 100000;
  job["training"]["save_interval"] = 20;
  job["training"]["log_interval"] = 5;
  job["launch"] = {
      {"nproc_per_node", 1},
      {"command", {gpt_rank::e2e::GptRank(), "train", "--config", dir_.File("job.json")}},
      {"env", {{"OMP_NUM_THREADS", "1"}}},
      {"kill_grace_s", 2}};
  gpt_rank::e2e::WriteJob(dir_.File("job.json"), job);
  RunResult start =
      cluster_.Ctl({"start", "--hosts", cluster_.hosts_file(), "--config", dir_.File("job.json")});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  job_ = start.out.substr(0, start.out.find('\n'));
  const std::string api = "/api/jobs/" + job_;

  // Loss points and both nodes' usage, as the page will poll them.
  json progress, resources;
  ASSERT_TRUE(WaitUntil(
      [&] {
        progress = GetJson(http, api + "/progress");
        resources = GetJson(http, api + "/resources");
        return progress["points"].size() >= 3 && resources["nodes"].size() == 2 &&
               resources["nodes"][0]["points"].size() >= 2 &&
               resources["nodes"][1]["points"].size() >= 2;
      },
      120000, 500))
      << progress.dump() << resources.dump();
  for (const json& p : progress["points"]) {
    EXPECT_GT(p[2].get<double>(), 0) << "real loss";
    EXPECT_LT(p[2].get<double>(), 20);
  }
  for (const json& n : resources["nodes"]) {
    const json& last = n["points"].back();
    EXPECT_TRUE(last[1].is_number()) << "CPU % from two samples: " << n.dump();
    EXPECT_GT(last[2].get<double>(), 1e6) << "memory used";
  }

  json list = GetJson(http, "/api/jobs");
  ASSERT_EQ(list["jobs"].size(), 1u);
  EXPECT_EQ(list["jobs"][0]["id"], job_);
  EXPECT_EQ(list["jobs"][0]["state"], "RUNNING");
  EXPECT_EQ(list["jobs"][0]["ranks"], 2);
  json one = GetJson(http, api);
  ASSERT_EQ(one["nodes"].size(), 2u);
  EXPECT_EQ(one["nodes"][1]["ranks"][0]["rank"], 1);
  EXPECT_TRUE(one["nodes"][1]["ranks"][0]["iteration"].is_number()) << one.dump();

  // Logs: gpt-rank prints Megatron's "lm loss:" lines; the search finds them with their
  // rank and line, and the rank's log has that text at that line.
  json hits;
  ASSERT_TRUE(WaitUntil(
      [&] {
        hits = GetJson(http, api + "/logs/search?q=lm%20loss%3A&max_matches=5");
        return hits["matches"].size() >= 1;
      },
      60000, 1000))
      << hits.dump();
  const json& hit = hits["matches"][0];
  json at = GetJson(http, api + "/ranks/" + std::to_string(hit["rank"].get<int>()) +
                              "/log?stream=" + hit["stream"].get<std::string>() +
                              "&from=" + std::to_string(hit["line"].get<int64_t>()) + "&lines=1");
  ASSERT_EQ(at["lines"].size(), 1u) << at.dump();
  EXPECT_EQ(at["lines"][0]["text"], hit["text"]);
  json tail = GetJson(http, api + "/ranks/1/log?tail=10");
  EXPECT_FALSE(tail["lines"].empty());

  // Bad requests on the real daemon.
  GetJson(http, "/api/jobs/no-such-job", 404);
  GetJson(http, api + "/ranks/2/log", 404);
  GetJson(http, api + "/ranks/0/log?tail=1000000", 400);
  GetJson(http, api + "/logs/search?q=(&regex=1", 400);
  for (const char* p :
       {"/static/../coordd/journal", "/static/%2e%2e/coordd/journal", "/static/..%2f..%2fhosts.txt",
        "/static/vendor/chart.js/../../../etc/passwd"}) {
    HttpResult r = HttpGet(http, p);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << p << " -> " << r.status;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << p;
  }
  EXPECT_EQ(HttpGet(http, "/static/vendor/chart.js/chart.min.js").status, 200);
  EXPECT_EQ(HttpGet(http, "/static/job.html").status, 200);

  // The page in a real browser.
  const std::string url = "http://" + http + "/static/job.html?id=" + job_ + "&q=lm%20loss%3A";
  RunResult dom = Chromium(dir_, url);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  const std::string& html = dom.out;
  EXPECT_NE(html.find("id=\"job-state\" class=\"state state-RUNNING\" data-state=\"RUNNING\""),
            std::string::npos)
      << html;
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_NE(html.find("data-rank=\"" + std::to_string(rank) + "\" data-state=\"running\""),
              std::string::npos)
        << "rank " << rank << " in the grid";
  }
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex(R"re(id="chart-loss" data-points="(\d+)")re")))
      << html;
  EXPECT_GE(std::stoi(m[1]), 3) << "the loss chart drew the points";
  EXPECT_NE(html.find("class=\"hit\" data-rank="), std::string::npos) << "a log search hit";
  EXPECT_NE(html.find("lm loss:"), std::string::npos);
  EXPECT_EQ(html.find("id=\"charts-missing\" class=\"error\">"), std::string::npos)
      << "Chart.js was served";

  const std::string artifacts = COORD_WEB_PAGE_ARTIFACTS;
  ASSERT_TRUE(MakeDirs(artifacts).ok());
  const std::string png = artifacts + "/job.png";
  RunResult shot = Chromium(dir_, url, png);
  EXPECT_EQ(shot.exit_code, 0) << shot.err;
  EXPECT_GT(ReadAll(png).size(), 10000u) << "a screenshot of the page";
  std::cout << "screenshot: " << png << "\n";

  // The jobs list too.
  RunResult index = Chromium(dir_, "http://" + http + "/");
  EXPECT_NE(index.out.find("data-job=\"" + job_ + "\""), std::string::npos) << index.out;
}

// --- paging: 320 ranks ------------------------------------------------------------------

class WebPagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PathExists(kChromium)) {
      GTEST_SKIP() << kChromium << " not installed (Debian: chromium; scripts/install-deps.sh)";
    }
    ASSERT_TRUE(cluster_.StartCoordd({0, true, {}}));
    sim::SimOptions options;
    options.agents = kNodes;
    options.progress_ms = 200;
    auto sim = sim::SimCluster::Create(options);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    ASSERT_TRUE(WriteTextFile(cluster_.hosts_file(), sim_->HostsText()));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << cluster_.Logs();
    cluster_.StopAll();
    sim_.reset();
  }
  static bool Has(const std::string& html, int rank, const char* attr) {
    return html.find("data-rank=\"" + std::to_string(rank) + "\" " + attr) != std::string::npos;
  }

  static constexpr int kNodes = 40, kNproc = 8, kRanks = kNodes * kNproc;
  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::unique_ptr<sim::SimCluster> sim_;
};

TEST_F(WebPagingTest, TheApiAndThePageShowAPageOfRanksAndTheRanksInTrouble) {
  const json spec = {{"name", "paging"},
                     {"launch",
                      {{"nproc_per_node", kNproc},
                       {"command", {"sim-rank"}},
                       {"kill_grace_s", 1},
                       {"max_restarts", 0}}}};
  ASSERT_TRUE(WriteTextFile(dir_.File("job.json"), spec.dump(2)));
  RunResult start = cluster_.Ctl({"start", "--hosts", cluster_.hosts_file(), "--config",
                                  dir_.File("job.json"), "--skip-checks"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  const std::string job = start.out.substr(0, start.out.find('\n'));
  const std::string http = cluster_.coordd_http(), api = "/api/jobs/" + job;
  json one;
  ASSERT_TRUE(WaitUntil(
      [&] {
        one = GetJson(http, api);
        return one["job"]["iteration"].is_number() && one["job"]["iteration"] >= 2;
      },
      30000, 100))
      << one.dump().substr(0, 2000);

  // The default page: the first 256 ranks; the counts and the total are the whole job's.
  EXPECT_EQ(one["page"], json({{"offset", 0}, {"limit", 256}, {"ranks", 256}, {"total", kRanks}}));
  EXPECT_EQ(one["counts"]["ranks_running"], kRanks);
  EXPECT_EQ(one["counts"]["node_states"]["launched"], kNodes);
  EXPECT_EQ(one["job"]["nodes"], kNodes);
  EXPECT_EQ(one["nodes"].size(), 32u);
  EXPECT_EQ(one["trouble"]["total"], 0);
  // The last page, part full.
  json last = GetJson(http, api + "?limit=10&offset=315");
  EXPECT_EQ(last["page"]["ranks"], 5);
  ASSERT_EQ(last["nodes"].size(), 1u);
  EXPECT_EQ(last["nodes"][0]["node_rank"], 39);
  EXPECT_EQ(last["nodes"][0]["ranks"][0]["rank"], 315);
  EXPECT_EQ(last["nodes"][0]["ranks"][4]["rank"], 319);
  // Bad parameters: a 400 whose error names the parameter.
  for (const auto& [query, name] :
       std::vector<std::pair<std::string, std::string>>{{"?limit=0", "limit"},
                                                        {"?limit=1025", "limit"},
                                                        {"?limit=x", "limit"},
                                                        {"?offset=-1", "offset"},
                                                        {"?offset=320", "offset"},
                                                        {"?limit=5&limit=6", "limit"},
                                                        {"?rank=3", "rank"}}) {
    json e = GetJson(http, api + query, 400);
    EXPECT_NE(e.value("error", "").find(name), std::string::npos) << query << ": " << e.dump();
  }

  // The page: the first 256 ranks in the grid, the pager, no trouble.
  const std::string url = "http://" + http + "/static/job.html?id=" + job;
  RunResult dom = Chromium(dir_, url);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_TRUE(Has(dom.out, 0, "data-state=\"running\"")) << dom.out.substr(0, 4000);
  EXPECT_TRUE(Has(dom.out, 255, "data-state=\"running\""));
  EXPECT_FALSE(Has(dom.out, 256, "data-state="));
  EXPECT_NE(dom.out.find(R"(id="page-range" data-first="0" data-last="255")"), std::string::npos);
  EXPECT_NE(dom.out.find(R"(<span id="page-total">320</span>)"), std::string::npos);
  EXPECT_NE(dom.out.find(R"(id="no-trouble" class="sub">)"), std::string::npos) << "not hidden";
  // The log panel's rank is a number field bounded by the job's last rank, not 320 <option>s.
  EXPECT_NE(dom.out.find(R"(id="log-rank" type="number" min="0" max="319")"), std::string::npos);
  EXPECT_EQ(dom.out.find("<option value=\"319\""), std::string::npos);
  // The second page, as the URL names it.
  dom = Chromium(dir_, url + "&offset=256");
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_TRUE(Has(dom.out, 300, "data-state=\"running\""));
  EXPECT_FALSE(Has(dom.out, 0, "data-state="));
  EXPECT_NE(dom.out.find(R"(id="page-range" data-first="256" data-last="319")"), std::string::npos);

  // Rank 300 (on the second page) fails: the first page lists it as needing attention.
  ASSERT_TRUE(sim_->ExitRank(job, 300, 3).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return GetJson(http, api)["job"]["state"] == "FAILED"; }, 30000, 100));
  one = GetJson(http, api);
  ASSERT_GE(one["trouble"]["ranks"].size(), 1u) << one["trouble"].dump();
  EXPECT_EQ(one["trouble"]["ranks"][0]["rank"], 300);
  EXPECT_EQ(one["trouble"]["ranks"][0]["why"], "failed");
  EXPECT_EQ(one["trouble"]["ranks"][0]["exit_code"], 3);
  dom = Chromium(dir_, url);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_TRUE(Has(dom.out, 300, "data-why=\"failed\"")) << dom.out.substr(0, 4000);
  EXPECT_FALSE(Has(dom.out, 300, "data-state="));  // not in the grid's first page

  const std::string artifacts = COORD_WEB_PAGE_ARTIFACTS;
  ASSERT_TRUE(MakeDirs(artifacts).ok());
  const std::string png = artifacts + "/paging.png";
  RunResult shot = Chromium(dir_, url, png);
  EXPECT_EQ(shot.exit_code, 0) << shot.err;
  std::cout << "screenshot: " << png << "\n";
}

}  // namespace
}  // namespace coord::testing
