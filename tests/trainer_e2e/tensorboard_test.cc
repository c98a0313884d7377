// TensorBoard event files of real gpt-rank runs on the demo data, read back by readers
// that share no code with the writer: tests/trainer_e2e/read_tfevents.py (its own
// bitwise CRC-32C; Debian's python3-protobuf over classes protoc compiles from
// proto/tensorboard) and the npm `tfrecord` package's RecordReader (fast-crc32c's
// JavaScript CRC). Every Megatron tag is there with metrics.jsonl's values at the same
// iterations; a run killed after a checkpoint leaves a whole file and its resume adds
// a new one; an unwritable tensorboard_dir stops 1 and 2 ranks before training; a disk
// that fills leaves training going, one warning and no torn record.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/trainer_e2e/e2e_util.h"

namespace gpt_rank::e2e {
namespace {

using coord::testing::Process;
using coord::testing::RunCommand;
using coord::testing::RunResult;
using coord::testing::TempDir;
using nlohmann::json;

const std::string kSource = COORD_SOURCE_DIR;

struct TbEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version, writer, tag;
  float value = 0;
  std::string record;  // hex
};

// The event files in `dir`, oldest first (TensorBoard's order: by name).
std::vector<std::string> EventFiles(const std::string& dir) {
  std::vector<std::string> out;
  auto names = coord::ListDir(dir);
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    if (n.rfind("events.out.tfevents.", 0) == 0) out.push_back(coord::JoinPath(dir, n));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<TbEvent> ReadWithPython(const std::string& file) {
  RunResult r = RunCommand(
      {"/usr/bin/python3", kSource + "/tests/trainer_e2e/read_tfevents.py", kSource + "/proto", file},
      {}, 60000);
  EXPECT_EQ(r.exit_code, 0) << "read_tfevents.py (needs python3-protobuf, protoc): " << r.err;
  std::vector<TbEvent> out;
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) {
    const json j = json::parse(l);
    TbEvent e;
    e.wall_time = j["wall_time"].get<double>();
    e.step = j["step"].get<int64_t>();
    e.file_version = j.value("file_version", "");
    e.writer = j.value("writer", "");
    e.tag = j.value("tag", "");
    e.value = static_cast<float>(j.value("value", 0.0));
    e.record = j["record"].get<std::string>();
    out.push_back(e);
  }
  return out;
}

// tag -> (step, value) in file order.
std::map<std::string, std::vector<std::pair<int64_t, float>>> Series(
    const std::vector<TbEvent>& events) {
  std::map<std::string, std::vector<std::pair<int64_t, float>>> out;
  for (const TbEvent& e : events) {
    if (!e.tag.empty()) out[e.tag].push_back({e.step, e.value});
  }
  return out;
}

const std::set<std::string> kTrainingTags = {"learning-rate", "batch-size", "lm loss",
                                             "loss-scale",    "world-size", "grad-norm"};

// Checks one event file against the metrics.jsonl lines of the run that wrote it.
// `killed`: the run was SIGKILLed, so its last iteration may lack the log-line tags
// (written after the metrics line) and one more iteration may have its training tags.
void ExpectMatchesMetrics(const std::vector<TbEvent>& events, const std::vector<json>& metrics,
                          bool killed, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[0].writer, "gpt-rank");
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_TRUE(events[i].file_version.empty()) << "file_version only first";
    EXPECT_GE(events[i].wall_time, events[i - 1].wall_time);
  }
  auto series = Series(events);
  // (step, value) of a tag at one step; NaN when absent or repeated.
  auto at = [&series](const std::string& tag, int64_t step) {
    float v = std::nanf("");
    int seen = 0;
    for (const auto& [s, x] : series[tag]) {
      if (s == step) v = x, ++seen;
    }
    return seen == 1 ? v : std::nanf("");
  };
  std::vector<json> iters, validations;
  for (const json& m : metrics) (m.contains("event") ? validations : iters).push_back(m);
  ASSERT_FALSE(iters.empty());
  std::map<int64_t, int64_t> samples_at;  // iteration -> consumed samples
  const int64_t last = iters.back()["iteration"].get<int64_t>();
  for (const json& m : iters) {
    const int64_t it = m["iteration"].get<int64_t>(), n = m["consumed_samples"].get<int64_t>();
    samples_at[it] = n;
    const std::map<std::string, double> want = {
        {"learning-rate", m["lr"].get<double>()},
        {"batch-size", m["global_batch_size"].get<double>()},
        {"lm loss", m["lm_loss"].get<double>()},
        {"loss-scale", m.value("loss_scale", 1.0)},
        {"world-size", 1.0},
        {"grad-norm", m["grad_norm"].get<double>()}};
    for (const auto& [tag, v] : want) {
      EXPECT_EQ(at(tag, it), static_cast<float>(v)) << tag << " at iteration " << it;
      EXPECT_EQ(at(tag + " vs samples", n), static_cast<float>(v)) << tag << " vs samples " << n;
    }
    if (killed && it == last) continue;
    EXPECT_EQ(at("iteration-time", it), static_cast<float>(m["elapsed_ms"].get<double>() / 1000.0))
        << "iteration " << it;
    EXPECT_EQ(at("throughput", it), static_cast<float>(m["tflops"].get<double>()))
        << "iteration " << it;
  }
  std::set<int64_t> tb_iters, want_iters;
  for (const auto& [s, _] : series["lm loss"]) tb_iters.insert(s);
  for (const json& m : iters) want_iters.insert(m["iteration"].get<int64_t>());
  if (killed) tb_iters.erase(last + 1);
  EXPECT_EQ(tb_iters, want_iters) << "lm loss steps";

  // Validation: in order, as metrics.jsonl has them (the last evaluation may repeat
  // the last interval's iteration, as Megatron's does).
  const auto& v = series["lm loss validation"];
  const auto& ppl = series["lm loss validation ppl"];
  const auto& v_samples = series["lm loss validation vs samples"];
  const auto& ppl_samples = series["lm loss validation ppl vs samples"];
  ASSERT_EQ(v.size(), validations.size());
  ASSERT_EQ(ppl.size(), validations.size());
  ASSERT_EQ(v_samples.size(), validations.size());
  ASSERT_EQ(ppl_samples.size(), validations.size());
  for (size_t i = 0; i < validations.size(); ++i) {
    const json& m = validations[i];
    const int64_t it = m["iteration"].get<int64_t>();
    EXPECT_EQ(v[i].first, it);
    EXPECT_EQ(v[i].second, static_cast<float>(m["lm_loss"].get<double>()));
    EXPECT_EQ(ppl[i].first, it);
    EXPECT_EQ(ppl[i].second, static_cast<float>(m["ppl"].get<double>()));
    ASSERT_TRUE(samples_at.count(it)) << "validation at iteration " << it;
    EXPECT_EQ(v_samples[i].first, samples_at[it]);
    EXPECT_EQ(ppl_samples[i].first, samples_at[it]);
    EXPECT_EQ(v_samples[i].second, v[i].second);
    EXPECT_EQ(ppl_samples[i].second, ppl[i].second);
  }
}

