// Unit tests for the job spec parser (common/job_spec.h): accepted specs and the
// values they produce, one table row per "launch" rule, JSON syntax errors with
// line:column, unknown-key warnings with did-you-mean, and all errors in one status.
#include "common/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "common/fs.h"
#include "common/json_file.h"
#include "tests/support/temp_dir.h"

namespace coord {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kPath[] = "job.json";

JobSpecResult ParseOk(const std::string& text) {
  StatusOr<JobSpecResult> result = ParseJobSpec(text, kPath);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : JobSpecResult{};
}

std::string ParseError(const std::string& text) {
  StatusOr<JobSpecResult> result = ParseJobSpec(text, kPath);
  EXPECT_FALSE(result.ok()) << "parsed without error: " << text;
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  return result.status().message();
}

// A spec whose launch section holds `launch_body` (plus a valid command unless it has one).
std::string WithLaunch(const std::string& launch_body) {
  std::string body = launch_body;
  if (body.find("\"command\"") == std::string::npos) {
    body += std::string(body.empty() ? "" : ", ") + R"("command": ["python3", "train.py"])";
  }
  return R"({"launch": {)" + body + "}}";
}

size_t Lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n') + 1; }

// ---------------------------------------------------------------------------
// Accepted specs

TEST(ParseJobSpecTest, MinimalSpecKeepsDefaults) {
  const std::string text = R"({"launch": {"command": ["python3", "train.py"]}})";
  JobSpecResult r = ParseOk(text);
  const LaunchSpec& l = r.spec.launch;
  EXPECT_THAT(l.command, ElementsAre("python3", "train.py"));
  EXPECT_EQ(l.nproc_per_node, 0);
  EXPECT_EQ(l.master_port, 0);
  EXPECT_THAT(l.env, IsEmpty());
  EXPECT_EQ(l.workdir, "");
  EXPECT_EQ(l.max_restarts, 0);
  EXPECT_EQ(l.hang_timeout_s, 0);
  EXPECT_EQ(l.startup_timeout_s, 0);  // no progress records promised: no deadline for one
  EXPECT_EQ(l.kill_grace_ms, 5000);
  EXPECT_EQ(r.spec.name, "");
  EXPECT_EQ(r.spec.source_path, kPath);
  EXPECT_EQ(r.spec.json_text, text);
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(ParseJobSpecTest, FullLaunchSection) {
  JobSpecResult r = ParseOk(R"({
    "name": "gpt2-small.run_1",
    "launch": {
      "nproc_per_node": 8,
      "master_port": 29500,
      "env": {"NCCL_DEBUG": "INFO", "_X1": ""},
      "command": ["python3", "pretrain_gpt2.py", "--lr", "3e-4"],
      "workdir": "/home/me/run",
      "max_restarts": 3,
      "hang_timeout_s": 600,
      "kill_grace_s": 2.5,
      "restart_backoff_s": 0.2
    }
  })");
  const LaunchSpec& l = r.spec.launch;
  EXPECT_EQ(r.spec.name, "gpt2-small.run_1");
  EXPECT_EQ(l.nproc_per_node, 8);
  EXPECT_EQ(l.master_port, 29500);
  EXPECT_EQ(l.env.size(), 2u);
  EXPECT_EQ(l.env.at("NCCL_DEBUG"), "INFO");
  EXPECT_EQ(l.env.at("_X1"), "");
  EXPECT_THAT(l.command, ElementsAre("python3", "pretrain_gpt2.py", "--lr", "3e-4"));
  EXPECT_EQ(l.workdir, "/home/me/run");
  EXPECT_EQ(l.max_restarts, 3);
  EXPECT_EQ(l.hang_timeout_s, 600);
  EXPECT_EQ(l.startup_timeout_s, 600);  // not given: max(600, hang_timeout_s)
  EXPECT_EQ(l.kill_grace_ms, 2500);
  EXPECT_EQ(l.min_nodes, 0);  // not given: every host
  EXPECT_EQ(l.max_nodes, 0);
  EXPECT_EQ(l.restart_backoff_ms, 200);
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(ParseJobSpecTest, StartupTimeoutIsGivenOrDefaultsFromTheHangTimeout) {
  auto startup = [](const std::string& launch_keys) {
    return ParseOk(R"({"launch": {"command": ["x"], )" + launch_keys + "}}")
        .spec.launch.startup_timeout_s;
  };
  EXPECT_EQ(startup(R"("hang_timeout_s": 6)"), 600);     // start-up takes minutes
  EXPECT_EQ(startup(R"("hang_timeout_s": 3600)"), 3600);  // never below the hang timeout
  EXPECT_EQ(startup(R"("hang_timeout_s": 0)"), 0);
  EXPECT_EQ(startup(R"("hang_timeout_s": 6, "startup_timeout_s": 30)"), 30);
  EXPECT_EQ(startup(R"("startup_timeout_s": 30, "hang_timeout_s": 6)"), 30);  // any order
  EXPECT_EQ(startup(R"("hang_timeout_s": 6, "startup_timeout_s": 0)"), 0);    // off
  EXPECT_EQ(startup(R"("startup_timeout_s": 900)"), 900);  // alone: first records only
  EXPECT_EQ(DefaultStartupTimeoutS(6), 600);
}

TEST(ParseJobSpecTest, NnodesIsACountOrAnElasticRange) {
  for (const auto& [text, lo, hi] : std::vector<std::tuple<std::string, int, int>>{
           {"3", 3, 3}, {"\"3\"", 3, 3}, {"\"2:4\"", 2, 4}}) {
    JobSpecResult r = ParseOk(R"({"launch": {"command": "x", "nnodes": )" + text + "}}");
    EXPECT_EQ(r.spec.launch.min_nodes, lo) << text;
    EXPECT_EQ(r.spec.launch.max_nodes, hi) << text;
  }
}

TEST(ParseJobSpecTest, StringCommandRunsThroughTheShell) {
  JobSpecResult r = ParseOk(WithLaunch(R"("command": "cd /x && python3 train.py | tee log")"));
  EXPECT_THAT(r.spec.launch.command,
              ElementsAre("/bin/sh", "-c", "cd /x && python3 train.py | tee log"));
}

TEST(ParseJobSpecTest, RangeLimitsAreAccepted) {
  JobSpecResult r = ParseOk(WithLaunch(
      R"("nproc_per_node": 1024, "master_port": 65535, "kill_grace_s": 3600, "max_restarts": 0)"));
  EXPECT_EQ(r.spec.launch.nproc_per_node, 1024);
  EXPECT_EQ(r.spec.launch.master_port, 65535);
  EXPECT_EQ(r.spec.launch.kill_grace_ms, 3600000);
  r = ParseOk(WithLaunch(R"("nproc_per_node": 1, "master_port": 0, "kill_grace_s": 0)"));
  EXPECT_EQ(r.spec.launch.nproc_per_node, 1);
  EXPECT_EQ(r.spec.launch.kill_grace_ms, 0);
}

TEST(ParseJobSpecTest, DeepSpeedAndCoordSectionsAcceptedWithoutWarnings) {
  JobSpecResult r = ParseOk(R"({
    "comment": ["notes", "are", "fine"],
    "description": "a pasted DeepSpeed config",
    "train_batch_size": 256,
    "train_micro_batch_size_per_gpu": 4,
    "gradient_accumulation_steps": 8,
    "optimizer": {"type": "AdamW", "params": {"lr": 3e-4}},
    "scheduler": {"type": "WarmupLR"},
    "fp16": {"enabled": false},
    "bf16": {"enabled": true},
    "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}},
    "zero_allow_untested_optimizer": true,
    "gradient_clipping": 1.0,
    "prescale_gradients": false,
    "steps_per_print": 10,
    "wall_clock_breakdown": false,
    "activation_checkpointing": {"partition_activations": true},
    "deepspeed_config": "ds.json",
    "model": {"num_layers": 12, "not_checked_here": "the trainer validates this"},
    "data": {}, "training": {"train_iters": "5e5"}, "parallel": {},
    "checkpoint": {"save": "/ckpt"}, "logging": {}, "env_check": {},
    "launch": {"command": "true"}
  })");
  EXPECT_THAT(r.warnings, IsEmpty());
}

TEST(ParseJobSpecTest, AcceptsUtf8ByteOrderMark) {
  JobSpecResult r = ParseOk("\xEF\xBB\xBF" + WithLaunch(R"("nproc_per_node": 2)"));
  EXPECT_EQ(r.spec.launch.nproc_per_node, 2);
}

TEST(ParseJobSpecTest, NameRules) {
  EXPECT_EQ(ParseOk(R"({"name": ")" + std::string(64, 'a') + R"(", "launch": {"command": "x"}})")
                .spec.name,
            std::string(64, 'a'));
  const std::string hint = R"(expected 1 to 64 letters, digits, '.', '_' or '-', got )";
  EXPECT_THAT(ParseError(R"({"name": "my job", "launch": {"command": "x"}})"),
              HasSubstr("job.json: name: " + hint + R"("my job")"));
  EXPECT_THAT(ParseError(R"({"name": "", "launch": {"command": "x"}})"),
              HasSubstr("job.json: name: " + hint + R"("")"));
  EXPECT_THAT(
      ParseError(R"({"name": ")" + std::string(65, 'a') + R"(", "launch": {"command": "x"}})"),
      HasSubstr("job.json: name: " + hint));
  EXPECT_THAT(ParseError(R"({"name": 7, "launch": {"command": "x"}})"),
              HasSubstr("job.json: name: " + hint + "7"));
}

// ---------------------------------------------------------------------------
// One row per "launch" rule: the launch body and the exact line expected.

struct BadLaunch {
  const char* name;
  std::string body;     // inside "launch": {...}
  std::string message;  // one full line of the error
};

// Failures print the row name, not the struct's bytes.
void PrintTo(const BadLaunch& c, std::ostream* os) { *os << c.name; }

class BadLaunchTest : public ::testing::TestWithParam<BadLaunch> {};

TEST_P(BadLaunchTest, ExactMessage) {
  std::string message = ParseError(WithLaunch(GetParam().body));
  EXPECT_EQ(message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Rules, BadLaunchTest,
    ::testing::Values(
        BadLaunch{"NprocString", R"("nproc_per_node": "8")",
                  R"(job.json: launch.nproc_per_node: expected a positive integer, got "8"; )"
                  "write 8 without quotes"},
        BadLaunch{"NprocFloat", R"("nproc_per_node": 2.5)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got 2.5"},
        BadLaunch{"NprocWholeFloat", R"("nproc_per_node": 2.0)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got 2.0; write 2"},
        BadLaunch{"NprocBool", R"("nproc_per_node": true)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got true"},
        BadLaunch{"NprocNegative", R"("nproc_per_node": -1)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got -1"},
        BadLaunch{"NprocZero", R"("nproc_per_node": 0)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got 0"},
        BadLaunch{"NprocTooMany", R"("nproc_per_node": 1025)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got 1025; "
                  "the maximum is 1024"},
        BadLaunch{"NprocHuge", R"("nproc_per_node": 18446744073709551615)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got "
                  "18446744073709551615; the maximum is 1024"},
        BadLaunch{"NprocNull", R"("nproc_per_node": null)",
                  "job.json: launch.nproc_per_node: expected a positive integer, got null"},
        BadLaunch{"NprocArray", R"("nproc_per_node": [8])",
                  "job.json: launch.nproc_per_node: expected a positive integer, got [8]"},
        BadLaunch{"PortTooBig", R"("master_port": 65536)",
                  "job.json: launch.master_port: expected a port from 0 to 65535 (0: pick a free "
                  "port), got 65536"},
        BadLaunch{"PortNegative", R"("master_port": -1)",
                  "job.json: launch.master_port: expected a port from 0 to 65535 (0: pick a free "
                  "port), got -1"},
        BadLaunch{"PortString", R"("master_port": "29500")",
                  "job.json: launch.master_port: expected a port from 0 to 65535 (0: pick a free "
                  R"(port), got "29500"; write 29500 without quotes)"},
        BadLaunch{"EnvNumber", R"("env": {"OMP_NUM_THREADS": 1})",
                  R"(job.json: launch.env.OMP_NUM_THREADS: expected a string, got 1; write "1")"},
        BadLaunch{"EnvBool", R"("env": {"X": true})",
                  R"(job.json: launch.env.X: expected a string, got true; write "true")"},
        BadLaunch{"EnvFloat", R"("env": {"X": 0.5})",
                  R"(job.json: launch.env.X: expected a string, got 0.5; write "0.5")"},
        BadLaunch{"EnvNull", R"("env": {"X": null})",
                  "job.json: launch.env.X: expected a string, got null"},
        BadLaunch{"EnvList", R"("env": {"X": ["a"]})",
                  R"(job.json: launch.env.X: expected a string, got ["a"])"},
        BadLaunch{"EnvNotObject", R"("env": ["A=1"])",
                  R"(job.json: launch.env: expected an object of "NAME": "value" strings, )"
                  R"(got ["A=1"])"},
        BadLaunch{"EnvNameDigit", R"("env": {"1X": "a"})",
                  "job.json: launch.env.1X: not a valid environment variable name; use letters, "
                  "digits and '_', not starting with a digit"},
        BadLaunch{"EnvNameDash", R"("env": {"A-B": "a"})",
                  "job.json: launch.env.A-B: not a valid environment variable name; use letters, "
                  "digits and '_', not starting with a digit"},
        BadLaunch{"EnvNameSpaceQuoted", R"("env": {"A B": "a"})",
                  R"(job.json: launch.env["A B"]: not a valid environment variable name; use )"
                  "letters, digits and '_', not starting with a digit"},
        BadLaunch{"EnvNameEmpty", R"("env": {"": "a"})",
                  R"(job.json: launch.env[""]: not a valid environment variable name; use )"
                  "letters, digits and '_', not starting with a digit"},
        BadLaunch{
            "EnvNul", R"("env": {"A": "x\u0000y"})",
            R"(job.json: launch.env.A: the value contains a NUL character (\u0000); remove it)"},
        BadLaunch{
            "CommandEmptyArray", R"("command": [])",
            "job.json: launch.command: expected a non-empty array of strings (argv) or a "
            R"(shell command string, got []; e.g. "command": ["python3", "train.py", "--lr", )"
            R"("3e-4"])"},
        BadLaunch{"CommandNumber", R"("command": 3)",
                  "job.json: launch.command: expected a non-empty array of strings (argv) or a "
                  R"(shell command string, got 3; e.g. "command": ["python3", "train.py", "--lr", )"
                  R"("3e-4"])"},
        BadLaunch{"CommandEmptyString", R"("command": " \t ")",
                  R"(job.json: launch.command: empty command; e.g. "command": ["python3", )"
                  R"("train.py", "--lr", "3e-4"])"},
        BadLaunch{"CommandArgNumber", R"("command": ["python3", "train.py", "--steps", 100])",
                  R"(job.json: launch.command[3]: expected a string, got 100; write "100")"},
        BadLaunch{"CommandArgEmpty", R"("command": ["", "x"])",
                  "job.json: launch.command[0]: empty argument; remove it or give it a value"},
        BadLaunch{"WorkdirRelative", R"("workdir": "runs/1")",
                  R"(job.json: launch.workdir: expected an absolute path, got "runs/1"; )"
                  R"(e.g. "/home/me/run")"},
        BadLaunch{"WorkdirEmpty", R"("workdir": "")",
                  R"(job.json: launch.workdir: expected an absolute path, got ""; )"
                  R"(e.g. "/home/me/run")"},
        BadLaunch{"WorkdirNumber", R"("workdir": 1)",
                  R"(job.json: launch.workdir: expected an absolute path, got 1; )"
                  R"(e.g. "/home/me/run")"},
        BadLaunch{"MaxRestartsNegative", R"("max_restarts": -1)",
                  "job.json: launch.max_restarts: expected a non-negative integer, got -1"},
        BadLaunch{"MaxRestartsFloat", R"("max_restarts": 1.5)",
                  "job.json: launch.max_restarts: expected a non-negative integer, got 1.5"},
        BadLaunch{"MaxRestartsTooBig", R"("max_restarts": 3000000000)",
                  "job.json: launch.max_restarts: expected a non-negative integer, got 3000000000; "
                  "the maximum is 2147483647"},
        BadLaunch{"HangTimeoutNegative", R"("hang_timeout_s": -5)",
                  "job.json: launch.hang_timeout_s: expected a non-negative integer (seconds; 0: "
                  "no hang detection), got -5"},
        BadLaunch{"HangTimeoutString", R"("hang_timeout_s": "600")",
                  "job.json: launch.hang_timeout_s: expected a non-negative integer (seconds; 0: "
                  R"(no hang detection), got "600"; write 600 without quotes)"},
        BadLaunch{"StartupTimeoutNegative", R"("startup_timeout_s": -1)",
                  "job.json: launch.startup_timeout_s: expected a non-negative integer (seconds; "
                  "0: no startup deadline), got -1"},
        BadLaunch{"StartupTimeoutTooBig", R"("startup_timeout_s": 700000)",
                  "job.json: launch.startup_timeout_s: expected a non-negative integer (seconds; "
                  "0: no startup deadline), got 700000; the maximum is 604800"},
        BadLaunch{"KillGraceNegative", R"("kill_grace_s": -1)",
                  "job.json: launch.kill_grace_s: expected a number of seconds from 0 to 3600, "
                  "got -1"},
        BadLaunch{"KillGraceTooLong", R"("kill_grace_s": 3600.5)",
                  "job.json: launch.kill_grace_s: expected a number of seconds from 0 to 3600, "
                  "got 3600.5"},
        BadLaunch{"KillGraceString", R"("kill_grace_s": "5")",
                  "job.json: launch.kill_grace_s: expected a number of seconds from 0 to 3600, "
                  R"(got "5")"},
        BadLaunch{"RestartBackoffNegative", R"("restart_backoff_s": -1)",
                  "job.json: launch.restart_backoff_s: expected a number of seconds from 0 to "
                  "3600, got -1"},
        BadLaunch{"RestartBackoffString", R"("restart_backoff_s": "1")",
                  "job.json: launch.restart_backoff_s: expected a number of seconds from 0 to "
                  R"(3600, got "1")"},
        BadLaunch{"NnodesZero", R"("nnodes": 0)",
                  "job.json: launch.nnodes: expected a positive integer or \"MIN:MAX\" (elastic, "
                  "as torchrun's --nnodes), got 0 (need 1 <= MIN <= MAX <= 4096)"},
        BadLaunch{"NnodesMinAboveMax", R"("nnodes": "4:2")",
                  "job.json: launch.nnodes: expected a positive integer or \"MIN:MAX\" (elastic, "
                  R"(as torchrun's --nnodes), got "4:2" (need 1 <= MIN <= MAX <= 4096))"},
        BadLaunch{"NnodesNotARange", R"("nnodes": "2-4")",
                  "job.json: launch.nnodes: expected a positive integer or \"MIN:MAX\" (elastic, "
                  R"(as torchrun's --nnodes), got "2-4")"},
        BadLaunch{"CommandNull", R"("nproc_per_node": 2, "command": null)",
                  "job.json: launch.command: expected a non-empty array of strings (argv) or a "
                  R"(shell command string, got null; e.g. "command": ["python3", "train.py", )"
                  R"("--lr", "3e-4"])"}),
    [](const ::testing::TestParamInfo<BadLaunch>& info) { return std::string(info.param.name); });

TEST(ParseJobSpecTest, CommandIsRequired) {
  EXPECT_EQ(
      ParseError(R"({"launch": {"nproc_per_node": 2}})"),
      R"(job.json: launch.command: required; e.g. "command": ["python3", "pretrain_gpt2.py"])");
}

TEST(ParseJobSpecTest, EveryVariableCoordSetsIsRefused) {
  for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK",
                           "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT", "COORD_JOB_ID",
                           "COORD_RESTART_COUNT", "COORD_JOB_TAG", "COORD_PROGRESS_FD"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(ParseError(WithLaunch(R"("env": {")" + std::string(name) + R"(": "0"})")),
              "job.json: launch.env." + std::string(name) + ": Coord sets " + name +
                  " for every rank; remove it from launch.env");
  }
  // Names that only look like them are the user's.
  JobSpecResult r = ParseOk(WithLaunch(R"("env": {"rank": "1", "MY_RANK": "2", "COORD_X": "3"})"));
  EXPECT_EQ(r.spec.launch.env.size(), 3u);
}

// ---------------------------------------------------------------------------
// Top level

TEST(ParseJobSpecTest, LaunchIsRequired) {
  EXPECT_EQ(ParseError(R"({"train_batch_size": 8})"),
            R"(job.json: launch: required; add "launch": {"nproc_per_node": 2, )"
            R"("command": ["python3", "train.py"]})");
  EXPECT_EQ(ParseError("{}"), R"(job.json: launch: required; add "launch": {"nproc_per_node": 2, )"
                              R"("command": ["python3", "train.py"]})");
}

TEST(ParseJobSpecTest, SectionsMustBeObjects) {
  EXPECT_THAT(
      ParseError(R"({"launch": ["python3"]})"),
      HasSubstr(R"(job.json: launch: expected an object, got ["python3"]; e.g. "launch": )"));
  for (const char* key :
       {"model", "data", "training", "parallel", "checkpoint", "logging", "env_check"}) {
    SCOPED_TRACE(key);
    EXPECT_EQ(ParseError(R"({"launch": {"command": "x"}, ")" + std::string(key) + R"(": 3})"),
              "job.json: " + std::string(key) + ": expected an object, got 3");
  }
  EXPECT_EQ(ParseError(R"({"launch": {"command": "x"}, "description": 1})"),
            R"(job.json: description: expected a string, got 1; write "1")");
  EXPECT_EQ(ParseError(R"({"launch": {"command": "x"}, "deepspeed_config": {}})"),
            "job.json: deepspeed_config: expected a string, got {}");
}

TEST(ParseJobSpecTest, TopLevelMustBeAnObject) {
  EXPECT_THAT(ParseError("[1, 2]"),
              HasSubstr("job.json: expected a JSON object at the top level, got [1, 2]; e.g. {"));
  EXPECT_THAT(ParseError("\"launch\""),
              HasSubstr(R"(job.json: expected a JSON object at the top level, got "launch")"));
}

TEST(ParseJobSpecTest, EmptyFile) {
  const std::string want = R"(job.json: empty file; expected a JSON object such as {"launch": )"
                           R"({"nproc_per_node": 2, "command": ["python3", "train.py"]}})";
  EXPECT_EQ(ParseError(""), want);
  EXPECT_EQ(ParseError(" \n\t\r\n"), want);
  EXPECT_EQ(ParseError("\xEF\xBB\xBF\n"), want);
}

// ---------------------------------------------------------------------------
// Unknown keys: warnings, with a did-you-mean when one is close

TEST(ParseJobSpecTest, UnknownLaunchKeyWarnsWithSuggestion) {
  JobSpecResult r = ParseOk(WithLaunch(R"("nproc_per_nod": 2)"));
  EXPECT_THAT(
      r.warnings,
      ElementsAre("job.json: launch.nproc_per_nod: unknown key; did you mean nproc_per_node?"));
  EXPECT_EQ(r.spec.launch.nproc_per_node, 0) << "a misspelt key must not set the value";
}

TEST(ParseJobSpecTest, UnknownTopLevelKeysWarn) {
  JobSpecResult r = ParseOk(
      R"({"launch": {"command": "x", "MaxRestarts": 1}, "trian_batch_size": 8, "foo": 1,
          "zero_optimisation": {}})");
  EXPECT_THAT(r.warnings,
              ElementsAre("job.json: foo: unknown key",
                          "job.json: launch.MaxRestarts: unknown key; did you mean max_restarts?",
                          "job.json: trian_batch_size: unknown key; did you mean train_batch_size?",
                          "job.json: zero_optimisation: unknown key; did you mean "
                          "zero_optimization?"));
}

