// Megatron-layout checkpoints: bitwise round trip, crash leftovers ignored, corrupt /
// truncated / wrong-size checkpoints refused by name with fallback to the previous
// one, unwritable directories and full disks (real tmpfs and injected ENOSPC).
#include "trainer/checkpoint/megatron_checkpoint.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tmpfs_mount.h"
#include "tests/unit/trainer_checkpoint/test_util.h"

namespace trainer {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using testing::FlipByte;

struct Fixture {
  std::vector<float> p, m, v;  // (n,) each
  TrainState state;
  explicit Fixture(size_t n, int64_t iteration, uint32_t seed = 1) : p(n), m(n), v(n) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> d;
    for (size_t i = 0; i < n; ++i) p[i] = d(gen), m[i] = d(gen), v[i] = std::abs(d(gen));
    state.iteration = iteration;
    state.consumed_train_samples = iteration * 8;
    state.consumed_valid_samples = 77;
    state.rng_step = iteration * 2 + 1;
    state.seed = 0xFFFFFFFFFFFFFFF1ull;  // > int64 max: survives JSON as unsigned
    state.adam_step = iteration;
    state.config_json = "{\"model\": {\"num_layers\": 2}, \"note\": \"\\u00e9 \\\"q\\\"\"}";
  }
  CheckpointTensors tensors() const { return {p.data(), m.data(), v.data(), p.size()}; }
};

std::string TensorFile(const std::string& dir, int64_t it) {
  return CheckpointIterDir(dir, it) + "/mp_rank_00/model_optim_rng.bin";
}

TEST(Xxh64Test, KnownVectors) {
  EXPECT_EQ(Xxh64("", 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(Xxh64("abc", 3), 0x44BC2CF5AD770999ull);
}

TEST(MegatronCheckpointTest, RoundTripIsBitwise) {
  TempDir dir;
  Fixture f(1237, 100);
  ASSERT_TRUE(SaveCheckpoint(dir.path(), f.state, f.tensors()).ok());
  EXPECT_EQ(*coord::ReadFile(dir.File(kLatestIterationFile)), "100\n");
  EXPECT_TRUE(coord::IsDirectory(dir.File("iter_0000100/mp_rank_00")));
  EXPECT_TRUE(HasCheckpoint(dir.path()));
  auto loaded = LoadLatestCheckpoint(dir.path(), f.p.size());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(loaded->warnings.empty());
  EXPECT_EQ(loaded->path, CheckpointIterDir(dir.path(), 100));
  EXPECT_EQ(0, std::memcmp(loaded->params.data(), f.p.data(), f.p.size() * 4));
  EXPECT_EQ(0, std::memcmp(loaded->adam_m.data(), f.m.data(), f.m.size() * 4));
  EXPECT_EQ(0, std::memcmp(loaded->adam_v.data(), f.v.data(), f.v.size() * 4));
  const TrainState& s = loaded->state;
  EXPECT_EQ(s.iteration, 100);
  EXPECT_EQ(s.consumed_train_samples, 800);
  EXPECT_EQ(s.consumed_valid_samples, 77);
  EXPECT_EQ(s.rng_step, 201);
  EXPECT_EQ(s.seed, f.state.seed);
  EXPECT_EQ(s.adam_step, 100);
  EXPECT_EQ(s.config_json, f.state.config_json);
}

TEST(MegatronCheckpointTest, ResavingTheSameIterationReplacesIt) {
  TempDir dir;
  Fixture a(100, 5, 1), b(100, 5, 2);
  ASSERT_TRUE(SaveCheckpoint(dir.path(), a.state, a.tensors()).ok());
  ASSERT_TRUE(SaveCheckpoint(dir.path(), b.state, b.tensors()).ok());
  auto loaded = LoadLatestCheckpoint(dir.path(), 100);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->params, b.p);
  EXPECT_EQ(coord::ListDir(dir.path())->size(), 2u);  // iter_0000005 + tracker, no leftovers
}

TEST(MegatronCheckpointTest, NoCheckpoint) {
  TempDir dir;
  EXPECT_FALSE(HasCheckpoint(dir.path()));
  auto loaded = LoadLatestCheckpoint(dir.path(), 10);
  EXPECT_EQ(loaded.status().code(), coord::StatusCode::kNotFound);
}

// A kill during a save leaves a temporary directory, or an iteration directory whose
// manifest never got written, and the tracker still names the previous iteration.
TEST(MegatronCheckpointTest, CrashLeftoversAreIgnored) {
  TempDir dir;
  Fixture f(300, 10);
  ASSERT_TRUE(SaveCheckpoint(dir.path(), f.state, f.tensors()).ok());
  ASSERT_TRUE(coord::MakeDirs(dir.File("iter_0000020.tmp-999/mp_rank_00")).ok());
  WriteTextFile(dir.File("iter_0000020.tmp-999/mp_rank_00/model_optim_rng.bin"), "GPTRCKPT half");
  ASSERT_TRUE(coord::MakeDirs(dir.File("iter_0000030/mp_rank_00")).ok());
  WriteTextFile(dir.File("iter_0000030/mp_rank_00/model_optim_rng.bin"), "GPTRCKPT half");
  auto loaded = LoadLatestCheckpoint(dir.path(), 300);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->state.iteration, 10);
  EXPECT_TRUE(loaded->warnings.empty());  // newer than the tracker: never even tried

  // A tracker naming the incomplete one (should not happen, but e.g. copied by hand).
  WriteTextFile(dir.File(kLatestIterationFile), "30\n");
  loaded = LoadLatestCheckpoint(dir.path(), 300);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->state.iteration, 10);
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_NE(loaded->warnings[0].find("iter_0000030 refused"), std::string::npos);
  EXPECT_NE(loaded->warnings[0].find("incomplete"), std::string::npos);
  EXPECT_NE(loaded->warnings[0].find("using " + CheckpointIterDir(dir.path(), 10)),
            std::string::npos);

  // No tracker at all (first save killed before it): newest complete, with a warning.
  ASSERT_EQ(unlink(dir.File(kLatestIterationFile).c_str()), 0);
  EXPECT_TRUE(HasCheckpoint(dir.path()));
  loaded = LoadLatestCheckpoint(dir.path(), 300);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->state.iteration, 10);
  EXPECT_FALSE(loaded->warnings.empty());
}

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SaveCheckpoint(dir_.path(), older_.state, older_.tensors()).ok());
    ASSERT_TRUE(SaveCheckpoint(dir_.path(), newer_.state, newer_.tensors()).ok());
  }
  // Loads latest and checks it fell back to iteration 10 with a warning naming both
  // iterations and `reason`.
  void ExpectFallback(const std::string& reason, size_t n = 500) {
    auto loaded = LoadLatestCheckpoint(dir_.path(), n);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->state.iteration, 10);
    EXPECT_EQ(loaded->params, older_.p);
    ASSERT_EQ(loaded->warnings.size(), 1u);
    const std::string& w = loaded->warnings[0];
    EXPECT_NE(w.find("iter_0000020"), std::string::npos) << w;
    EXPECT_NE(w.find("iter_0000010"), std::string::npos) << w;
    EXPECT_NE(w.find(reason), std::string::npos) << w;
  }
  TempDir dir_;
  Fixture older_{500, 10, 1}, newer_{500, 20, 2};
};