std::set<std::string> AllTags() {
  std::set<std::string> tags;
  for (const std::string& t : kTrainingTags) tags.insert({t, t + " vs samples"});
  for (const char* t : {"iteration-time", "throughput", "lm loss validation",
                        "lm loss validation vs samples", "lm loss validation ppl",
                        "lm loss validation ppl vs samples"}) {
    tags.insert(t);
  }
  return tags;
}

json ShortJob(const std::string& dir, int iters) {
  json job = SmallJob(dir);
  job["training"]["train_iters"] = iters;
  job["training"]["eval_interval"] = 5;
  job["training"]["save_interval"] = 0;
  return job;
}

TEST(GptRankTensorBoardTest, EventFileHasEveryTagWithTheMetricsValues) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), ShortJob(dir.path(), 10));
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg}, {}, 90000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> files = EventFiles(dir.File("save/tensorboard"));
  ASSERT_EQ(files.size(), 1u);
  const std::vector<TbEvent> events = ReadWithPython(files[0]);
  std::set<std::string> tags;
  for (const TbEvent& e : events) {
    if (!e.tag.empty()) tags.insert(e.tag);
  }
  EXPECT_EQ(tags, AllTags());
  const std::vector<json> metrics = ReadJsonLines(dir.File("save/metrics.jsonl"));
  ExpectMatchesMetrics(events, metrics, false, files[0]);
  // 10 iterations x 12 training + 2 log-line tags, 3 evaluations x 4, the version.
  EXPECT_EQ(events.size(), 10u * 14 + 3 * 4 + 1);
  std::printf("[ figures ] %zu events, %zu bytes in %s\n", events.size(),
              coord::ReadFile(files[0])->size(), files[0].c_str());
}