TEST(ParseJobSpecTest, ErrorsCarryTheWarningsThatExplainThem) {
  // "comand" is why "command" is missing: the user must see both.
  std::string message = ParseError(R"({"launch": {"comand": ["python3", "train.py"]}})");
  EXPECT_EQ(message,
            "job.json: launch.command: required; e.g. \"command\": [\"python3\", "
            "\"pretrain_gpt2.py\"]\n"
            "job.json: launch.comand: unknown key; did you mean command?");
}

// ---------------------------------------------------------------------------
// Every problem at once

TEST(ParseJobSpecTest, ReportsAllErrorsTogether) {
  std::string message = ParseError(R"({
    "name": "has space",
    "model": [],
    "launch": {
      "nproc_per_node": "8",
      "master_port": 70000,
      "env": {"RANK": "0", "A": 1},
      "command": ["python3", 7],
      "workdir": "rel",
      "max_restarts": -2,
      "hang_timeout_s": 1.5,
      "kill_grace_s": 9999
    }
  })");
  EXPECT_THAT(
      message,
      AllOf(HasSubstr("job.json: name: "), HasSubstr("job.json: model: "),
            HasSubstr("job.json: launch.nproc_per_node: "),
            HasSubstr("job.json: launch.master_port: "), HasSubstr("job.json: launch.env.RANK: "),
            HasSubstr("job.json: launch.env.A: "), HasSubstr("job.json: launch.command[1]: "),
            HasSubstr("job.json: launch.workdir: "), HasSubstr("job.json: launch.max_restarts: "),
            HasSubstr("job.json: launch.hang_timeout_s: "),
            HasSubstr("job.json: launch.kill_grace_s: ")));
  EXPECT_EQ(Lines(message), 11u) << message;
}

