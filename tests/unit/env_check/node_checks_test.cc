// Node-level env_check: each check against a FakeSystem node, the job-spec
// context, the report, and RealSystem / env-check on this machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>

#include "env_check/check.h"
#include "env_check/job_context.h"
#include "env_check/report.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/env_check/fake_system.h"

namespace coord::env_check {
namespace {

using testing::FakeSystem;
using ::testing::HasSubstr;
using ::testing::Not;

CheckResult RunCheck(const std::string& id, const CheckContext& ctx, const System& sys) {
  for (const Check& c : AllChecks()) {
    if (id == c.id) return c.run(ctx, sys);
  }
  ADD_FAILURE() << "no check " << id;
  return {};
}

std::string Fact(const CheckResult& r, const std::string& key) {
  for (const auto& [k, v] : r.facts) {
    if (k == key) return v;
  }
  return "";
}

// A node with / on ext4, cgroup2, and `extra` lines appended.
std::string Mountinfo(const std::string& extra) {
  return "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
         "25 22 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
         "30 22 0:5 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,size=65536k\n" +
         extra;
}

CheckContext SharedCtx(const std::string& path = "/cfs") {
  CheckContext ctx;
  ctx.shared_path = path;
  return ctx;
}

TEST(SharedMount, Nfs4AtPathPasses) {
  FakeSystem fs;
  fs.files["/proc/self/mountinfo"] = Mountinfo(
      "40 22 0:50 / /cfs rw,relatime shared:20 - nfs4 10.0.0.5:/export/cfs "
      "rw,vers=4.1,hard\n");
  CheckResult r = RunCheck("shared_mount", SharedCtx("/cfs/jobs/run1"), fs);
  EXPECT_TRUE(r.passed) << r.found;
  EXPECT_EQ(r.found, "nfs4 10.0.0.5:/export/cfs on /cfs (rw,relatime)");
  EXPECT_EQ(Fact(r, "shared_fs_source"), "10.0.0.5:/export/cfs");
}

TEST(SharedMount, PathOnRootFilesystemFailsNamingPath) {
  FakeSystem fs;
  // /cfsx is a mount but not a prefix of /cfs in path terms.
  fs.files["/proc/self/mountinfo"] =
      Mountinfo("40 22 0:50 / /cfsx rw shared:20 - nfs4 10.0.0.5:/x rw\n");
  CheckResult r = RunCheck("shared_mount", SharedCtx(), fs);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kFail);
  EXPECT_THAT(r.found, HasSubstr("/cfs is not a mount"));
}

TEST(SharedMount, WrongFsTypeFails) {
  FakeSystem fs;
  fs.files["/proc/self/mountinfo"] =
      Mountinfo("40 22 8:2 / /cfs rw,relatime shared:20 - xfs /dev/sdb1 rw\n");
  CheckResult r = RunCheck("shared_mount", SharedCtx(), fs);
  EXPECT_FALSE(r.passed);
  EXPECT_THAT(r.found, HasSubstr("xfs /dev/sdb1 on /cfs"));
  EXPECT_THAT(r.expected, HasSubstr("nfs or nfs4"));

  CheckContext ctx = SharedCtx();
  ctx.shared_fs_types = {"xfs"};
  EXPECT_TRUE(RunCheck("shared_mount", ctx, fs).passed);
}

TEST(SharedMount, EscapedSpacesAndNoOptionalFields) {
  FakeSystem fs;
  fs.files["/proc/self/mountinfo"] =
      Mountinfo("41 22 0:51 / /mnt/shared\\040data rw - nfs server:/my\\040export rw\n");
  CheckResult r = RunCheck("shared_mount", SharedCtx("/mnt/shared data/x"), fs);
  EXPECT_TRUE(r.passed) << r.found;
  EXPECT_EQ(Fact(r, "shared_fs_source"), "server:/my export");
}

TEST(SharedMount, LaterMountAtSamePointWins) {
  FakeSystem fs;
  fs.files["/proc/self/mountinfo"] = Mountinfo(
      "40 22 0:50 / /cfs rw shared:20 - nfs4 a:/cfs rw\n"
      "41 40 8:3 / /cfs rw shared:21 - ext4 /dev/sdc rw\n");
  EXPECT_FALSE(RunCheck("shared_mount", SharedCtx(), fs).passed);
}

TEST(SharedMount, NotConfiguredIsInfoPass) {
  FakeSystem fs;
  for (const char* id : {"shared_mount", "shared_mount_responsive"}) {
    CheckResult r = RunCheck(id, CheckContext(), fs);
    EXPECT_TRUE(r.passed);
    EXPECT_EQ(r.found, "not configured");
  }
}

TEST(SharedMountResponsive, ProbeTimeoutIsFailWithDeadline) {
  FakeSystem fs;
  fs.probes["/cfs"] = DeadlineExceeded("/cfs did not answer within 5.0 s (hung NFS mount?)");
  CheckResult r = RunCheck("shared_mount_responsive", SharedCtx(), fs);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kFail);
  EXPECT_THAT(r.found, HasSubstr("5.0 s"));
  EXPECT_THAT(r.hint, HasSubstr("hung NFS"));
  EXPECT_TRUE(RunCheck("shared_mount_responsive", SharedCtx("/other"), fs).passed);
}

