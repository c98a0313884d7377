// coordd's and the agents' /metrics, end to end: a real coordd and two real agents on
// loopback addresses run a small gpt-rank job while a real Prometheus (Debian's
// /usr/bin/prometheus, on 127.0.0.1 with its own storage) scrapes all three every
// second; its query API must return the job's iteration, each rank's step time and
// memory, and both nodes' memory, and Debian's promtool must read both pages. With
// certificates, the same Prometheus scrapes over HTTPS with tls_config (ca_file,
// cert_file, key_file) while a client without a certificate gets nothing, and curl
// opens the page with the PKCS#12 bundle of `coordctl certs export`. Without
// certificates an endpoint off loopback is refused unless --insecure.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "common/certs.h"
#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/http_client.h"
#include "tests/support/local_cluster.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace coord::testing {
namespace {

using nlohmann::json;

constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr const char* kPromtool = "/usr/bin/promtool";

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A Prometheus server on 127.0.0.1 scraping `scrape_configs` (YAML, indented for the
// list) every second, with its storage in `dir`; stopped by PID.
class Prometheus {
 public:
  bool Start(const TempDir& dir, const std::string& scrape_configs) {
    port_ = UnusedTcpPort();
    const std::string config = dir.File("prometheus.yml");
    std::ofstream(config) << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                          << "scrape_configs:\n"
                          << scrape_configs;
    log_ = dir.File("prometheus.log");
    if (!process_.Start(
            {kPrometheus, "--config.file=" + config,
             "--storage.tsdb.path=" + dir.File("prometheus-data"),
             "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
            log_)) {
      return false;
    }
    return WaitUntil([&] { return HttpGet(Addr(), "/-/ready", nullptr, 1000).status == 200; },
                     30000, 100);
  }
  // The result vector of an instant query ([] when none, or on any error).
  json Query(const std::string& promql) const {
    HttpResult r = HttpGet(Addr(), "/api/v1/query?query=" + UrlEncode(promql), nullptr, 5000);
    json j = json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object() || j.value("status", "") != "success") {
      return json::array();
    }
    return j["data"]["result"];
  }
  std::string Addr() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Log() const { return ReadAll(log_); }
  void Stop() { process_.Stop(); }

 private:
  Process process_;
  int port_ = 0;
  std::string log_;
};

double Value(const json& sample) { return std::stod(sample["value"][1].get<std::string>()); }

// promtool's verdict on a page: the problems it reports, except the camelCase names
// we keep on purpose because the dashboards people already have expect them
// (node_exporter's node_memory_MemTotal_bytes, DCGM's modelName label).
std::string PromtoolProblems(const TempDir& dir, const std::string& page, const std::string& name) {
  const std::string file = dir.File(name + ".metrics");
  EXPECT_TRUE(WriteTextFile(file, page));
  RunResult r = RunCommand({"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + file});
  if (r.exit_code != 0 && r.exit_code != 3)
    return "promtool exit " + std::to_string(r.exit_code) + ": " + r.err + r.out;
  static const std::regex kBorrowed(
      R"((node_memory_[A-Za-z0-9_]+ metric names|DCGM_FI_DEV_[A-Z_]+ label names) should be written in 'snake_case' not 'camelCase')");
  std::string problems;
  std::istringstream lines(r.out + r.err);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && !std::regex_match(line, kBorrowed)) problems += line + "\n";
  }
  return problems;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PathExists(kPrometheus) || !PathExists(kPromtool)) {
      GTEST_SKIP() << kPrometheus << " not installed (Debian: prometheus; scripts/install-deps.sh)";
    }
  }
  void TearDown() override {
    ExpectJobProcessesGone(job_);
    prometheus_.Stop();
    cluster_.StopAll();
    if (HasFailure()) std::cerr << cluster_.Logs() << "--- prometheus.log\n" << prometheus_.Log();
  }
  // coordd on 127.0.0.1, HTTP on 127.0.0.1:0; `tls`: extra flags (certificates).
  void StartCoordd(const std::vector<std::string>& tls = {}) {
    ASSERT_TRUE(cluster_.StartCoordd({0, true, tls}));
    coordd_http_ = cluster_.coordd_http();
  }
  // Agent i on 127.0.0.(i+2), its gRPC and HTTP ports picked by the kernel.
  void StartAgent(int i, const std::vector<std::string>& tls = {}) {
    ASSERT_TRUE(cluster_.StartAgent(i, {0, true, tls}));
    agent_grpc_.push_back(cluster_.agent_grpc(i));
    agent_http_.push_back(cluster_.agent_http(i));
  }
  RunResult Ctl(std::vector<std::string> args, int timeout_ms = 60000) {
    return cluster_.Ctl(std::move(args), timeout_ms);
  }
  std::string Targets(const std::vector<std::string>& addrs) const {
    std::string out;
    for (const auto& a : addrs) out += (out.empty() ? "" : ", ") + ("\"" + a + "\"");
    return "[" + out + "]";
  }