TEST_F(CorruptionTest, FlippedPayloadByte) {
  FlipByte(TensorFile(dir_.path(), 20), 64 + 4 * 700);
  ExpectFallback("model_optim_rng.bin: checksum mismatch");
  auto direct = LoadCheckpoint(CheckpointIterDir(dir_.path(), 20), 500);
  EXPECT_EQ(direct.status().code(), coord::StatusCode::kFailedPrecondition);
}

TEST_F(CorruptionTest, FlippedHeaderByte) {
  FlipByte(TensorFile(dir_.path(), 20), 2);
  ExpectFallback("bad magic");
}

TEST_F(CorruptionTest, FlippedStateByte) {
  FlipByte(CheckpointIterDir(dir_.path(), 20) + "/mp_rank_00/train_state.json", 20);
  ExpectFallback("train_state.json: checksum mismatch");
}

TEST_F(CorruptionTest, Truncated) {
  ASSERT_EQ(truncate(TensorFile(dir_.path(), 20).c_str(), 64 + 4 * 600), 0);
  ExpectFallback("truncated");
}

TEST_F(CorruptionTest, WrongParameterCountRefusesBoth) {
  auto loaded = LoadLatestCheckpoint(dir_.path(), 501);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), coord::StatusCode::kNotFound);
  const std::string& msg = loaded.status().message();
  EXPECT_NE(msg.find("iter_0000020 refused"), std::string::npos) << msg;
  EXPECT_NE(msg.find("iter_0000010 refused"), std::string::npos) << msg;
  EXPECT_NE(msg.find("holds 500 parameters, the model has 501"), std::string::npos) << msg;
}