TEST(SystemChecks, Limits) {
  FakeSystem fs;
  EXPECT_TRUE(RunCheck("memlock_limit", CheckContext(), fs).passed);
  EXPECT_TRUE(RunCheck("nofile_limit", CheckContext(), fs).passed);
  fs.limits[RLIMIT_MEMLOCK] = {65536, 65536};
  fs.limits[RLIMIT_NOFILE] = {1024, 4096};
  CheckResult mem = RunCheck("memlock_limit", CheckContext(), fs);
  EXPECT_FALSE(mem.passed);
  EXPECT_EQ(mem.severity, Severity::kWarn);
  EXPECT_EQ(mem.found, "soft 65536, hard 65536");
  CheckResult nofile = RunCheck("nofile_limit", CheckContext(), fs);
  EXPECT_FALSE(nofile.passed);
  EXPECT_EQ(nofile.found, "soft 1024, hard 4096");
}

TEST(SystemChecks, ShmAndCheckpointDisk) {
  FakeSystem fs;
  fs.total_bytes["/dev/shm"] = 64ull << 20;
  CheckResult shm = RunCheck("shm_size", CheckContext(), fs);
  EXPECT_FALSE(shm.passed);
  EXPECT_EQ(shm.found, "64.0 MiB");
  fs.total_bytes["/dev/shm"] = 32ull << 30;
  EXPECT_TRUE(RunCheck("shm_size", CheckContext(), fs).passed);

  CheckContext ctx;
  EXPECT_TRUE(RunCheck("checkpoint_disk", ctx, fs).passed);
  ctx.checkpoint_dir = "/ckpt";
  CheckResult missing = RunCheck("checkpoint_disk", ctx, fs);
  EXPECT_FALSE(missing.passed);
  EXPECT_EQ(missing.severity, Severity::kFail);
  fs.free_bytes["/ckpt"] = 1ull << 30;
  EXPECT_FALSE(RunCheck("checkpoint_disk", ctx, fs).passed);
  fs.free_bytes["/ckpt"] = 100ull << 30;
  EXPECT_TRUE(RunCheck("checkpoint_disk", ctx, fs).passed);
}

TEST(SystemChecks, Cgroup2) {
  FakeSystem fs;
  EXPECT_FALSE(RunCheck("cgroup2", CheckContext(), fs).passed);
  fs.files["/proc/self/mountinfo"] = Mountinfo("");
  CheckResult r = RunCheck("cgroup2", CheckContext(), fs);
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.found, "cgroup2 on /sys/fs/cgroup");
}

TEST(NetworkChecks, PeerResolutionNamesBadHosts) {
  FakeSystem fs;
  fs.hosts = {{"node1", "10.0.0.1"}, {"node2", "10.0.0.2"}};
  CheckContext ctx;
  ctx.peer_hosts = {"node1", "nodeX", "node2", "nodeY"};
  CheckResult r = RunCheck("peer_hosts_resolve", ctx, fs);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.found, "cannot resolve: nodeX, nodeY");
  ctx.peer_hosts = {"node1", "node2"};
  EXPECT_TRUE(RunCheck("peer_hosts_resolve", ctx, fs).passed);
}