TEST(ParseJobSpecTest, DuplicateKeysAreErrors) {
  std::string message = ParseError(R"({
    "launch": {"command": "x", "env": {"A": "1", "A": "2"}},
    "model": {"layers": [{"n": 1, "n": 2}]},
    "name": "a", "name": "b"
  })");
  const std::string why = ": duplicate key; JSON would keep only the last one, so remove the other";
  EXPECT_THAT(message, AllOf(HasSubstr("job.json: launch.env.A" + why),
                             HasSubstr("job.json: model.layers[0].n" + why),
                             HasSubstr("job.json: name" + why)));
  EXPECT_EQ(Lines(message), 3u) << message;
}

// ---------------------------------------------------------------------------
// JSON syntax errors: line and column, and the usual mistakes explained

TEST(JsonSyntaxTest, MissingCommaPointsAtTheEndOfTheLine) {
  std::string message = ParseError(
      "{\n"
      "  \"launch\": {\n"
      "    \"nproc_per_node\": 2\n"
      "    \"command\": \"x\"\n"
      "  }\n"
      "}\n");
  EXPECT_THAT(message, HasSubstr("job.json:3:24: invalid JSON: missing ',' before the next key "
                                 "(line 4, column 5)"));
}

TEST(JsonSyntaxTest, MissingCommaOnOneLine) {
  EXPECT_THAT(ParseError("{\"a\": 1,\n \"b\": [1, 2 3]}"),
              HasSubstr("job.json:2:12: invalid JSON: missing ',' before the next value "
                        "(line 2, column 13)"));
  EXPECT_THAT(ParseError("{\"a\": \"x\\\"y\" \"b\": 1}"),
              HasSubstr("job.json:1:13: invalid JSON: missing ',' before the next key "
                        "(line 1, column 14)"));
}

