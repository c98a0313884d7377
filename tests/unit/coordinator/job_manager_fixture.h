// The JobManager unit tests' fixture: a JobManager on FakeCluster agents (no network),
// nodes "node<i>:7071", a job spec with `launch_extra` appended to its launch section.
// Shared by job_manager_test.cc and job_progress_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/fs.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "coordinator/job_manager.h"
#include "fake_agent.h"

namespace coord::coordinator {

using testing::FakeAgent;
using testing::FakeCluster;

using coord::testing::WaitUntil;

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path(); }
  void TearDown() override { jm_.reset(); }

  void Start() {
    JobManagerOptions o;
    o.state_dir = dir_;
    o.agent_factory = cluster_.Factory();
    o.resolve_hosts = false;
    o.connect_timeout_ms = 300;
    o.launch_timeout_ms = 300;
    o.heartbeat_ms = heartbeat_ms_;
    o.missed_heartbeats = 3;
    o.clock = clock_;  // null: the machine's
    o.journal_compact_bytes = journal_compact_bytes_;
    o.keep_finished_jobs = keep_finished_jobs_;
    o.check_reuse_ms = check_reuse_ms_;
    auto jm = JobManager::Create(o);
    ASSERT_TRUE(jm.ok()) << jm.status().ToString();
    jm_ = std::move(*jm);
  }

  // Hosts node<first>..node<first+nodes-1>, each on the default agent port.
  static StartJobRequest Request(int nodes, int nproc, int first = 0,
                                 const std::string& launch_extra = "") {
    StartJobRequest r;
    std::string hosts = "# test cluster\n";
    for (int i = first; i < first + nodes; ++i) hosts += "node" + std::to_string(i) + "\n";
    r.set_hosts_text(hosts);
    r.set_hosts_path("hosts.txt");
    r.set_config_path("job.json");
    r.set_config_json(R"({"name": "t", "launch": {"command": ["train"], "nproc_per_node": )" +
                      std::to_string(nproc) + R"(, "kill_grace_s": 0.5)" + launch_extra + "}}");
    return r;
  }
  FakeAgent* Node(int i) { return cluster_.Agent("node" + std::to_string(i) + ":7071"); }

  StartJobReply MustStart(const StartJobRequest& r) {
    StartJobReply reply;
    Status st = jm_->StartJob(r, &reply);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return reply;
  }
  JobStatus Get(const std::string& id) {
    GetJobRequest req;
    req.set_job_id(id);
    JobStatus s;
    Status st = jm_->GetJob(req, &s);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return s;
  }
  // The state without GetJob's wait for failure details: what a reader sees right now.
  JobState StateNow(const std::string& id) {
    ListJobsReply all;
    EXPECT_TRUE(jm_->ListJobs(ListJobsRequest(), &all).ok());
    for (const auto& j : all.jobs()) {
      if (j.job_id() == id) return j.state();
    }
    return JOB_STATE_UNKNOWN;
  }

  FakeCluster cluster_;  // declared first: the manager's clients point into it
  coord::testing::TempDir tmp_;
  std::string dir_;  // tmp_'s path: the journal
  int heartbeat_ms_ = 60000;
  uint64_t journal_compact_bytes_ = 64ull << 20;
  int keep_finished_jobs_ = 1000;
  int64_t check_reuse_ms_ = 0;  // every start runs the checks unless a test says otherwise
  std::shared_ptr<const Clock> clock_;  // set before Start() to drive the manager's time
  std::unique_ptr<JobManager> jm_;
};

}  // namespace coord::coordinator