TEST(NetworkChecks, MasterPortBusy) {
  FakeSystem fs;
  fs.busy_ports = {29500};
  CheckContext ctx;
  ctx.master_port = 29500;
  EXPECT_TRUE(RunCheck("master_port_free", ctx, fs).passed);  // not the master
  ctx.is_master_node = true;
  CheckResult r = RunCheck("master_port_free", ctx, fs);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kFail);
  EXPECT_THAT(r.found, HasSubstr("29500 in use"));
  ctx.master_port = 29501;
  EXPECT_TRUE(RunCheck("master_port_free", ctx, fs).passed);
}

TEST(SoftwareChecks, RiskyEnvironment) {
  FakeSystem fs;
  EXPECT_TRUE(RunCheck("dcgm_env", CheckContext(), fs).passed);
  fs.env = {{"NCCL_DEBUG", "INFO"}, {"NCCL_IB_DISABLE", "0"}};
  EXPECT_TRUE(RunCheck("dcgm_env", CheckContext(), fs).passed);
  fs.env = {{"CUDA_VISIBLE_DEVICES", "0,1"}, {"NCCL_DEBUG", "TRACE"}, {"NCCL_P2P_DISABLE", "1"}};
  CheckResult r = RunCheck("dcgm_env", CheckContext(), fs);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.severity, Severity::kWarn);
  EXPECT_EQ(r.found, "CUDA_VISIBLE_DEVICES=0,1, NCCL_DEBUG=TRACE, NCCL_P2P_DISABLE=1");
  EXPECT_THAT(r.hint, HasSubstr("masks GPUs"));
}

TEST(SoftwareChecks, OpenMpiVersion) {
  FakeSystem fs;
  CheckResult none = RunCheck("openmpi_version", CheckContext(), fs);
  EXPECT_TRUE(none.passed);
  EXPECT_EQ(none.found, "not installed");

  fs.commands["mpirun --version"] = {false, false, 0, "mpirun (Open MPI) 4.1.4\n\nReport bugs\n",
                                     ""};
  CheckResult mpirun = RunCheck("openmpi_version", CheckContext(), fs);
  EXPECT_EQ(mpirun.found, "Open MPI 4.1.4");
  EXPECT_EQ(Fact(mpirun, "openmpi_version"), "4.1.4");

  fs.commands["ompi_info --version"] = {false, false, 0, "Open MPI v5.0.3\n\nhttps://...\n", ""};
  EXPECT_EQ(Fact(RunCheck("openmpi_version", CheckContext(), fs), "openmpi_version"), "5.0.3");

  FakeSystem mpich;
  mpich.commands["mpirun --version"] = {false, false, 0, "HYDRA build details:\n Version: 4.0\n",
                                        ""};
  EXPECT_EQ(RunCheck("openmpi_version", CheckContext(), mpich).found, "mpirun is not Open MPI");
}

TEST(JobContext, ReadsLaunchTrainingAndEnvCheck) {
  setenv("COORD_ENVCHECK_TEST_CKPT", "/data/ckpt", 1);
  unsetenv("COORD_ENVCHECK_TEST_UNSET");
  auto ctx = ContextFromJob(R"({
    "launch": {"nproc_per_node": 8, "master_port": 29500, "command": "true"},
    "training": {"bf16": true, "save": "${COORD_ENVCHECK_TEST_CKPT}/run1"},
    "env_check": {"shared_path": "/cfs", "shared_fs_types": ["nfs4", "lustre"],
                  "min_shm_gb": 8, "min_free_disk_gb": 0.5, "probe_deadline_s": 2.5,
                  "cuda_runtime_version": 12040}})",
                            "job.json");
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(ctx->nproc_per_node, 8);
  EXPECT_TRUE(ctx->gpus_required);
  EXPECT_EQ(ctx->master_port, 29500);
  EXPECT_EQ(ctx->checkpoint_dir, "/data/ckpt/run1");
  EXPECT_EQ(ctx->shared_path, "/cfs");
  EXPECT_EQ(ctx->shared_fs_types, (std::vector<std::string>{"nfs4", "lustre"}));
  EXPECT_EQ(ctx->min_shm_bytes, 8ull << 30);
  EXPECT_EQ(ctx->min_free_disk_bytes, 512ull << 20);
  EXPECT_EQ(ctx->probe_deadline, std::chrono::milliseconds(2500));
  EXPECT_EQ(ctx->cuda_runtime_version, 12040);

  auto cpu = ContextFromJob(
      R"({"launch": {"nproc_per_node": 4},
          "training": {"save": "${COORD_ENVCHECK_TEST_UNSET:-/tmp/${COORD_ENVCHECK_TEST_UNSET:-x}}"}})",
      "cpu.json");
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_FALSE(cpu->gpus_required);
  EXPECT_EQ(cpu->nproc_per_node, 0);
  EXPECT_EQ(cpu->checkpoint_dir, "/tmp/x");
  EXPECT_TRUE(ContextFromJob(R"({"launch": {"gpus": true}})", "j")->gpus_required);
  EXPECT_TRUE(ContextFromJob(R"({"parallel": {"backend": "cuda"}})", "j")->gpus_required);
}