// What tests/fuzz/checkpoint_manifest_fuzz.cc writes: manifests with fields of the wrong
// type (value() threw out of the loader) and states with numbers that do not fit (1e300
// became an int64 with undefined behaviour). Each is an error naming the file.
TEST(MegatronCheckpointTest, MalformedManifestsAndStatesAreErrorsNamingTheFile) {
  TempDir dir;
  const std::string iter_dir = dir.File("iter_0000010");
  const std::string manifest = iter_dir + "/mp_rank_00/manifest.json";
  const std::string state_path = iter_dir + "/mp_rank_00/train_state.json";
  ASSERT_TRUE(coord::MakeDirs(iter_dir + "/mp_rank_00").ok());
  auto load_error = [&](const std::string& manifest_text) {
    WriteTextFile(manifest, manifest_text);
    auto state = LoadCheckpointState(iter_dir, ModelShardId());
    EXPECT_FALSE(state.ok()) << manifest_text;
    return state.ok() ? std::string() : state.status().message();
  };
  for (const char* bad : {R"({"format": 1, "files": []})",
                          R"({"format": "gpt-rank-checkpoint", "version": "1", "files": []})",
                          R"({"format": "gpt-rank-checkpoint", "version": -1, "files": []})"}) {
    EXPECT_NE(load_error(bad).find(manifest), std::string::npos) << bad;
  }
  // A manifest that lists the state right, and a state with an out-of-range number.
  auto with_state = [&](const std::string& state) {
    WriteTextFile(state_path, state);
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx",
             static_cast<unsigned long long>(Xxh64(state.data(), state.size())));
    return load_error(R"({"format": "gpt-rank-checkpoint", "version": 1, "n": 0, "files": [)"
                      R"({"name": "model_optim_rng.bin", "size": 0, "xxh64": "0"},)"
                      R"({"name": "train_state.json", "size": )" +
                      std::to_string(state.size()) + R"(, "xxh64": ")" + hash + "\"}]}");
  };
  const std::string fields =
      R"("consumed_train_samples": 0, "consumed_valid_samples": 0, "rng_step": 0, )"
      R"("seed": 1, "adam_step": 0, "config_json": "{}")";
  std::string why = with_state(R"({"iteration": 1e300, )" + fields + "}");
  EXPECT_NE(why.find(state_path), std::string::npos) << why;
  EXPECT_NE(why.find("1e+300 does not fit int64"), std::string::npos) << why;
  why = with_state(R"({"iteration": 1, "vocab_size": 1e19, )" + fields + "}");
  EXPECT_NE(why.find("does not fit int32"), std::string::npos) << why;
  why = with_state(R"({"iteration": 1, "tensor_model_parallel_size": 4294967297, )" + fields + "}");
  EXPECT_NE(why.find("does not fit int32"), std::string::npos) << why;
  // The field is named by its JSON path; the parser's own errors by line:column.
  const std::vector<std::pair<std::string, std::string>> states = {
      {R"({"iteration": 1e300, )" + fields + "}", "bad field iteration: the number 1e+300"},
      {R"({"iteration": "1", )" + fields + "}", "bad field iteration: type must be number"},
      {R"({"iteration": 1, "vocab_size": 1e19, )" + fields + "}",
       "bad field vocab_size: the number 1e+19 does not fit int32"},
      {R"({"iteration": 1, "loss_scaler": {"scale": 1, "iter": 1, "last_overflow_iter": 1,)"
       R"( "hysteresis_left": 4294967296}, )" +
           fields + "}",
       "bad field loss_scaler.hysteresis_left: the number 4294967296 does not fit int32"},
      {R"({"iteration": 1, "loss_scaler": {"scale": 1}, )" + fields + "}",
       "bad field loss_scaler.iter: key 'iter' not found"},
      {R"({"iteration": 1e400, )" + fields + "}",
       ":1:15: invalid JSON: the number 1e400 is out of range"},
      {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper than 64"},
      {"{\"iteration\": 1, \"x\": \"\xff\", " + fields + "}",
       ":1:24: invalid JSON: invalid string: ill-formed UTF-8 byte"},
  };
  for (const auto& [text, says] : states) {
    why = with_state(text);
    EXPECT_NE(why.find(state_path + (says[0] == ':' ? "" : ": ") + says), std::string::npos) << why;
  }
  // Manifests: the entry that is wrong, by index; 1e400, nesting and UTF-8 by position.
  for (const auto& [text, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"format": "gpt-rank-checkpoint", "version": 1, "files": [{"name": "a"}]})",
            ": malformed file entry files[0]"},
           {R"({"format": "gpt-rank-checkpoint", "version": 1e300, "files": []})",
            ": unsupported manifest version 1e+300"},
           {R"({"format": "gpt-rank-checkpoint", "version": 1, "files": [)"
            R"({"name": "model_optim_rng.bin", "size": 0, "xxh64": "0"},)"
            R"({"name": "train_state.json", "size": 0, "xxh64": "0"}], "n": "x",)"
            R"( "zero_shards": []})",
            ": n: expected an integer >= 0, got \"x\""},
           {R"({"format": "gpt-rank-checkpoint", "version": 1, "files": [)"
            R"({"name": "model_optim_rng.bin", "size": 0, "xxh64": "0"},)"
            R"({"name": "train_state.json", "size": 0, "xxh64": "0"}], "n": 1,)"
            R"( "zero_shards": [{"file": "a", "begin": -1, "end": 1}]})",
            ": malformed zero_shards entry zero_shards[0]"},
           {R"({"format": "gpt-rank-checkpoint", "version": 1e400})",
            ":1:46: invalid JSON: the number 1e400"},
           {std::string(100000, '['), ":1:65: invalid JSON: arrays/objects nested deeper"},
           {"{\"format\": \"gpt-rank-checkpoint\xfe\"}", ":1:32: invalid JSON: invalid string"},
       }) {
    why = load_error(text);
    EXPECT_NE(why.find(manifest + says), std::string::npos) << why;
  }
}