TEST(GptRankTensorBoardTest, NpmTfrecordReaderReadsEveryRecord) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  const std::string reader = DataDir() + "/tfrecord-reader";
  if (!coord::PathExists(reader + "/node_modules/tfrecord/lib/record_reader.js")) {
    GTEST_SKIP() << reader << " missing (scripts/fetch-tfrecord-reader.sh needs npm)";
  }
  TempDir dir;
  json job = ShortJob(dir.path(), 6);
  job["training"]["tensorboard_dir"] = dir.File("tb");  // given explicitly
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg}, {}, 90000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(EventFiles(dir.File("save/tensorboard")).empty());
  const std::vector<std::string> files = EventFiles(dir.File("tb"));
  ASSERT_EQ(files.size(), 1u);
  RunResult node = RunCommand(
      {"node", kSource + "/tests/trainer_e2e/read_tfrecord.js", reader, files[0]}, {}, 60000);
  ASSERT_EQ(node.exit_code, 0) << node.err;
  std::vector<std::string> npm_records;
  std::istringstream lines(node.out);
  for (std::string l; std::getline(lines, l);) npm_records.push_back(l);
  std::vector<std::string> py_records;
  for (const TbEvent& e : ReadWithPython(files[0])) py_records.push_back(e.record);
  EXPECT_EQ(npm_records.size(), 6u * 14 + 2 * 4 + 1);
  EXPECT_EQ(npm_records, py_records);

  // A byte flipped inside a record's data: both readers refuse the file.
  std::string bytes = *coord::ReadFile(files[0]);
  bytes[20] = static_cast<char>(bytes[20] ^ 0x01);
  ASSERT_TRUE(coord::WriteFileAtomic(dir.File("flipped"), bytes).ok());
  node = RunCommand({"node", kSource + "/tests/trainer_e2e/read_tfrecord.js", reader,
                     dir.File("flipped")}, {}, 60000);
  EXPECT_NE(node.exit_code, 0);
  EXPECT_NE(node.err.find("CRC32C"), std::string::npos) << node.err;
  RunResult py = RunCommand({"/usr/bin/python3", kSource + "/tests/trainer_e2e/read_tfevents.py",
                             kSource + "/proto", dir.File("flipped")}, {}, 60000);
  EXPECT_NE(py.exit_code, 0);
  EXPECT_NE(py.err.find("bad data CRC at byte 0"), std::string::npos) << py.err;
}

TEST(GptRankTensorBoardTest, KilledRunLeavesAWholeFileAndTheResumeAddsANewOne) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  json job = ShortJob(dir.path(), 10);
  job["training"]["save_interval"] = 5;
  job["training"]["load"] = dir.File("save");
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  {
    Process p;
    ASSERT_TRUE(p.Start({GptRank(), "train", "--config", cfg}, dir.File("run1.log")));
    const std::string latest = dir.File("save/latest_checkpointed_iteration.txt");
    coord::testing::WaitUntil(
        [&] { return coord::testing::ReadAll(latest) == "5\n" || !p.Alive(); }, 60000);
    ASSERT_EQ(coord::testing::ReadAll(latest), "5\n")
        << coord::testing::ReadAll(dir.File("run1.log"));
    p.Crash();  // SIGKILL: no destructor, no flush
  }
  std::vector<std::string> files = EventFiles(dir.File("save/tensorboard"));
  ASSERT_EQ(files.size(), 1u);
  const std::string killed_bytes = *coord::ReadFile(files[0]);
  const std::vector<json> run1 = ReadJsonLines(dir.File("save/metrics.jsonl"));

  RunResult r = RunCommand({GptRank(), "train", "--config", cfg}, {}, 90000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  files = EventFiles(dir.File("save/tensorboard"));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(*coord::ReadFile(files[0]), killed_bytes) << "the killed run's file was rewritten";
  std::vector<json> all = ReadJsonLines(dir.File("save/metrics.jsonl"));
  ASSERT_GT(all.size(), run1.size());
  const std::vector<json> run2(all.begin() + static_cast<long>(run1.size()), all.end());

  ExpectMatchesMetrics(ReadWithPython(files[0]), run1, true, "killed run");
  const std::vector<TbEvent> resumed = ReadWithPython(files[1]);
  ExpectMatchesMetrics(resumed, run2, false, "resumed run");
  std::set<int64_t> steps;
  const auto series = Series(resumed);  // (a temporary's member would dangle in the loop)
  for (const auto& [s, _] : series.at("lm loss")) steps.insert(s);
  EXPECT_EQ(steps, (std::set<int64_t>{6, 7, 8, 9, 10}));
}