TEST(JobContext, BadInputNamesFileAndPath) {
  auto syntax = ContextFromJob("{\n  \"launch\": {\"nproc_per_node\": 8,}\n}", "job.json");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.status().message(), HasSubstr("job.json:2:"));

  auto unknown = ContextFromJob(R"({"env_check": {"shared_pth": "/cfs"}})", "job.json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("job.json: env_check.shared_pth: unknown key; did you mean shared_path?"));

  auto type = ContextFromJob(R"({"env_check": {"min_shm_gb": "8"}})", "job.json");
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(
      type.status().message(),
      HasSubstr("job.json: env_check.min_shm_gb: expected a non-negative number, got \"8\""));

  auto list = ContextFromJob(R"({"env_check": {"shared_fs_types": ["nfs", 4]}})", "job.json");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.status().message(),
              HasSubstr("env_check.shared_fs_types[1]: expected a string"));

  auto section = ContextFromJob(R"({"env_check": []})", "job.json");
  ASSERT_FALSE(section.ok());
  EXPECT_THAT(section.status().message(), HasSubstr("env_check: expected an object"));

  auto save = ContextFromJob(R"({"training": {"save": 3}})", "job.json");
  ASSERT_FALSE(save.ok());
  EXPECT_THAT(save.status().message(), HasSubstr("training.save: expected a path string"));
}

// Numbers past what their field holds (tests/fuzz/job_context_fuzz.cc): 1e300 GB used to
// be converted to bytes with undefined behaviour, 2^40 processes truncated to an int.
TEST(JobContext, OutOfRangeNumbersNameFileAndPath) {
  auto error_of = [](const std::string& text) {
    auto ctx = ContextFromJob(text, "job.json");
    EXPECT_FALSE(ctx.ok()) << text;
    return ctx.ok() ? std::string() : ctx.status().message();
  };
  EXPECT_THAT(error_of(R"({"env_check": {"min_shm_gb": 1e300}})"),
              HasSubstr("job.json: env_check.min_shm_gb: expected at most 1e9, got 1e+300"));
  EXPECT_THAT(error_of(R"({"env_check": {"probe_deadline_s": 1e19}})"),
              HasSubstr("job.json: env_check.probe_deadline_s: expected at most 1e9"));
  EXPECT_THAT(error_of(R"({"launch": {"nproc_per_node": 1099511627776}})"),
              HasSubstr("job.json: launch.nproc_per_node: expected a positive integer"));
  EXPECT_THAT(error_of(R"({"env_check": {"cuda_runtime_version": 18446744073709551615}})"),
              HasSubstr("job.json: env_check.cuda_runtime_version: expected a non-negative"));
  EXPECT_THAT(error_of(R"({"launch": {"master_port": 1e400}})"), HasSubstr("job.json:1:"));
  EXPECT_THAT(error_of(std::string(100000, '[')), HasSubstr("job.json:1:"));
  EXPECT_THAT(error_of("{\"env_check\": {\"shared_path\": \"/cfs\xFF\"}}"),
              HasSubstr("job.json:1:"));
  // A model too big for a uint64 of bytes is saturated, not converted with UB.
  EXPECT_EQ(
      EstimateCheckpointBytes({{"num_layers", 1e300}, {"hidden_size", 1e300}, {"seq_length", 1}}),
      UINT64_MAX);
}