TEST(JsonSyntaxTest, TrailingComma) {
  EXPECT_EQ(ParseError("{\n  \"a\": 1,\n}"),
            "job.json:2:9: invalid JSON: trailing comma before '}'; remove it");
  EXPECT_EQ(ParseError("{\"a\": [1, 2,\n]}"),
            "job.json:1:12: invalid JSON: trailing comma before ']'; remove it");
}

TEST(JsonSyntaxTest, CommentsAndSingleQuotes) {
  EXPECT_THAT(ParseError("{\n  // the job\n  \"launch\": {}\n}"),
              AllOf(HasSubstr("job.json:2:3: invalid JSON: "),
                    HasSubstr(R"(JSON has no comments, put notes in a "comment" key)")));
  EXPECT_THAT(ParseError("{\"a\": 'x'}"), AllOf(HasSubstr("job.json:1:7: invalid JSON: "),
                                                HasSubstr("JSON strings need double quotes")));
}

TEST(JsonSyntaxTest, OtherErrorsGiveLineColumnAndReason) {
  EXPECT_EQ(ParseError("{\"launch\": {\"command\": \"x\"}"),
            "job.json:1:28: invalid JSON: unexpected end of input; expected '}'");
  EXPECT_EQ(ParseError("{\n\"a\": tru}"), "job.json:2:9: invalid JSON: invalid literal");
  EXPECT_EQ(ParseError("{\"a\": 1} {\"b\": 2}"),
            "job.json:1:10: invalid JSON: unexpected '{'; expected end of input");
  EXPECT_THAT(ParseError("{\"a\": \"x\ny\"}"),
              HasSubstr("job.json:1:9: invalid JSON: invalid string: control character U+000A"));
  EXPECT_THAT(ParseError("{\n  \"a\": 1e999}"),
              HasSubstr("job.json:2:8: invalid JSON: the number 1e999 is out of range"));
}