  TempDir dir_;
  LocalCluster cluster_{dir_};
  std::string coordd_http_, job_;
  std::vector<std::string> agent_grpc_, agent_http_;
  Prometheus prometheus_;
};

TEST_F(MetricsHttpTest, PrometheusScrapesTheJobAndTheNodes) {
  if (std::string why = gpt_rank::e2e::MissingData(); !why.empty()) GTEST_SKIP() << why;
  StartCoordd();
  StartAgent(0);
  StartAgent(1);
  ASSERT_TRUE(prometheus_.Start(
      dir_,
      "  - job_name: coordd\n    static_configs:\n      - targets: " + Targets({coordd_http_}) +
          "\n  - job_name: coord-agent\n    static_configs:\n"
          "      - targets: " +
          Targets(agent_http_) + "\n"))
      << prometheus_.Log();

  // Two nodes x one rank, long enough to be watched; a checkpoint every 10 iterations.
  json job = gpt_rank::e2e::ParallelJob(dir_.path());
  job["name"] = "watched";
  job["training"]["train_iters"] = 2000;
  job["training"]["eval_interval"] = 100000;
  job["training"]["save_interval"] = 10;
  job["training"]["log_interval"] = 10;
  job["launch"] = {
      {"nproc_per_node", 1},
      {"command", {gpt_rank::e2e::GptRank(), "train", "--config", dir_.File("job.json")}},
      {"env", {{"OMP_NUM_THREADS", "1"}}},
      {"kill_grace_s", 2}};
  gpt_rank::e2e::WriteJob(dir_.File("job.json"), job);
  std::ofstream(dir_.File("hosts.txt")) << agent_grpc_[0] << "\n" << agent_grpc_[1] << "\n";
  RunResult start =
      Ctl({"start", "--hosts", dir_.File("hosts.txt"), "--config", dir_.File("job.json")});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  job_ = start.out.substr(0, start.out.find('\n'));
  const std::string sel = "{job_id=\"" + job_ + "\"}";

  // What Prometheus has stored, through its query API.
  json iteration, checkpoint;
  ASSERT_TRUE(WaitUntil(
      [&] {
        iteration = prometheus_.Query("coord_job_iteration" + sel);
        checkpoint = prometheus_.Query("coord_job_last_checkpoint_iteration" + sel);
        return iteration.size() == 1 && Value(iteration[0]) >= 1 && checkpoint.size() == 1;
      },
      90000, 500))
      << iteration.dump() << "\n"
      << ReadAll(dir_.File("coordd.log"));
  EXPECT_EQ(iteration[0]["metric"]["job"], "coordd");  // Prometheus's own target label
  EXPECT_GE(Value(checkpoint[0]), 10);
  EXPECT_EQ(prometheus_.Query("coord_jobs{state=\"RUNNING\"}").at(0)["value"][1], "1");
  json steps, tokens, loss, rss, cpu, mem;
  ASSERT_TRUE(WaitUntil(
      [&] {
        steps = prometheus_.Query("coord_job_rank_step_seconds" + sel);
        tokens = prometheus_.Query("coord_job_tokens_per_second" + sel);
        loss = prometheus_.Query("coord_job_loss" + sel);
        rss = prometheus_.Query("coord_rank_resident_memory_bytes" + sel);
        cpu = prometheus_.Query("rate(coord_rank_cpu_seconds_total" + sel + "[5s])");
        mem = prometheus_.Query("node_memory_MemAvailable_bytes");
        return steps.size() == 2 && tokens.size() == 1 && loss.size() == 1 && rss.size() == 2 &&
               cpu.size() == 2 && mem.size() == 2;
      },
      30000, 500))
      << steps.dump() << tokens.dump() << loss.dump() << rss.dump() << cpu.dump() << mem.dump();
  for (const json& s : steps) EXPECT_GT(Value(s), 0) << s.dump();
  EXPECT_GT(Value(tokens[0]), 0);
  EXPECT_GT(Value(loss[0]), 0);
  EXPECT_LT(Value(loss[0]), 20);
  std::set<std::string> instances;
  for (const json& s : rss) {
    EXPECT_GT(Value(s), 10e6) << s.dump();  // a training process holds more than 10 MB
    instances.insert(s["metric"]["instance"]);
  }
  EXPECT_EQ(instances, std::set<std::string>(agent_http_.begin(), agent_http_.end()));
  for (const json& s : cpu) EXPECT_GT(Value(s), 0.05) << "a training rank uses CPU: " << s.dump();
  instances.clear();
  for (const json& s : mem) {
    EXPECT_GT(Value(s), 1e6) << s.dump();
    EXPECT_EQ(s["metric"]["job"], "coord-agent");
    instances.insert(s["metric"]["instance"]);
  }
  EXPECT_EQ(instances, std::set<std::string>(agent_http_.begin(), agent_http_.end()));
  EXPECT_EQ(prometheus_.Query("node_cpu_seconds_total{mode=\"idle\"}").size() % 2, 0u);
  for (const json& up : prometheus_.Query("up")) EXPECT_EQ(Value(up), 1) << up.dump();

  // promtool reads both pages as they are while the job runs.
  HttpResult coordd_page = HttpGet(coordd_http_, "/metrics");
  ASSERT_EQ(coordd_page.status, 200);
  EXPECT_EQ(coordd_page.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(PromtoolProblems(dir_, coordd_page.body, "coordd"), "") << coordd_page.body;
  HttpResult agent_page = HttpGet(agent_http_[0], "/metrics");
  ASSERT_EQ(agent_page.status, 200);
  EXPECT_NE(agent_page.body.find("coord_rank_cpu_seconds_total{job_id=\"" + job_ + "\""),
            std::string::npos);
  EXPECT_EQ(PromtoolProblems(dir_, agent_page.body, "agent"), "") << agent_page.body;
  // Bad requests: an unknown path, a write.
  EXPECT_EQ(HttpGet(coordd_http_, "/metrics/../etc/passwd").status, 404);
  EXPECT_EQ(HttpGet(agent_http_[1], "/nope").status, 404);

  RunResult kill = Ctl({"kill", job_});
  EXPECT_EQ(kill.exit_code, 0) << kill.out << kill.err;
  EXPECT_TRUE(
      WaitUntil([&] { return ProcessesWithEnv("COORD_JOB_ID", job_).empty(); }, 30000, 100));
  // The job ended: its per-job series are gone from coordd's page, the count stays.
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::string page = HttpGet(coordd_http_, "/metrics").body;
        return page.find("coord_jobs{state=\"KILLED\"} 1\n") != std::string::npos &&
               page.find("coord_job_iteration{") == std::string::npos;
      },
      10000, 100));
}

