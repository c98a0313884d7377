// Megatron's GPT sampling: split arithmetic, numpy's RandomState shuffle, a
// hand-computed sample index, whole index mappings against a numpy transcription
// of gpt_dataset.py (megatron_index_reference.py), and the too-small dataset.
#include "trainer/data/gpt_dataset.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/numpy_random.h"

namespace trainer::data {
namespace {

using coord::testing::TempDir;

// Runs megatron_index_reference.py on `specs` (a JSON list) with numpy's python:
// the results, or null when there is no numpy (the caller skips).
nlohmann::json NumpyReference(const nlohmann::json& specs) {
  const std::string python = testing::PythonWithNumpy();
  if (python.empty()) return nullptr;
  const std::vector<std::string> cmd = {
      python, testing::TestDataScript("megatron_index_reference.py"), specs.dump()};
  const coord::testing::RunResult run = coord::testing::RunCommand(cmd);
  EXPECT_EQ(run.exit_code, 0) << cmd[1] << " " << cmd[2] << ":\n" << run.err;
  return nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
}
const char kNoNumpy[] = "no python3 with numpy (Debian: python3-numpy)";

TEST(SplitDocumentsTest, MegatronArithmetic) {
  // 949/1000 * 500 = 474.5 rounds to 474 (half to even), 25, 0.5 -> 0; the
  // missing document is added back to every boundary after the first.
  EXPECT_EQ(*SplitDocuments("949,50,1", 500), (std::array<int64_t, 4>{0, 475, 500, 500}));
  EXPECT_EQ(*SplitDocuments("949,50,1", 1000), (std::array<int64_t, 4>{0, 949, 999, 1000}));
  EXPECT_EQ(*SplitDocuments("949,50,1", 10), (std::array<int64_t, 4>{0, 10, 10, 10}));
  EXPECT_EQ(*SplitDocuments("100,0,0", 37), (std::array<int64_t, 4>{0, 37, 37, 37}));
  EXPECT_EQ(*SplitDocuments("98/2", 100), (std::array<int64_t, 4>{0, 98, 100, 100}));
  EXPECT_EQ(*SplitDocuments("1", 7), (std::array<int64_t, 4>{0, 7, 7, 7}));
  EXPECT_FALSE(SplitDocuments("949,x,1", 10).ok());
  EXPECT_FALSE(SplitDocuments("0,0,0", 10).ok());
  EXPECT_FALSE(SplitDocuments("", 10).ok());
}

TEST(SplitDocumentsTest, MatchesMegatronsPython) {
  nlohmann::json specs = nlohmann::json::array();
  for (const std::string splits : {"949,50,1", "100,0,0", "969, 30, 1", "8,1,1", "1/1/1", "3"}) {
    for (int64_t size : {1, 2, 3, 10, 99, 500, 1001, 123457}) {
      specs.push_back({{"op", "split"}, {"splits", splits}, {"size", size}});
    }
  }
  const nlohmann::json want = NumpyReference(specs);
  if (want.is_null()) GTEST_SKIP() << kNoNumpy;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto got = SplitDocuments(specs[i]["splits"], specs[i]["size"]);
    ASSERT_TRUE(got.ok()) << specs[i].dump();
    EXPECT_EQ(nlohmann::json(*got), want[i]) << specs[i].dump();
  }
}

TEST(NumpyRandomStateTest, ShuffleMatchesNumpy) {
  nlohmann::json specs = nlohmann::json::array();
  for (uint32_t seed : {0u, 1u, 1234u, 4294967295u}) {
    for (int64_t n : {0, 1, 2, 5, 100, 1000, 70000}) {
      specs.push_back(
          {{"op", "shuffle"}, {"seed", seed}, {"n", n}, {"dtype", n % 2 ? "uint32" : "int32"}});
    }
  }
  const nlohmann::json want = NumpyReference(specs);
  if (want.is_null()) GTEST_SKIP() << kNoNumpy;
  for (size_t i = 0; i < specs.size(); ++i) {
    const int64_t n = specs[i]["n"];
    std::vector<int64_t> x(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) x[k] = k;
    NumpyRandomState rng(specs[i]["seed"].get<uint32_t>());
    rng.Shuffle(x.data(), n);
    EXPECT_EQ(nlohmann::json(x), want[i]) << specs[i].dump();
  }
}

TEST(NumpyRandomStateTest, KnownDraws) {
  // RandomState(1234).shuffle(np.arange(10)) with numpy 1.24 (fixed, so the
  // test also holds where numpy is not installed).
  std::vector<int> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  NumpyRandomState rng(1234);
  rng.Shuffle(x.data(), 10);
  EXPECT_EQ(x, (std::vector<int>{7, 2, 9, 1, 0, 8, 4, 5, 6, 3}));
  // MT19937 init_genrand(5489): the reference implementation's first output.
  EXPECT_EQ(NumpyRandomState(5489).NextUint32(), 3499211612u);
}

// Four short documents, seq_length 4: samples of 5 tokens that overlap by one.
// sizes 5, 3, 7, 2 (17 tokens) -> (17 - 1) / 4 = 4 samples; worked by hand:
//   sample 0: doc0[0..4]                   -> starts (0,0), next starts (0,4)
//   sample 1: doc0[4], doc1[0..2], doc2[0] -> next starts (2,0)
//   sample 2: doc2[0..4]                   -> next starts (2,4)
//   sample 3: doc2[4..6], doc3[0..1]       -> ends (3,1)
TEST(BuildSampleIdxTest, HandComputed) {
  std::vector<int64_t> got = BuildSampleIdx({5, 3, 7, 2}, {0, 1, 2, 3}, 4, 1, 17);
  EXPECT_EQ(got, (std::vector<int64_t>{0, 0, 0, 4, 2, 0, 2, 4, 3, 1}));
  // Two epochs in the order doc_idx = [3, 0, 2, 1, 1, 3, 2, 0] (sizes 2 5 7 3 3 2 7 5):
  // (34 - 1) / 4 = 8 samples.
  got = BuildSampleIdx({5, 3, 7, 2}, {3, 0, 2, 1, 1, 3, 2, 0}, 4, 2, 17);
  EXPECT_EQ(got, (std::vector<int64_t>{0, 0, 1, 2, 2, 1, 2, 5, 3, 2, 5, 0, 6, 2, 6, 6, 7, 3}));
}

TEST(NumEpochsTest, AsMegatron) {
  EXPECT_EQ(NumEpochs(17, 4, 4), 1);
  EXPECT_EQ(NumEpochs(17, 4, 5), 2);  // (34 - 1) / 4 = 8 >= 5
  EXPECT_EQ(NumEpochs(17, 4, 9), 3);
  EXPECT_EQ(NumEpochs(17, 4, 0), 1);
}

// The four documents above in an indexed dataset, tokens 100.., 200.., 300.., 400..
class SmallDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = dir_.File("small");
    auto b = IndexedDatasetBuilder::Create(prefix_, DType::kUint16);
    ASSERT_TRUE(b.ok());
    for (int doc = 0; doc < 4; ++doc) {
      std::vector<int32_t> t;
      for (int i = 0; i < kSizes[doc]; ++i) t.push_back(100 * (doc + 1) + i);
      ASSERT_TRUE((*b)->AddItem(t).ok());
      (*b)->EndDocument();
    }
    ASSERT_TRUE((*b)->Finalize().ok());
    auto ds = IndexedDataset::Open(prefix_);
    ASSERT_TRUE(ds.ok());
    data_ = std::move(*ds);
  }
  static constexpr int kSizes[4] = {5, 3, 7, 2};
  TempDir dir_;
  std::string prefix_;
  std::unique_ptr<IndexedDataset> data_;
};