TEST(JsonSyntaxTest, ColumnsCountCharactersNotBytes) {
  // "é" is two bytes; editors count it as one column.
  EXPECT_EQ(ParseError("{\"\xC3\xA9\": tru}"), "job.json:1:10: invalid JSON: invalid literal");
}

TEST(JsonSyntaxTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  // Refused while parsing (common/json_file.h), at the 65th '[': nothing deeper is built.
  EXPECT_THAT(ParseError(WithLaunch(R"("nproc_per_node": )" + deep)),
              HasSubstr("job.json:1:93: invalid JSON: arrays/objects nested deeper than 64 "
                        "levels"));
  EXPECT_THAT(ParseError(std::string(100000, '{')), HasSubstr("job.json:1:"));
}

// What the fuzzer (tests/fuzz/job_spec_fuzz.cc) throws at every JSON entry point: bytes
// that are not UTF-8, integers past int64 and past the field's type, numbers past double.
TEST(JsonSyntaxTest, InvalidUtf8AndOutOfRangeNumbersAreErrorsNamingTheFile) {
  EXPECT_THAT(ParseError(WithLaunch("\"workdir\": \"/home/\xFF\xFE\"")), HasSubstr("job.json:1:"));
  EXPECT_THAT(ParseError(WithLaunch("\"env\": {\"A\": \"\xC3\"}")),
              AllOf(HasSubstr("job.json:1:"), HasSubstr("invalid JSON")));
  EXPECT_THAT(
      ParseError(WithLaunch(R"("nproc_per_node": 9223372036854775808)")),
      AllOf(HasSubstr("job.json: launch.nproc_per_node:"), HasSubstr("got 9223372036854775808")));
  EXPECT_THAT(ParseError(WithLaunch(R"("nproc_per_node": -9223372036854775809)")),
              HasSubstr("launch.nproc_per_node:"));
  EXPECT_THAT(ParseError(WithLaunch(R"("max_restarts": 1e400)")), HasSubstr("job.json:1:"));
  EXPECT_THAT(ParseError(WithLaunch(R"("hang_timeout_s": 1e300)")),
              HasSubstr("launch.hang_timeout_s:"));
}