TEST(Report, ExitCodeAndTable) {
  std::vector<CheckResult> results(3);
  results[0].id = "shm_size";
  results[1].id = "dcgm_env";
  results[2].id = "shared_mount";
  EXPECT_EQ(ExitCode(results), 0);
  results[0].passed = false;  // an INFO miss is recorded, not a warning
  results[0].severity = Severity::kInfo;
  EXPECT_EQ(ExitCode(results), 0);
  results[1].passed = false;
  results[1].severity = Severity::kWarn;
  EXPECT_EQ(ExitCode(results), 1);
  results[2].passed = false;
  results[2].severity = Severity::kFail;
  results[2].found = "/cfs is not a mount";
  results[2].expected = "nfs mounted at /cfs";
  results[2].hint = "mount it";
  results[2].facts = {{"shared_fs_type", "ext4"}};
  EXPECT_EQ(ExitCode(results), 2);

  std::string table = FormatTable(results);
  for (const char* s :
       {"shm_size", "dcgm_env", "shared_mount", "FAIL", "WARN", "/cfs is not a mount",
        "expected: nfs mounted at /cfs", "fix:      mount it"})
    EXPECT_THAT(table, HasSubstr(s));
  nlohmann::json j = ToJson(results);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[2]["severity"], "FAIL");
  EXPECT_EQ(j[2]["facts"]["shared_fs_type"], "ext4");
}

TEST(Registry, IdsUniqueAndRunAllKeepsTableOrder) {
  std::set<std::string> ids;
  for (const Check& c : AllChecks()) EXPECT_TRUE(ids.insert(c.id).second) << c.id;
  auto fs = std::make_shared<FakeSystem>();
  std::vector<CheckResult> results = RunAll(CheckContext(), fs);
  ASSERT_EQ(results.size(), AllChecks().size());
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].id, AllChecks()[i].id);
}

// A check stuck in a call nothing can bound (a wedged driver) must not hold the
// node's answer: RunAll reports it as hung at its deadline and returns.
TEST(Registry, RunAllReportsAHungCheckAtItsDeadline) {
  auto fs = std::make_shared<FakeSystem>();
  fs->space_delay = std::chrono::milliseconds(6000);
  CheckContext ctx;
  ctx.probe_deadline = ctx.command_deadline = std::chrono::milliseconds(100);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<CheckResult> results = RunAll(ctx, fs);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 4.0);
  EXPECT_GE(s, 2.0);
  bool saw = false;
  for (const CheckResult& r : results) {
    if (r.id != "shm_size") continue;
    saw = true;
    EXPECT_FALSE(r.passed);
    EXPECT_EQ(r.severity, Severity::kFail);
    EXPECT_THAT(r.found, HasSubstr("did not finish within 2.1 s"));
    EXPECT_THAT(r.hint, HasSubstr("hung NFS mount"));
  }
  EXPECT_TRUE(saw);
  for (const CheckResult& r : results) {
    if (r.id == "shm_size") continue;
    EXPECT_THAT(r.found, Not(HasSubstr("did not finish"))) << r.id;
  }
}

// --- RealSystem on this machine ---

TEST(RealSystem, ProbeTempDirectory) {
  coord::testing::TempDir dir;
  auto sys = MakeRealSystem();
  Status st = sys->ProbeDirectory(dir.path(), true, std::chrono::seconds(5));
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(sys->ListDir(dir.path())->empty());  // the probe file is gone
  Status missing = sys->ProbeDirectory(dir.File("nope"), false, std::chrono::seconds(5));
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing.ToString();
}

TEST(RealSystem, LocateProgramSearchesThePathAndDigestsTheFile) {
  coord::testing::TempDir dir;
  auto sys = MakeRealSystem();
  std::string bin = dir.File("bin");
  mkdir(bin.c_str(), 0755);
  std::ofstream(bin + "/trainer") << "#!/bin/sh\necho v1\n";
  chmod((bin + "/trainer").c_str(), 0755);
  auto first = sys->LocateProgram("trainer", "/nonexistent:" + bin, std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->path, bin + "/trainer");
  EXPECT_EQ(first->size, 18u);  // "#!/bin/sh\necho v1\n"
  EXPECT_EQ(first->digest.size(), 16u);
  auto again = sys->LocateProgram(bin + "/trainer", "", std::chrono::seconds(5));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, first->digest);
  std::ofstream(bin + "/trainer") << "#!/bin/sh\necho v2\n";  // same size, one byte differs
  auto changed = sys->LocateProgram("trainer", bin, std::chrono::seconds(5));
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->digest, first->digest);
  auto missing = sys->LocateProgram("no-such-trainer", bin, std::chrono::seconds(5));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-trainer not found on PATH"));
  // Not executable: skipped, as execvp would.
  chmod((bin + "/trainer").c_str(), 0644);
  EXPECT_FALSE(sys->LocateProgram("trainer", bin, std::chrono::seconds(5)).ok());
}

