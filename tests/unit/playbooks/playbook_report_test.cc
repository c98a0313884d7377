// Unit tests for the run's output (playbooks/runner/report.h): task lines with
// indented failure messages, the aligned summary table (check mode, aborted
// column), the JSON document and its counts, and both reporters end to end on
// a LocalHost run (forks=1, so the line order is fixed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>

#include "common/fs.h"
#include "playbooks/runner/local_host.h"
#include "playbooks/runner/playbook_parser.h"
#include "playbooks/runner/report.h"
#include "tests/support/temp_dir.h"

namespace coord::playbooks {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TaskResult Result(std::string host, std::string task, int index, TaskOutcome outcome,
                  std::string message = "", double seconds = 0) {
  TaskResult r;
  r.host = std::move(host);
  r.task = std::move(task);
  r.index = index;
  r.total = 5;
  r.outcome = outcome;
  r.message = std::move(message);
  r.seconds = seconds;
  return r;
}

TEST(ReportTest, TaskLines) {
  EXPECT_EQ(
      FormatTaskLine(Result("node01", "Install NFS client", 2, TaskOutcome::kChanged, "", 3.24), 8),
      "node01    [2/5] Install NFS client ... changed (3.2 s)\n");
  EXPECT_EQ(FormatTaskLine(Result("node10", "Mount", 3, TaskOutcome::kFailed,
                                  "exit status 32\nmount: access denied", 0.5),
                           6),
            "node10  [3/5] Mount ... failed (0.5 s)\n"
            "    exit status 32\n"
            "    mount: access denied\n");
  EXPECT_EQ(FormatTaskLine(Result("c", kConnectStep, 0, TaskOutcome::kUnreachable, "refused"), 1),
            "c  [connect] ... unreachable (0.0 s)\n    refused\n");
  // Reasons of ordinary outcomes stay in the JSON; the line is enough.
  EXPECT_EQ(FormatTaskLine(Result("a", "Only on RedHat", 1, TaskOutcome::kSkipped, "when: x"), 1),
            "a  [1/5] Only on RedHat ... skipped (0.0 s)\n");
  EXPECT_EQ(FormatTaskLine(Result("a", "Agent", 5, TaskOutcome::kWouldChange), 1),
            "a  [5/5] Agent ... would change (0.0 s)\n");
}

HostResult Host(std::string name, std::vector<TaskResult> tasks, bool failed = false,
                bool unreachable = false, bool aborted = false) {
  HostResult h;
  h.host = std::move(name);
  h.tasks = std::move(tasks);
  h.failed = failed;
  h.unreachable = unreachable;
  h.aborted = aborted;
  return h;
}

PlaybookResult MixedResult() {
  PlaybookResult r;
  r.playbook = "agent.yaml";
  HostResult ok = Host("node01", {});
  ok.facts = {{"os_family", "Debian"}};
  for (TaskOutcome o : {TaskOutcome::kOk, TaskOutcome::kChanged, TaskOutcome::kOk,
                        TaskOutcome::kSkipped, TaskOutcome::kChanged}) {
    ok.tasks.push_back(Result("node01", "t", 1, o));
  }
  HostResult failed = Host("n2", {}, true);
  failed.tasks.push_back(Result("n2", "t1", 1, TaskOutcome::kOk));
  failed.tasks.push_back(Result("n2", "t2", 2, TaskOutcome::kFailed, "exit status 1"));
  HostResult unreachable = Host("gpu-node-1234", {}, false, true);
  unreachable.tasks.push_back(Result("gpu-node-1234", kConnectStep, 0, TaskOutcome::kUnreachable));
  r.hosts = {ok, failed, unreachable};
  return r;
}

TEST(ReportTest, SummaryTableIsAlignedAndInInventoryOrder) {
  EXPECT_EQ(FormatSummary(MixedResult()),
            "host           ok  changed  failed  skipped  unreachable\n"
            "node01          2        2       0        1            0\n"
            "n2              1        0       1        0            0\n"
            "gpu-node-1234   0        0       0        0            1\n"
            "FAILED: 2 of 3 hosts did not finish (failed, unreachable or aborted)\n");

  PlaybookResult check;
  check.check = true;
  check.hosts = {Host("a", {Result("a", "t", 1, TaskOutcome::kWouldChange)})};
  EXPECT_EQ(FormatSummary(check),
            "host  ok  would change  failed  skipped  unreachable\n"
            "a      0             1       0        0            0\n"
            "OK: 1 host checked (check mode: nothing changed)\n");

  PlaybookResult aborted;
  aborted.max_fail_percent = 10;
  aborted.aborted_by_max_fail = true;
  aborted.hosts = {
      Host("a", {Result("a", "t", 1, TaskOutcome::kFailed)}, true),
      Host("b", {Result("b", kStartStep, 0, TaskOutcome::kAborted)}, false, false, true)};
  EXPECT_EQ(FormatSummary(aborted),
            "host  ok  changed  failed  skipped  unreachable  aborted\n"
            "a      0        0       1        0            0        0\n"
            "b      0        0       0        0            0        1\n"
            "FAILED: 2 of 2 hosts did not finish (failed, unreachable or aborted)\n"
            "stopped: more than max_fail_percent=10% of the hosts failed\n");
}

TEST(ReportTest, JsonHasTheWholeResultAndCounts) {
  nlohmann::json j = nlohmann::json::parse(ResultToJson(MixedResult()).dump());
  EXPECT_EQ(j["playbook"], "agent.yaml");
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["check"], false);
  EXPECT_EQ(j["aborted_by_max_fail"], false);
  EXPECT_EQ(j["totals"]["ok"], 3);
  EXPECT_EQ(j["totals"]["changed"], 2);
  EXPECT_EQ(j["totals"]["failed"], 1);
  EXPECT_EQ(j["totals"]["skipped"], 1);
  EXPECT_EQ(j["totals"]["unreachable"], 1);
  EXPECT_EQ(j["totals"]["would_change"], 0);
  EXPECT_EQ(j["totals"]["hosts"], 3);
  EXPECT_EQ(j["totals"]["failed_hosts"], 2);
  ASSERT_EQ(j["hosts"].size(), 3u);
  EXPECT_EQ(j["hosts"][0]["host"], "node01");
  EXPECT_EQ(j["hosts"][0]["ok"], true);
  EXPECT_EQ(j["hosts"][0]["counts"]["changed"], 2);
  EXPECT_EQ(j["hosts"][0]["facts"]["os_family"], "Debian");
  EXPECT_EQ(j["hosts"][1]["failed"], true);
  EXPECT_EQ(j["hosts"][1]["tasks"][1]["outcome"], "failed");
  EXPECT_EQ(j["hosts"][1]["tasks"][1]["message"], "exit status 1");
  EXPECT_EQ(j["hosts"][1]["tasks"][1]["index"], 2);
  EXPECT_EQ(j["hosts"][2]["unreachable"], true);
  EXPECT_EQ(j["hosts"][2]["tasks"][0]["task"], "connect");
}