TEST(JsonSyntaxTest, LongValuesAreCutInMessages) {
  std::string message = ParseError(WithLaunch(R"("workdir": ")" + std::string(500, 'x') + "\""));
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_THAT(message, HasSubstr("xxx...; e.g."));
}

// ---------------------------------------------------------------------------
// Helpers

TEST(OffsetToLineColumnTest, CountsLinesAndCharacters) {
  const std::string text = "ab\ncd\n\xC3\xA9x";
  int line = 0, column = 0;
  OffsetToLineColumn(text, 0, &line, &column);
  EXPECT_EQ(line, 1);
  EXPECT_EQ(column, 1);
  OffsetToLineColumn(text, 2, &line, &column);  // the first '\n' ends line 1
  EXPECT_EQ(line, 1);
  EXPECT_EQ(column, 3);
  OffsetToLineColumn(text, 4, &line, &column);  // 'd'
  EXPECT_EQ(line, 2);
  EXPECT_EQ(column, 2);
  OffsetToLineColumn(text, 8, &line, &column);  // 'x', after a 2-byte 'é'
  EXPECT_EQ(line, 3);
  EXPECT_EQ(column, 2);
  OffsetToLineColumn(text, 1000, &line, &column);  // past the end: clamped
  EXPECT_EQ(line, 3);
  EXPECT_EQ(column, 3);
  OffsetToLineColumn("", 5, &line, &column);
  EXPECT_EQ(line, 1);
  EXPECT_EQ(column, 1);
}