// The agent asks `ompi_info --version` before every launch's checks: the answer is
// kept while the program file is the same, and asked again once it is replaced.
TEST(RealSystem, AVersionQueryRunsAgainOnlyWhenTheProgramChanges) {
  coord::testing::TempDir dir;
  auto sys = MakeRealSystem();
  const std::string prog = dir.File("fake_ompi_info");
  const std::string runs = dir.File("runs");
  auto install = [&](const std::string& version) {
    std::string tmp = prog + ".new";  // replaced by rename, as a package upgrade does
    std::ofstream(tmp) << "#!/bin/sh\necho run >> " << runs << "\necho \"Open MPI " << version
                       << "\"\n";
    chmod(tmp.c_str(), 0755);
    ASSERT_EQ(rename(tmp.c_str(), prog.c_str()), 0);
  };
  auto run_count = [&] {
    std::ifstream f(runs);
    int n = 0;
    for (std::string line; std::getline(f, line);) ++n;
    return n;
  };
  install("4.1.4");
  CommandResult first = sys->RunVersionQuery({prog, "--version"}, std::chrono::seconds(5));
  EXPECT_EQ(first.out, "Open MPI 4.1.4\n");
  CommandResult again = sys->RunVersionQuery({prog, "--version"}, std::chrono::seconds(5));
  EXPECT_EQ(again.out, "Open MPI 4.1.4\n");
  EXPECT_EQ(run_count(), 1);
  sys->RunVersionQuery({prog, "--other"}, std::chrono::seconds(5));  // other arguments: asked
  EXPECT_EQ(run_count(), 2);
  install("5.0.3");
  CommandResult upgraded = sys->RunVersionQuery({prog, "--version"}, std::chrono::seconds(5));
  EXPECT_EQ(upgraded.out, "Open MPI 5.0.3\n");
  EXPECT_EQ(run_count(), 3);
  EXPECT_TRUE(sys->RunVersionQuery({dir.File("missing"), "--version"}, std::chrono::seconds(5))
                  .not_found);
}

TEST(RealSystem, SmallFilesAreWrittenReadAndRemovedWithTheirDirectories) {
  coord::testing::TempDir dir;
  auto sys = MakeRealSystem();
  std::string token = dir.File(".coord-check/abc/node-0");
  ASSERT_TRUE(sys->WriteSmallFile(token, "hello\n", std::chrono::seconds(5)).ok());
  auto back = sys->ReadSmallFiles({token, dir.File(".coord-check/abc/node-1")},
                                  std::chrono::seconds(5));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  ASSERT_TRUE((*back)[0].ok());
  EXPECT_EQ(*(*back)[0], "hello\n");
  EXPECT_EQ((*back)[1].status().code(), StatusCode::kNotFound);
  std::string other = dir.File(".coord-check/abc/node-1");
  ASSERT_TRUE(sys->WriteSmallFile(other, "x", std::chrono::seconds(5)).ok());
  ASSERT_TRUE(sys->RemoveSmallFile(token, std::chrono::seconds(5)).ok());
  EXPECT_TRUE(sys->Exists(dir.File(".coord-check/abc")));  // node-1's token is still there
  ASSERT_TRUE(sys->RemoveSmallFile(other, std::chrono::seconds(5)).ok());
  EXPECT_FALSE(sys->Exists(dir.File(".coord-check")));  // the last one out cleans up
  auto space = sys->Space(dir.path(), std::chrono::seconds(5));
  ASSERT_TRUE(space.ok());
  EXPECT_GT(space->total, 0u);
  EXPECT_LE(space->free, space->total);
}

TEST(RealSystem, RunDeadlineKillsProcess) {
  auto sys = MakeRealSystem();
  auto start = std::chrono::steady_clock::now();
  CommandResult r = sys->Run({"sleep", "5"}, std::chrono::milliseconds(200));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(took, std::chrono::seconds(1));
}