TEST_F(SmallDatasetTest, GetItemFollowsShuffledSampleIndex) {
  GptDatasetOptions o;
  o.first_document = 0;
  o.end_document = 4;
  o.num_samples = 4;
  o.seq_length = 4;
  o.seed = 1234;
  auto ds = GptDataset::Build(data_.get(), o);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  // numpy: RandomState(1234) leaves arange(4) as is, then shuffles arange(4) to [1, 2, 3, 0].
  EXPECT_EQ((*ds)->doc_idx(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ((*ds)->sample_idx(), (std::vector<int64_t>{0, 0, 0, 4, 2, 0, 2, 4, 3, 1}));
  EXPECT_EQ((*ds)->shuffle_idx(), (std::vector<int64_t>{1, 2, 3, 0}));
  ASSERT_EQ((*ds)->size(), 4);
  const std::vector<std::vector<int32_t>> unshuffled = {{100, 101, 102, 103, 104},
                                                        {104, 200, 201, 202, 300},
                                                        {300, 301, 302, 303, 304},
                                                        {304, 305, 306, 400, 401}};
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE((*ds)->GetItem(i, &tokens).ok());
    EXPECT_EQ(tokens, unshuffled[(*ds)->shuffle_idx()[i]]) << "sample " << i;
  }
  EXPECT_EQ((*ds)->GetItem(4, &tokens).code(), coord::StatusCode::kOutOfRange);
}

TEST_F(SmallDatasetTest, TooSmallForOneSample) {
  GptDatasetOptions o;
  o.name = "valid";
  o.first_document = 3;  // 2 tokens
  o.end_document = 4;
  o.num_samples = 1;
  o.seq_length = 4;
  auto ds = GptDataset::Build(data_.get(), o);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), coord::StatusCode::kFailedPrecondition);
  EXPECT_NE(ds.status().message().find("'valid' on " + prefix_ +
                                       ": documents [3, 4) hold 2 tokens, too few for one "
                                       "sample of seq_length + 1 = 5"),
            std::string::npos)
      << ds.status().message();
  o.first_document = 2;
  o.end_document = 2;
  EXPECT_FALSE(GptDataset::Build(data_.get(), o).ok());
  o.end_document = 5;
  EXPECT_FALSE(GptDataset::Build(data_.get(), o).ok());
}