TEST(DidYouMeanTest, Typos) {
  const std::vector<std::string> keys = {"nproc_per_node", "master_port", "env", "command"};
  EXPECT_EQ(DidYouMean("nproc_per_nod", keys), "nproc_per_node");
  EXPECT_EQ(DidYouMean("nprocs_per_node", keys), "nproc_per_node");
  EXPECT_EQ(DidYouMean("masterport", keys), "master_port");
  EXPECT_EQ(DidYouMean("comand", keys), "command");
  EXPECT_EQ(DidYouMean("envs", keys), "env");
  EXPECT_EQ(DidYouMean("command", keys), "command");
}

TEST(DidYouMeanTest, CaseInsensitiveButReturnsTheCandidateAsSpelled) {
  EXPECT_EQ(DidYouMean("MASTER_PORT", {"master_port"}), "master_port");
  EXPECT_EQ(DidYouMean("Slot", {"slots"}), "slots");
}

TEST(DidYouMeanTest, ThresholdIsAThirdOfTheLength) {
  // 9 letters: up to 3 edits.
  EXPECT_EQ(DidYouMean("abcdefxyz", {"abcdefghi"}), "abcdefghi");
  EXPECT_EQ(DidYouMean("abcdewxyz", {"abcdefghi"}), "");
  // Short words still allow one edit.
  EXPECT_EQ(DidYouMean("ev", {"env"}), "env");
  EXPECT_EQ(DidYouMean("x", {"env"}), "");
}