TEST(MegatronCheckpointTest, UnwritableDirectoryIsNamed) {
  TempDir dir;
  WriteTextFile(dir.File("file"), "x");
  Fixture f(10, 1);
  const std::string bad = dir.File("file/ckpt");  // a regular file on the way: even root fails
  coord::Status st = SaveCheckpoint(bad, f.state, f.tensors());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(bad), std::string::npos) << st.message();
}

// Unmounts on scope exit, so a failed assertion never leaves a mount behind.
TEST(MegatronCheckpointTest, ReadOnlyMountIsNamed) {
  TempDir dir;
  coord::testing::TmpfsMount mounted;
  if (!mounted.Mount(dir.path(), "64k", MS_RDONLY)) {
    GTEST_SKIP() << "cannot mount a read-only tmpfs here";
  }
  Fixture f(10, 1);
  coord::Status st = SaveCheckpoint(dir.path(), f.state, f.tensors());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(dir.path() + " is not writable"), std::string::npos) << st.message();
}

// The disk fills during the second save: error, no leftovers, the first still loads.
void ExpectFullDiskKeepsPrevious(const std::string& save_dir, size_t n_big) {
  Fixture small(1000, 10);  // ~12 KiB
  ASSERT_TRUE(SaveCheckpoint(save_dir, small.state, small.tensors()).ok());
  Fixture big(n_big, 20);
  coord::Status st = SaveCheckpoint(save_dir, big.state, big.tensors());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), coord::StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("iter_0000020"), std::string::npos) << st.message();
  auto names = coord::ListDir(save_dir);
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  auto loaded = LoadLatestCheckpoint(save_dir, 1000);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->state.iteration, 10);
  EXPECT_TRUE(loaded->warnings.empty());
}

TEST(MegatronCheckpointTest, DiskFullOnRealTmpfs) {
  TempDir dir;
  coord::testing::TmpfsMount mounted;
  if (!mounted.Mount(dir.path(), "64k")) {
    GTEST_SKIP() << "cannot mount a 64 KiB tmpfs here (covered by InjectedEnospc)";
  }
  ExpectFullDiskKeepsPrevious(dir.path(), 20000);  // ~240 KiB does not fit
}

TEST(MegatronCheckpointTest, InjectedEnospc) {
  TempDir dir;
  Fixture small(1000, 10);
  ASSERT_TRUE(SaveCheckpoint(dir.path(), small.state, small.tensors()).ok());
  SetCheckpointWriteFaultForTesting(5000, ENOSPC);
  Fixture big(20000, 20);
  coord::Status st = SaveCheckpoint(dir.path(), big.state, big.tensors());
  SetCheckpointWriteFaultForTesting(-1, 0);
  EXPECT_EQ(st.code(), coord::StatusCode::kResourceExhausted) << st.ToString();
  auto loaded = LoadLatestCheckpoint(dir.path(), 1000);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->state.iteration, 10);
  EXPECT_FALSE(coord::PathExists(CheckpointIterDir(dir.path(), 20)));
}

}  // namespace
}  // namespace trainer