// ---------------------------------------------------------------------------
// Both reporters on a real (local) run

class ReporterRunTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(root_, "/tmp") << "could not make a temporary directory"; }

  PlaybookResult Run(Reporter* reporter) {
    StatusOr<Playbook> pb = ParsePlaybook(R"(- hosts: all
  tasks:
    - name: Probe
      shell: "true"
      changed_when: false
    - name: Fails on web2
      shell: if [ {{ inventory_hostname }} = web2 ]; then echo "no space" >&2; exit 28; fi
)",
                                          root_ + "/site.yaml");
    EXPECT_TRUE(pb.ok()) << pb.status().ToString();
    std::vector<InventoryHost> inv(3);
    inv[0].name = "web1";
    inv[1].name = "web2";
    inv[2].name = "db";
    RunOptions opts;
    opts.forks = 1;
    Connector local = [](const InventoryHost& h) -> StatusOr<std::unique_ptr<RemoteHost>> {
      if (h.name == "db") return Unavailable("ssh db:22: connection refused");
      return std::unique_ptr<RemoteHost>(new LocalHost(h.name));
    };
    StatusOr<PlaybookResult> r = RunPlaybook(*pb, inv, opts, local, reporter);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PlaybookResult{};
  }

  // A fresh directory per test, removed with the fixture.
  coord::testing::TempDir tmp_;
  const std::string root_ = tmp_.path();
};

TEST_F(ReporterRunTest, TextReporterPrintsLinesThenTheSummary) {
  std::ostringstream out;
  TextReporter reporter(&out);
  PlaybookResult r = Run(&reporter);
  std::string text = std::regex_replace(out.str(), std::regex("\\(\\d+\\.\\d s\\)"), "(T)");
  EXPECT_EQ(text, "RUN " + root_ + "/site.yaml: 2 tasks on 3 hosts\n" +
                      "web1  [1/2] Probe ... ok (T)\n"
                      "web1  [2/2] Fails on web2 ... changed (T)\n"
                      "web2  [1/2] Probe ... ok (T)\n"
                      "web2  [2/2] Fails on web2 ... failed (T)\n"
                      "    exit status 28\n"
                      "    no space\n"
                      "db    [connect] ... unreachable (T)\n"
                      "    ssh db:22: connection refused\n"
                      "\n"
                      "host  ok  changed  failed  skipped  unreachable\n"
                      "web1   1        1       0        0            0\n"
                      "web2   1        0       1        0            0\n"
                      "db     0        0       0        0            1\n"
                      "FAILED: 2 of 3 hosts did not finish (failed, unreachable or aborted)\n");
}

TEST_F(ReporterRunTest, JsonReporterPrintsOneDocumentOnly) {
  std::ostringstream out;
  JsonReporter reporter(&out);
  Run(&reporter);
  nlohmann::json j = nlohmann::json::parse(out.str());  // throws on anything but one document
  EXPECT_THAT(out.str(), Not(HasSubstr("[1/2]")));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["totals"]["ok"], 2);
  EXPECT_EQ(j["totals"]["changed"], 1);
  EXPECT_EQ(j["totals"]["failed"], 1);
  EXPECT_EQ(j["totals"]["unreachable"], 1);
  EXPECT_EQ(j["hosts"][1]["tasks"][1]["message"], "exit status 28\nno space");
  EXPECT_EQ(j["hosts"][0]["facts"]["inventory_hostname"], "web1");
}

}  // namespace
}  // namespace coord::playbooks