TEST(DidYouMeanTest, TiesGoToTheFirstCandidate) {
  EXPECT_EQ(DidYouMean("cat", {"bat", "hat"}), "bat");
  EXPECT_EQ(DidYouMean("cat", {"hat", "bat"}), "hat");
  EXPECT_EQ(DidYouMean("cat", {"hat", "cat"}), "cat") << "a closer later candidate wins";
}

TEST(DidYouMeanTest, NothingClose) {
  EXPECT_EQ(DidYouMean("foo", {"nproc_per_node", "master_port"}), "");
  EXPECT_EQ(DidYouMean("foo", {}), "");
}

// ---------------------------------------------------------------------------
// Loading from disk

class LoadJobSpecTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_TRUE(tmp_.Remove().ok()); }
  testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(LoadJobSpecTest, ReadsAndRecordsThePath) {
  std::string path = JoinPath(dir_, "job.json");
  const std::string text = R"({"launch": {"command": "x", "nproc_per_nod": 1}})";
  ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  StatusOr<JobSpecResult> r = LoadJobSpec(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->spec.source_path, path);
  EXPECT_EQ(r->spec.json_text, text);
  EXPECT_THAT(
      r->warnings,
      ElementsAre(path + ": launch.nproc_per_nod: unknown key; did you mean nproc_per_node?"));
}

TEST_F(LoadJobSpecTest, SyntaxErrorsNameTheRealPath) {
  std::string path = JoinPath(dir_, "bad.json");
  ASSERT_TRUE(WriteFileAtomic(path, "{\n\"a\": }").ok());
  StatusOr<JobSpecResult> r = LoadJobSpec(path);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(path + ":2:6: invalid JSON: "));
}

TEST_F(LoadJobSpecTest, MissingFile) {
  std::string path = JoinPath(dir_, "nope.json");
  StatusOr<JobSpecResult> r = LoadJobSpec(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "cannot read job spec " + path + ": No such file or directory");
}

}  // namespace
}  // namespace coord