TEST(GptRankTensorBoardTest, UnwritableDirStopsEveryRankBeforeTraining) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  std::ofstream(dir.File("file")) << "a file where the folder would go";
  json job = ShortJob(dir.path(), 4);
  job["training"]["tensorboard_dir"] = dir.File("file/tb");
  const std::string cfg = WriteJob(dir.File("job.json"), job);
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg}, {}, 60000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const std::string log = r.out + r.err;
  EXPECT_NE(log.find("training.tensorboard_dir " + dir.File("file/tb") + " is not writable"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("training from iteration"), std::string::npos) << log;
  EXPECT_FALSE(coord::PathExists(dir.File("save/metrics.jsonl")));

  // Two ranks: rank 0 names the directory, rank 1 names rank 0; neither trains.
  RanksResult two = RunRanks(dir, "two", 2, cfg, {"parallel.collective_timeout_s=60"}, 60000);
  ASSERT_EQ(two.status.size(), 2u);
  for (int rank = 0; rank < 2; ++rank) {
    const int st = two.status[static_cast<size_t>(rank)];
    EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0)
        << "rank " << rank << ": " << two.logs[static_cast<size_t>(rank)];
    EXPECT_EQ(two.logs[static_cast<size_t>(rank)].find("training from iteration"),
              std::string::npos);
  }
  EXPECT_NE(two.logs[0].find(dir.File("file/tb") + " is not writable"), std::string::npos)
      << two.logs[0];
  EXPECT_NE(two.logs[1].find("opening training.tensorboard_dir failed on rank 0"),
            std::string::npos)
      << two.logs[1];
}

TEST(GptRankTensorBoardTest, FullDiskWarnsOnceAndTrainingGoesOn) {
  if (std::string why = MissingData(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  const std::string cfg = WriteJob(dir.File("job.json"), ShortJob(dir.path(), 10));
  // Room for the version record and a few iterations; then a write lands half its
  // bytes and fails with ENOSPC, as does every write after it.
  RunResult r = RunCommand({GptRank(), "train", "--config", cfg},
                           {{"GPT_RANK_INJECT_EVENT_WRITE_FAULT", "2500"}}, 90000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string log = r.out + r.err;
  const size_t warn = log.find("tensorboard: write ");
  ASSERT_NE(warn, std::string::npos) << log;
  EXPECT_NE(log.find("No space left on device", warn), std::string::npos) << log;
  EXPECT_EQ(log.find("tensorboard:", warn + 1), std::string::npos) << "warned twice:\n" << log;
  EXPECT_NE(log.find("training done at iteration 10"), std::string::npos);

  const std::vector<json> metrics = ReadJsonLines(dir.File("save/metrics.jsonl"));
  int iteration_lines = 0;
  for (const json& m : metrics) iteration_lines += m.contains("event") ? 0 : 1;
  EXPECT_EQ(iteration_lines, 10);  // metrics.jsonl is another file: untouched
  const std::vector<std::string> files = EventFiles(dir.File("save/tensorboard"));
  ASSERT_EQ(files.size(), 1u);
  EXPECT_LE(coord::ReadFile(files[0])->size(), 2500u);
  const std::vector<TbEvent> events = ReadWithPython(files[0]);  // exits 1 on a torn record
  std::set<int64_t> steps;
  const auto series = Series(events);
  for (const auto& [s, _] : series.at("lm loss")) steps.insert(s);
  ASSERT_FALSE(steps.empty());
  EXPECT_LT(steps.size(), 10u);
  EXPECT_EQ(*steps.rbegin(), static_cast<int64_t>(steps.size())) << "a prefix of iterations";
}

}  // namespace
}  // namespace gpt_rank::e2e