TEST_F(MetricsHttpTest, HttpsNeedsAClientCertificateOfTheCluster) {
  // Certificates make both endpoints HTTPS even on loopback (the control plane's rule:
  // certificates, when present, are always used). Binding a non-loopback address is
  // not possible in every test sandbox, so "a client off loopback" is played by any
  // client of these TLS listeners: the handshake itself is what refuses it.
  auto ca = CreateCa("metrics-test", 30);
  ASSERT_TRUE(ca.ok());
  const std::string tls = dir_.File("tls");
  ASSERT_TRUE(MakeDirs(tls).ok());
  ASSERT_TRUE(WritePemPair(*ca, tls, "ca").ok());
  auto issue = [&](const std::string& file, const std::string& cn, CertRole role,
                   std::vector<std::string> sans) {
    IssueOptions o;
    o.name = cn;
    o.role = role;
    o.sans = std::move(sans);
    auto pair = IssueCertificate(*ca, o);
    ASSERT_TRUE(pair.ok());
    ASSERT_TRUE(WritePemPair(*pair, tls, file).ok());
  };
  issue("coordinator", "coordd", CertRole::kCoordinator, {"127.0.0.1"});
  issue("node", "127.0.0.2", CertRole::kNode, {"127.0.0.2"});
  issue("prometheus", "prometheus", CertRole::kUser, {});
  issue("user", "alice", CertRole::kUser, {});
  StartCoordd({"--tls-ca", tls + "/ca.crt", "--tls-cert", tls + "/coordinator.crt"});
  StartAgent(0, {"--tls-ca", tls + "/ca.crt", "--tls-cert", tls + "/node.crt"});
  const std::string tls_config = "    scheme: https\n    tls_config:\n      ca_file: " + tls +
                                 "/ca.crt\n      cert_file: " + tls +
                                 "/prometheus.crt\n      key_file: " + tls + "/prometheus.key\n";
  ASSERT_TRUE(prometheus_.Start(
      dir_, "  - job_name: coordd\n" + tls_config + "    static_configs:\n      - targets: " +
                Targets({coordd_http_}) + "\n  - job_name: coord-agent\n" + tls_config +
                "    static_configs:\n      - targets: " + Targets(agent_http_) + "\n"))
      << prometheus_.Log();
  json up, mem;
  ASSERT_TRUE(WaitUntil(
      [&] {
        up = prometheus_.Query("up == 1");
        mem = prometheus_.Query("node_memory_MemTotal_bytes");
        return up.size() == 2 && mem.size() == 1;
      },
      30000, 500))
      << prometheus_.Query("up").dump() << "\n"
      << prometheus_.Log();
  EXPECT_EQ(prometheus_.Query("coord_jobs").size(), 7u);  // every state, over HTTPS

  HttpClientTls user{tls + "/ca.crt", tls + "/user.crt", tls + "/user.key"};
  HttpClientTls none{tls + "/ca.crt", "", ""};
  for (const std::string& addr : {coordd_http_, agent_http_[0]}) {
    EXPECT_EQ(HttpGet(addr, "/metrics", &user).status, 200) << addr;
    HttpResult r = HttpGet(addr, "/metrics", &none);
    EXPECT_EQ(r.status, -1) << addr << ": served without a client certificate";
    EXPECT_EQ(r.body, "");
    HttpResult plain = HttpGet(addr, "/metrics");
    EXPECT_NE(plain.status, 200) << addr << ": served plaintext";
    EXPECT_EQ(plain.body.find("# TYPE"), std::string::npos);
  }
  // The status page and its JSON API sit behind the same rule.
  for (const char* path :
       {"/api/jobs", "/static/index.html", "/static/vendor/chart.js/chart.min.js"}) {
    EXPECT_EQ(HttpGet(coordd_http_, path, &user).status, 200) << path;
    EXPECT_EQ(HttpGet(coordd_http_, path, &none).status, -1) << path << ": without a certificate";
  }
  // A browser's way in: the PKCS#12 bundle coordctl exports, here through curl.
  ASSERT_TRUE(WriteTextFile(dir_.File("p12.pass"), "hunter2\n"));
  RunResult exported =
      RunCommand({BinPath("coordctl"), "certs", "export", "user", "--dir", tls, "--out",
                  dir_.File("user.p12"), "--password-file", dir_.File("p12.pass")});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  if (PathExists("/usr/bin/curl")) {
    RunResult curl = RunCommand({"/usr/bin/curl", "-sS", "--fail", "--cacert", tls + "/ca.crt",
                                 "--cert-type", "P12", "--cert", dir_.File("user.p12") + ":hunter2",
                                 "https://" + coordd_http_ + "/metrics"});
    EXPECT_EQ(curl.exit_code, 0) << curl.err;
    EXPECT_NE(curl.out.find("# TYPE coord_jobs gauge"), std::string::npos);
    RunResult no_cert = RunCommand({"/usr/bin/curl", "-sS", "--fail", "--cacert", tls + "/ca.crt",
                                    "https://" + coordd_http_ + "/metrics"});
    EXPECT_NE(no_cert.exit_code, 0);
    EXPECT_EQ(no_cert.out.find("# TYPE"), std::string::npos);
  }
}