// Whole _build_index_mappings against numpy, including several epochs with and
// without separate_last_epoch and a document range that does not start at 0.
TEST(GptDatasetTest, IndexMappingsMatchMegatronNumpy) {
  std::vector<int32_t> sizes;
  for (int i = 0; i < 300; ++i) sizes.push_back(1 + (i * 7919) % 97);
  TempDir dir;
  auto b = IndexedDatasetBuilder::Create(dir.File("ds"), DType::kInt32);
  ASSERT_TRUE(b.ok());
  for (int32_t s : sizes) {
    ASSERT_TRUE((*b)->AddItem(std::vector<int32_t>(s, 7)).ok());
    (*b)->EndDocument();
  }
  ASSERT_TRUE((*b)->Finalize().ok());
  auto data = IndexedDataset::Open(dir.File("ds"));
  ASSERT_TRUE(data.ok());
  struct Case {
    int64_t first, end, num_samples, seq_length;
    uint32_t seed;
  };
  const std::vector<Case> cases = {{0, 300, 100, 32, 1234}, {0, 300, 1000, 32, 1234},
                                   {0, 300, 1100, 64, 7},   {10, 40, 500, 16, 42},
                                   {285, 300, 80, 8, 1},    {0, 300, 0, 2, 99}};
  nlohmann::json specs = nlohmann::json::array();
  for (const Case& c : cases) {
    specs.push_back({{"op", "index"},
                     {"sizes", sizes},
                     {"first", c.first},
                     {"end", c.end},
                     {"num_samples", c.num_samples},
                     {"seq_length", c.seq_length},
                     {"seed", c.seed}});
  }
  const nlohmann::json all = NumpyReference(specs);
  if (all.is_null()) GTEST_SKIP() << kNoNumpy;
  bool saw_separate = false, saw_joined_multi = false;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const nlohmann::json& want = all[i];
    GptDatasetOptions o;
    o.first_document = c.first;
    o.end_document = c.end;
    o.num_samples = c.num_samples;
    o.seq_length = c.seq_length;
    o.seed = c.seed;
    auto ds = GptDataset::Build(data->get(), o);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    const std::string label = "case " + std::to_string(i);
    EXPECT_EQ((*ds)->num_epochs(), want["num_epochs"].get<int64_t>()) << label;
    EXPECT_EQ((*ds)->separate_last_epoch(), want["separate_last_epoch"].get<bool>()) << label;
    EXPECT_EQ(nlohmann::json((*ds)->doc_idx()), want["doc_idx"]) << label;
    EXPECT_EQ(nlohmann::json((*ds)->sample_idx()), want["sample_idx"]) << label;
    EXPECT_EQ(nlohmann::json((*ds)->shuffle_idx()), want["shuffle_idx"]) << label;
    EXPECT_GE((*ds)->size(), c.num_samples);
    saw_separate |= (*ds)->separate_last_epoch();
    saw_joined_multi |= (*ds)->num_epochs() > 1 && !(*ds)->separate_last_epoch();
  }
  EXPECT_TRUE(saw_separate);
  EXPECT_TRUE(saw_joined_multi);
}

TEST(TrainValidTestNumSamplesTest, AsTrainingPy) {
  // 10B example: train_iters 500000, eval every 1000 for 10, global batch 6 (1 rank).
  EXPECT_EQ(TrainValidTestNumSamples(500000, 1000, 10, 6),
            (std::array<int64_t, 3>{3000000, 501 * 10 * 6, 60}));
}

}  // namespace
}  // namespace trainer::data
