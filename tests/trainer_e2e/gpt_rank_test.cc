// The gpt-rank binary end to end: --help on every verb, exit codes, `plan` on the
// 10B/100B configs with the exact parameter count, config errors, a short training
// run on the Brown corpus (loss falls; Megatron's lines; metrics.jsonl; progress
// records on a pipe), the NaN stop, and preprocess + data-info (GPT-2's tokenizer and
// Qwen's tokenizer.json, through preprocess, training and generate).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <sstream>
#include <string>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::RunCommand;
using coord::testing::RunResult;
using coord::testing::TempDir;
using nlohmann::json;

// Megatron's count: tied wte (Vp, C), wpe (maxT, C), per layer 12 C^2 + 13 C, final LN.
uint64_t GptParams(uint64_t L, uint64_t C, uint64_t Vp, uint64_t maxT) {
  return Vp * C + maxT * C + L * (12 * C * C + 13 * C) + 2 * C;
}

TEST(GptRankCliTest, HelpOnEveryVerb) {
  for (const char* verb :
       {"train", "plan", "preprocess", "data-info", "generate", "export-hf", "import-hf"}) {
    RunResult r = RunCommand({GptRank(), verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb << ": " << r.err;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << verb << ": " << r.out;
  }
  RunResult top = RunCommand({GptRank(), "--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("data-info"), std::string::npos);
  EXPECT_EQ(RunCommand({GptRank()}).exit_code, 2);
  EXPECT_EQ(RunCommand({GptRank(), "trian"}).exit_code, 2);
  EXPECT_EQ(RunCommand({GptRank(), "train"}).exit_code, 2);  // --config is required
  EXPECT_EQ(RunCommand({GptRank(), "train", "--config", "x", "--bogus"}).exit_code, 2);
}

TEST(GptRankCliTest, Plan10BPrintsExactParameterCount) {
  for (const char* gpu : {"v100-32gb", "h100-80gb"}) {
    RunResult r = RunCommand({GptRank(), "plan", "--config",
                              std::string(COORD_SOURCE_DIR) + "/configs/10B.json", "--nodes", "8",
                              "--gpus-per-node", "8", "--gpu", gpu});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // tp 8 pads the vocabulary to a multiple of 128 * 8.
    const uint64_t n = GptParams(50, 4096, 51200, 1024);
    EXPECT_NE(r.out.find("parameters: " + std::to_string(n) + " "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tp 8 x pp 1 x dp 8, ZeRO stage 2, fp16"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("estimate_zero2_model_states_mem_needs"), std::string::npos);
    EXPECT_NE(r.out.find("verdict: fits"), std::string::npos) << r.out;
  }
}

TEST(GptRankCliTest, Plan100BOnEightNodesFitsAndJsonParses) {
  TempDir dir;
  const std::string hosts = dir.File("hosts.txt");
  {
    std::ofstream h(hosts);
    for (int i = 1; i <= 8; ++i) h << "node0" << i << " slots=8\n";
  }
  for (const char* gpu : {"v100-32gb", "h100-80gb"}) {
    RunResult r = RunCommand({GptRank(), "plan", "--config",
                              std::string(COORD_SOURCE_DIR) + "/configs/100B.json", "--hosts",
                              hosts, "--gpu", gpu, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["cluster"]["nodes"], 8);
    EXPECT_EQ(j["cluster"]["tp"], 8);
    EXPECT_EQ(j["cluster"]["dp"], 8);
    EXPECT_EQ(j["fits"]["all"], true);
    EXPECT_EQ(j["parameters"]["model"], GptParams(480, 4096, 51200, 1024));
    EXPECT_GT(j["time_s"]["total"].get<double>(), 0.0);
  }
}

// A ready config plans on the cluster its launch section names (launch.nnodes x
// nproc_per_node) and prints the training time for --train-tokens.
TEST(GptRankCliTest, PlanReadyPipelineConfigOnItsLaunchClusterWithTrainTokens) {
  const std::string cfg = std::string(COORD_SOURCE_DIR) + "/configs/gpt-1.3b-4xdp-4xpp.json";
  RunResult r = RunCommand(
      {GptRank(), "plan", "--config", cfg, "--gpu", "a100-40gb", "--train-tokens", "26e9", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["cluster"]["nodes"], 2);
  EXPECT_EQ(j["cluster"]["gpus_per_node"], 8);
  EXPECT_EQ(j["cluster"]["pp"], 4);
  EXPECT_EQ(j["cluster"]["dp"], 4);
  EXPECT_EQ(j["pipeline"]["stages_bytes"].size(), 4u);
  EXPECT_EQ(j["training"]["tokens"].get<double>(), 26e9);
  EXPECT_NEAR(j["training"]["seconds"].get<double>(),
              26e9 / j["time_s"]["tokens_per_s"].get<double>(), 1e-6);
  RunResult text = RunCommand({GptRank(), "plan", "--config", cfg, "--gpu", "a100-40gb",
                               "--train-tokens", "26e9"});
  ASSERT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("2 node(s) x 8 GPU(s) = 16 ranks"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("training time for 2.6e+10 tokens (--train-tokens): "), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("pipeline bubble"), std::string::npos) << text.out;
  RunResult bad = RunCommand({GptRank(), "plan", "--config", cfg, "--train-tokens", "0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--train-tokens: expected a token count"), std::string::npos) << bad.err;
}

TEST(GptRankCliTest, PlanThatDoesNotFitExits1AndNamesTheResource) {
  // One node: tp 8 leaves dp 1, so ZeRO-3 partitions nothing and each node's host holds
  // the whole optimizer.
  RunResult r = RunCommand({GptRank(), "plan", "--config",
                            std::string(COORD_SOURCE_DIR) + "/configs/100B.json", "--nodes", "1",
                            "--gpus-per-node", "8"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("host memory overflows"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("use more nodes"), std::string::npos) << r.out;
  RunResult bad = RunCommand({GptRank(), "plan", "--config",
                              std::string(COORD_SOURCE_DIR) + "/configs/100B.json", "--gpu", "k80"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--gpu k80: unknown GPU"), std::string::npos) << bad.err;
}

TEST(GptRankCliTest, ConfigErrorsExit2WithPathAndDidYouMean) {
  TempDir dir;
  json job = SmallJob(dir.path());
  job["model"]["seq_length"] = 64;
  job["training"]["train_iter"] = 3;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(cfg + ": model.seq_length: 64 is larger than "
                             "model.max_position_embeddings (32)"),
            std::string::npos)
      << r.err;
  // --set fixes the first; the unknown key is an error too (it would silently train
  // something else), with the did-you-mean.
  RunResult p = RunCommand({GptRank(), "plan", "--config", cfg, "--set", "model.seq_length=32"});
  EXPECT_EQ(p.exit_code, 2) << p.err;
  EXPECT_NE(p.err.find(cfg + ": training.train_iter: unknown key; did you mean train_iters?"),
            std::string::npos)
      << p.err;
  job["training"].erase("train_iter");
  WriteJob(cfg, job);
  // A half-set torch environment is named, as torch's env:// does.
  RunResult ws = RunCommand({GptRank(), "train", "--config", cfg, "--set", "model.seq_length=32"},
                            {{"WORLD_SIZE", "2"}, {"RANK", "0"}});
  EXPECT_EQ(ws.exit_code, 2);
  EXPECT_NE(ws.err.find("MASTER_ADDR is not set"), std::string::npos) << ws.err;
  RunResult missing = RunCommand({GptRank(), "train", "--config", dir.File("nope.json")});
  EXPECT_EQ(missing.exit_code, 2);
}

// A number beyond double range aborted `gpt-rank plan` (uncaught out_of_range); nesting
// without end could overflow the stack. Both are config errors (exit 2) now, and a vocab
// file with such a number is an unreadable vocab, not a crash.
TEST(GptRankCliTest, MalformedJsonIsAClearErrorNotACrash) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"x\": 1e400}", ":1:7: invalid JSON: the number 1e400 is out of range"},
      {"{\"model\":\n  {\"hidden_size\": -1e400}}", ":2:19: invalid JSON: the number -1e400"},
      {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string cfg = dir.File("bad" + std::to_string(i) + ".json");
    std::ofstream(cfg) << cases[i].first;
    RunResult r = RunCommand({GptRank(), "plan", "--config", cfg});
    EXPECT_EQ(r.exit_code, 2) << i << ": " << r.err;  // -1 would be a signal
    EXPECT_NE(r.err.find(cfg + cases[i].second), std::string::npos) << r.err;
  }
  // Bytes that are not UTF-8 are named where they are; a launch size that is not a count
  // is refused by key (the plan would otherwise be for one node).
  const std::string latin1 = dir.File("bad-utf8.json");
  std::ofstream(latin1) << "{\"model\": {\"name\": \"caf\xe9\"}}";
  RunResult utf8 = RunCommand({GptRank(), "plan", "--config", latin1});
  EXPECT_EQ(utf8.exit_code, 2) << utf8.err;
  EXPECT_NE(utf8.err.find(latin1 + ":1:25: invalid JSON: invalid string: ill-formed UTF-8"),
            std::string::npos)
      << utf8.err;
  json huge = SmallJob(dir.path());
  huge["launch"] = {{"nproc_per_node", 1e300}, {"nnodes", 1e300}};
  RunResult h = RunCommand({GptRank(), "plan", "--config", WriteJob(dir.File("huge.json"), huge)});
  EXPECT_EQ(h.exit_code, 2) << h.out << h.err;
  EXPECT_NE(h.err.find("huge.json: launch.nproc_per_node: expected an integer 1..1024, got 1e+300"),
            std::string::npos)
      << h.err;
  huge["launch"] = {{"nproc_per_node", 2}, {"nnodes", "1:200000"}};
  h = RunCommand({GptRank(), "plan", "--config", WriteJob(dir.File("huge.json"), huge)});
  EXPECT_EQ(h.exit_code, 2) << h.out << h.err;
  EXPECT_NE(
      h.err.find(R"(launch.nnodes: expected an integer 1..100000 or "MIN:MAX", got "1:200000")"),
      std::string::npos)
      << h.err;
  // A config path that is not UTF-8 (a Latin-1 file name) is printed, not thrown on.
  const std::string latin1_name = dir.File("job-caf\xe9.json");
  RunResult named = RunCommand(
      {GptRank(), "plan", "--json", "--config", WriteJob(latin1_name, SmallJob(dir.path()))});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  json printed = json::parse(named.out, nullptr, false);
  ASSERT_FALSE(printed.is_discarded()) << named.out;
  EXPECT_EQ(printed["config"], dir.File("job-caf\xef\xbf\xbd.json"));  // U+FFFD for the byte

  json job = SmallJob(dir.path());
  job["data"]["vocab_file"] = dir.File("vocab.json");
  std::ofstream(dir.File("vocab.json")) << "{\"a\": 1e400}";
  RunResult r = RunCommand({GptRank(), "plan", "--config", WriteJob(dir.File("job.json"), job)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GPT-2's 50257 (vocab file not readable here)"), std::string::npos) << r.out;
}

TEST(GptRankTrainTest, ShortRunLossFallsWithLogsMetricsAndProgress) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), SmallJob(dir.path()));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg},
                           {{"COORD_PROGRESS_FD", std::to_string(fds[1])}, {"RANK", "0"}, {"WORLD_SIZE", "1"}},
                           90000);
  close(fds[1]);
  std::string progress;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) progress.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string log = r.out + r.err;
  const std::regex line(
      R"( iteration +30/ +30 \| consumed samples: +240 \| )"
      R"(elapsed time per iteration \(ms\): [0-9.]+ \| learning rate: 3\.000E-04 \| )"
      R"(global batch size: +8 \| lm loss: [0-9]\.[0-9]{6}E\+00 \| grad norm: [0-9.]+ \| )"
      R"(number of skipped iterations: +0 \| number of nan iterations: +0 \| )"
      R"(tokens/s: [0-9.]+ \| TFLOP/s: [0-9.]+ \|)");
  EXPECT_TRUE(std::regex_search(log, line)) << log;
  EXPECT_NE(log.find("validation loss at iteration 10 | lm loss value: "), std::string::npos);
  EXPECT_NE(log.find("memory plan"), std::string::npos);
  EXPECT_NE(log.find(":0] "), std::string::npos) << "log tag [host:rank]";

  std::vector<json> metrics = ReadJsonLines(dir.File("save/metrics.jsonl"));
  std::vector<json> iters;
  for (const json& m : metrics) {
    if (!m.contains("event")) iters.push_back(m);
  }
  ASSERT_EQ(iters.size(), 30u);
  for (const char* key : {"iteration", "lm_loss", "lr", "grad_norm", "tokens_per_s"}) {
    EXPECT_TRUE(iters[0].contains(key)) << key;
  }
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += iters[i]["lm_loss"].get<double>() / 5;
    last += iters[25 + i]["lm_loss"].get<double>() / 5;
  }
  std::printf("[ figures ] loss: first 5 iterations %.4f, last 5 %.4f\n", first, last);
  EXPECT_GT(first, 10.0);  // ln(50257) = 10.8 at init
  EXPECT_LT(last, first - 1.5);

  std::vector<json> records;
  std::istringstream lines(progress);
  for (std::string l; std::getline(lines, l);) records.push_back(json::parse(l));
  // One record per iteration, and one more right after each of the 3 checkpoints, which
  // names it; from then on every record carries the newest checkpoint.
  ASSERT_EQ(records.size(), 33u) << progress;
  EXPECT_FALSE(records[0].contains("checkpoint"));
  EXPECT_EQ(records[10]["iteration"], 10);
  EXPECT_EQ(records[10]["checkpoint"], 10);
  EXPECT_EQ(records[11]["iteration"], 11);
  EXPECT_EQ(records[11]["checkpoint"], 10);
  EXPECT_EQ(records[32]["iteration"], 30);
  EXPECT_EQ(records[32]["checkpoint"], 30);
  EXPECT_DOUBLE_EQ(records[32]["loss"].get<double>(), iters[29]["lm_loss"].get<double>());
  EXPECT_TRUE(records[0]["time_ms"].is_number());

  EXPECT_EQ(coord::ReadFile(dir.File("save/latest_checkpointed_iteration.txt")).value(), "30\n");
  EXPECT_TRUE(coord::IsDirectory(dir.File("save/iter_0000010")));
}

TEST(GptRankTrainTest, NanLossStopsNamingTheIterationAndKeepsCheckpoint) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = SmallJob(dir.path());
  job["training"]["lr"] = 1e30;
  job["training"]["min_lr"] = 0.0;
  job["training"]["lr_warmup_iters"] = 0;
  job["training"]["save_interval"] = 1;
  job["training"]["train_iters"] = 20;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg}, {}, 90000);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(iteration ([0-9]+): lm loss is)")))
      << r.err;
  const int bad = std::stoi(m[1]);
  EXPECT_GE(bad, 2);
  char good[32];
  std::snprintf(good, sizeof(good), "iter_%07d", bad - 1);
  EXPECT_NE(r.err.find(std::string("last good checkpoint is ") + dir.File("save/") + good),
            std::string::npos)
      << r.err;
  EXPECT_EQ(coord::ReadFile(dir.File("save/latest_checkpointed_iteration.txt")).value(),
            std::to_string(bad - 1) + "\n");
}

// The optimizer and model buffers that do not fit the process's address space
// (RLIMIT_AS, set by util-linux's prlimit) are refused before anything is allocated,
// with the plan's figure and what to change; the same job trains with the limit lifted.
TEST(GptRankTrainTest, BuffersBeyondTheAddressSpaceAreRefusedWithThePlansFigure) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitized gpt-rank maps terabytes of shadow memory: no RLIMIT_AS fits it";
#endif
  TempDir dir;
  json job = SmallJob(dir.path());
  job["model"]["hidden_size"] = 512;  // ~50 M parameters: ~0.8 GiB of buffers
  job["model"]["num_attention_heads"] = 8;
  job["training"]["train_iters"] = 2;
  job["training"]["lr_warmup_iters"] = 1;
  job["training"]["lr_warmup_iters"] = 1;
  job["training"]["eval_iters"] = 0;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  // OpenBLAS's own thread pool spins in its start-up under a tight RLIMIT_AS (before
  // main); with one BLAS thread it does not start one. gpt-rank threads with OpenMP.
  const std::map<std::string, std::string> env = {{"OPENBLAS_NUM_THREADS", "1"}};
  RunResult r = RunCommand({"prlimit", "--as=1000000000", GptRank(), "train", "--config", cfg},
                           env, 60000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("RLIMIT_AS"), std::string::npos) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(need [0-9.]+ GiB by gpt-rank plan's count)")))
      << r.err;
  EXPECT_NE(r.err.find("micro_batch_size"), std::string::npos) << r.err;
  EXPECT_FALSE(coord::PathExists(dir.File("save/metrics.jsonl")));
  r = RunCommand({"prlimit", "--as=8000000000", GptRank(), "train", "--config", cfg}, env, 120000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(GptRankTrainTest, SigtermStopsCleanlyWithoutSaving) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = SmallJob(dir.path());
  job["training"]["train_iters"] = 100000;
  job["training"]["save_interval"] = 0;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  coord::testing::Process p;
  ASSERT_TRUE(p.Start({GptRank(), "train", "--config", cfg}, dir.File("train.log")));
  auto lines = [&] {
    const std::string text = coord::testing::ReadAll(dir.File("save/metrics.jsonl"));
    return std::count(text.begin(), text.end(), '\n');
  };
  coord::testing::WaitUntil([&] { return lines() >= 2 || !p.Alive(); }, 60000, /*poll_ms=*/20);
  const int status = p.Stop(20000);  // SIGTERM first
  ASSERT_TRUE(WIFEXITED(status)) << "killed, not exited: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 143);
  const std::string log = coord::testing::ReadAll(dir.File("train.log"));
  EXPECT_NE(log.find("stop requested during iteration"), std::string::npos) << log;
  EXPECT_FALSE(coord::PathExists(dir.File("save/latest_checkpointed_iteration.txt")));
}

TEST(GptRankDataTest, PreprocessThenDataInfo) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  {
    std::ifstream in(DataDir() + "/brown/brown.jsonl");
    std::ofstream out(dir.File("small.jsonl"));
    std::string l;
    for (int i = 0; i < 5 && std::getline(in, l); ++i) out << l << "\n";
  }
  RunResult p = RunCommand({GptRank(), "preprocess", "--input", dir.File("small.jsonl"),
                            "--output-prefix", dir.File("brown"), "--vocab-file",
                            DataDir() + "/gpt2/encoder.json", "--merge-file",
                            DataDir() + "/gpt2/vocab.bpe", "--append-eod", "--workers", "2"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("5 documents"), std::string::npos) << p.out;
  RunResult info = RunCommand({GptRank(), "data-info", "--data-path",
                               dir.File("brown_text_document"), "--docs", "1:2", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json j = json::parse(info.out);
  EXPECT_EQ(j["documents"], 5);
  EXPECT_EQ(j["dtype"], "uint16");
  ASSERT_EQ(j["chosen"].size(), 1u);
  EXPECT_EQ(j["chosen"][0]["tokens"].back(), 50256);  // --append-eod
  RunResult bad = RunCommand({GptRank(), "data-info", "--data-path", dir.File("nothing")});
  EXPECT_EQ(bad.exit_code, 2);
  RunResult past = RunCommand({GptRank(), "data-info", "--data-path",
                               dir.File("brown_text_document"), "--docs", "9:10"});
  EXPECT_EQ(past.exit_code, 2);
}

// Qwen's tokenizer.json the way Megatron's flags and a job name it: preprocess writes
// int32 tokens ending in <|endoftext|>, data-info decodes them back to the text, a job
// with data.tokenizer_file trains on them, and generate finds the tokenizer in the
// checkpoint's config (there are no GPT-2 files in it).
TEST(GptRankDataTest, QwenTokenizerThroughPreprocessTrainAndGenerate) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  const std::string qwen = DataDir() + "/qwen3";
  if (!coord::PathExists(qwen + "/tokenizer.json")) GTEST_SKIP() << qwen << " missing";
  TempDir dir;
  std::vector<std::string> texts;
  {
    std::ifstream in(DataDir() + "/brown/brown.jsonl");
    std::ofstream out(dir.File("small.jsonl"));
    std::string l;
    for (int i = 0; i < 5 && std::getline(in, l); ++i) {
      out << l << "\n";
      texts.push_back(json::parse(l)["text"]);
    }
  }
  RunResult p = RunCommand({GptRank(), "preprocess", "--input", dir.File("small.jsonl"),
                            "--output-prefix", dir.File("qwen"), "--tokenizer-type",
                            "HuggingFaceTokenizer", "--tokenizer-model", qwen, "--append-eod"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("5 documents"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("(int32)"), std::string::npos) << p.out;
  RunResult info =
      RunCommand({GptRank(), "data-info", "--data-path", dir.File("qwen_text_document"), "--docs",
                  "1", "--json", "--tokenizer-model", qwen + "/tokenizer.json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json j = json::parse(info.out);
  EXPECT_EQ(j["dtype"], "int32");
  EXPECT_EQ(j["chosen"][0]["tokens"].back(), 151643);  // <|endoftext|>
  EXPECT_EQ(j["chosen"][0]["text"], texts[1] + "<|endoftext|>");
  RunResult both = RunCommand({GptRank(), "preprocess", "--input", dir.File("small.jsonl"),
                               "--output-prefix", dir.File("x"), "--tokenizer-model", qwen,
                               "--vocab-file", "v.json", "--merge-file", "m.txt"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;

  json job = SmallJob(dir.path());
  job["data"].erase("vocab_file");
  job["data"].erase("merge_file");
  job["data"]["tokenizer_file"] = qwen + "/tokenizer.json";
  job["data"]["train_data"] = dir.File("small.jsonl");
  job["data"]["cache_dir"] = dir.File("cache");
  job["training"]["train_iters"] = 2;
  job["training"]["lr_warmup_iters"] = 1;
  job["training"]["save_interval"] = 2;
  job["training"]["eval_iters"] = 0;
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RunResult train = RunCommand({GptRank(), "train", "--config", cfg},
                               {{"RANK", "0"}, {"WORLD_SIZE", "1"}}, 300000);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  std::vector<json> iters;
  for (const json& m : ReadJsonLines(dir.File("save/metrics.jsonl"))) {
    if (!m.contains("event")) iters.push_back(m);
  }
  ASSERT_EQ(iters.size(), 2u);
  EXPECT_GT(iters[0]["lm_loss"].get<double>(), 11.0);  // ln(151669) = 11.9 at init
  RunResult gen = RunCommand({GptRank(), "generate", "--load", dir.File("save"), "--prompt",
                              "The jury said", "--max-tokens", "4", "--temperature", "0"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(gen.out.rfind("The jury said", 0), 0u) << gen.out;
}

}  // namespace
}  // namespace gpt_rank::e2e