TEST_F(MetricsHttpTest, PlaintextOffLoopbackNeedsInsecure) {
  // No certificates anywhere (the default /etc/coord/tls paths are not there in tests).
  for (const std::string& program : {"coordd", "coord-agent"}) {
    if (PathExists("/etc/coord/tls")) GTEST_SKIP() << "/etc/coord/tls exists on this machine";
    std::vector<std::string> argv = {
        BinPath(program), "--listen", "127.0.0.1:0", "--state-dir", dir_.File(program + "-state"),
        "--http-listen",  "0.0.0.0:0"};
    RunResult refused = RunCommand(argv, {}, 20000);
    EXPECT_EQ(refused.exit_code, 2) << program << refused.out << refused.err;
    EXPECT_NE((refused.out + refused.err).find("--http-listen"), std::string::npos) << refused.err;
    EXPECT_NE((refused.out + refused.err).find("--insecure"), std::string::npos) << refused.err;

    // With --insecure it serves plaintext on every address, and says so.
    Process p;
    const std::string port_file = dir_.File(program + ".http");
    argv.insert(argv.end(), {"--insecure", "--http-port-file", port_file});
    ASSERT_TRUE(p.Start(argv, dir_.File(program + ".log")));
    const std::string port = WaitForFile(port_file, 10000);
    ASSERT_FALSE(port.empty()) << ReadAll(dir_.File(program + ".log"));
    HttpResult r = HttpGet("127.0.0.1:" + std::to_string(std::stoi(port)), "/metrics");
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_NE(r.body.find("process_cpu_seconds_total"), std::string::npos);
    p.Stop();
    EXPECT_NE(ReadAll(dir_.File(program + ".log")).find("--insecure: plaintext HTTP"),
              std::string::npos)
        << ReadAll(dir_.File(program + ".log"));
  }
}

}  // namespace
}  // namespace coord::testing