TEST(RealSystem, RunCapturesOutputAndNotFound) {
  auto sys = MakeRealSystem();
  CommandResult r =
      sys->Run({"sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(5));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  CommandResult missing = sys->Run({"coord-no-such-program-xyz"}, std::chrono::seconds(5));
  EXPECT_TRUE(missing.not_found);
}

// A background grandchild keeps stdout open after the command exits; Run must
// return at the exit, not at the deadline.
TEST(RealSystem, RunReturnsWhenChildExitsWhilePipeHeldOpen) {
  auto sys = MakeRealSystem();
  auto start = std::chrono::steady_clock::now();
  CommandResult r = sys->Run({"sh", "-c", "sleep 1 & echo hi"}, std::chrono::seconds(5));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

TEST(RealSystem, ReadFileUnderRootAndPortFree) {
  coord::testing::TempDir dir;
  mkdir((dir.path() + "/proc").c_str(), 0755);
  std::ofstream(dir.path() + "/proc/version") << "fake kernel\n";
  auto sys = MakeRealSystem(dir.path());
  EXPECT_EQ(*sys->ReadFile("/proc/version"), "fake kernel\n");
  EXPECT_FALSE(sys->ReadFile("/proc/nope").ok());
  EXPECT_TRUE(sys->PortFree(coord::testing::UnusedTcpPort()));
  EXPECT_TRUE(sys->Resolve("localhost").ok());
  EXPECT_FALSE(sys->Resolve("no-such-host.invalid").ok());
}

TEST(EnvCheckBinary, RunsEndToEnd) {
  auto r = coord::testing::RunCommand({coord::testing::BinPath("env-check")}, {}, 60000);
  EXPECT_FALSE(r.timed_out);
  EXPECT_GE(r.exit_code, 0);
  EXPECT_LE(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("STATUS"));
  EXPECT_THAT(r.out, HasSubstr("shm_size"));
  EXPECT_THAT(r.out, HasSubstr("shared_mount"));

  auto json =
      coord::testing::RunCommand({coord::testing::BinPath("env-check"), "--json"}, {}, 60000);
  auto parsed = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(parsed.is_array()) << json.out;
  EXPECT_EQ(parsed.size(), AllChecks().size());
}

TEST(EnvCheckBinary, BadFlagsAndConfig) {
  auto bad = coord::testing::RunCommand({coord::testing::BinPath("env-check"), "--bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("usage:"));

  coord::testing::TempDir dir;
  std::string missing = dir.File("missing.json");
  auto unreadable =
      coord::testing::RunCommand({coord::testing::BinPath("env-check"), "--config", missing});
  EXPECT_EQ(unreadable.exit_code, 2);
  EXPECT_THAT(unreadable.err, HasSubstr(missing));

  std::ofstream(dir.File("bad.json")) << "{\"env_check\": {\"shared_path\": 1}}";
  auto invalid = coord::testing::RunCommand(
      {coord::testing::BinPath("env-check"), "--config", dir.File("bad.json")});
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_THAT(invalid.err, HasSubstr("bad.json: env_check.shared_path"));
}

// What a new user found: a number beyond double range aborted env-check (uncaught
// out_of_range) and 100000 '[' crashed it (stack overflow). Both are config errors now.
TEST(EnvCheckBinary, MalformedJsonIsAClearErrorNotACrash) {
  coord::testing::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"x\": 1e400}", ":1:7: invalid JSON: the number 1e400 is out of range"},
      {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
      {std::string(50000, '[') + std::string(50000, ']'),
       ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path = dir.File("bad" + std::to_string(i) + ".json");
    std::ofstream(path) << cases[i].first;
    auto r = coord::testing::RunCommand({coord::testing::BinPath("env-check"), "--config", path});
    EXPECT_EQ(r.exit_code, 2) << i << ": " << r.err;  // not a signal (-1)
    EXPECT_THAT(r.err, HasSubstr(path + cases[i].second)) << i;
  }
}

TEST(EnvCheckBinary, SharedPathThatIsNotAMountFails) {
  coord::testing::TempDir dir;
  auto r = coord::testing::RunCommand(
      {coord::testing::BinPath("env-check"), "--shared-path", dir.path(), "--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array());
  for (const auto& c : j) {
    if (c["id"] == "shared_mount") {
      EXPECT_FALSE(c["passed"].get<bool>()) << c.dump();
    }
    if (c["id"] == "shared_mount_responsive") {
      EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    }
  }
}

}  // namespace
}  // namespace coord::env_check
