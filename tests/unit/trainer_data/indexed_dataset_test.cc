// Megatron MMIDIDX indexed dataset: round trips for every token dtype, the exact
// bytes of a hand-built index, a Python reader that follows Megatron's format,
// and every bad input (magic, version, dtype, truncation, .bin size).
#include "trainer/data/indexed_dataset.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace trainer::data {
namespace {

using coord::testing::ReadAll;
using coord::testing::RunCommand;
using coord::testing::TempDir;
using coord::testing::WriteTextFile;

// Documents: {[1 2 3], [4 5]} as one document, then {[6]}, then {[]}: three
// documents, four sequences (one empty), as add_item / end_document make them.
void WriteSample(const std::string& prefix, DType dtype) {
  auto b = IndexedDatasetBuilder::Create(prefix, dtype);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE((*b)->AddItem({1, 2, 3}).ok());
  ASSERT_TRUE((*b)->AddItem({4, 5}).ok());
  (*b)->EndDocument();
  ASSERT_TRUE((*b)->AddItem({6}).ok());
  (*b)->EndDocument();
  ASSERT_TRUE((*b)->AddItem(std::vector<int32_t>{}).ok());
  (*b)->EndDocument();
  ASSERT_TRUE((*b)->Finalize().ok());
}

template <typename T>
void Append(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// The sample's .idx for uint16, byte by byte from the format description.
std::string HandBuiltIndex() {
  std::string idx("MMIDIDX\0\0", 9);
  Append<uint64_t>(&idx, 1);  // version
  Append<uint8_t>(&idx, 8);   // dtype code: uint16
  Append<uint64_t>(&idx, 4);  // sequences
  Append<uint64_t>(&idx, 4);  // doc_idx entries (3 documents + 1)
  for (int32_t s : {3, 2, 1, 0}) Append<int32_t>(&idx, s);
  for (int64_t p : {0, 6, 10, 12}) Append<int64_t>(&idx, p);  // bytes: 2 per token
  for (int64_t d : {0, 2, 3, 4}) Append<int64_t>(&idx, d);
  return idx;
}

TEST(IndexedDatasetTest, WritesMegatronsExactBytes) {
  TempDir dir;
  const std::string prefix = dir.File("ds");
  WriteSample(prefix, DType::kUint16);
  EXPECT_EQ(ReadAll(prefix + ".idx"), HandBuiltIndex());
  std::string bin;
  for (uint16_t t : {1, 2, 3, 4, 5, 6}) Append<uint16_t>(&bin, t);
  EXPECT_EQ(ReadAll(prefix + ".bin"), bin);
  // No temporaries left behind.
  EXPECT_EQ(RunCommand({"ls", dir.path()}).out, "ds.bin\nds.idx\n");
}

TEST(IndexedDatasetTest, RoundTripsEveryTokenDType) {
  for (DType dtype :
       {DType::kUint8, DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64, DType::kUint16}) {
    TempDir dir;
    const std::string prefix = dir.File("ds");
    WriteSample(prefix, dtype);
    auto ds = IndexedDataset::Open(prefix);
    ASSERT_TRUE(ds.ok()) << DTypeName(dtype) << ": " << ds.status().ToString();
    EXPECT_EQ((*ds)->dtype(), dtype);
    EXPECT_EQ((*ds)->num_sequences(), 4);
    EXPECT_EQ((*ds)->num_documents(), 3);
    EXPECT_EQ((*ds)->num_tokens(), 6);
    EXPECT_EQ((*ds)->doc_idx(1), 2);
    EXPECT_EQ((*ds)->pointer(2), 5 * DTypeSize(dtype));
    std::vector<int32_t> got;
    ASSERT_TRUE((*ds)->Get(0, 0, -1, &got).ok());
    ASSERT_TRUE((*ds)->Get(1, 1, 1, &got).ok());   // get(1, offset=1, length=1)
    ASSERT_TRUE((*ds)->Get(3, 0, -1, &got).ok());  // the empty sequence
    EXPECT_EQ(got, (std::vector<int32_t>{1, 2, 3, 5}));
    EXPECT_EQ((*ds)->Get(1, 1, 2, &got).code(), coord::StatusCode::kOutOfRange);
    EXPECT_EQ((*ds)->Get(4, 0, -1, &got).code(), coord::StatusCode::kOutOfRange);
  }
}

TEST(IndexedDatasetTest, BuilderRefusesIdsThatDoNotFit) {
  TempDir dir;
  auto b = IndexedDatasetBuilder::Create(dir.File("ds"), DType::kUint16);
  ASSERT_TRUE(b.ok());
  auto st = (*b)->AddItem({1, 65536});
  EXPECT_NE(st.message().find("65536 does not fit dtype uint16"), std::string::npos);
  EXPECT_FALSE(IndexedDatasetBuilder::Create(dir.File("f"), DType::kFloat64).ok());
  EXPECT_EQ(BestFittingDType(50257), DType::kUint16);
  EXPECT_EQ(BestFittingDType(65500), DType::kInt32);
}

TEST(IndexedDatasetTest, AbandonedBuilderLeavesNothing) {
  TempDir dir;
  {
    auto b = IndexedDatasetBuilder::Create(dir.File("ds"), DType::kInt32);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->AddItem({1, 2}).ok());
  }
  EXPECT_EQ(RunCommand({"ls", "-A", dir.path()}).out, "");
}

TEST(IndexedDatasetTest, PythonReaderFollowingMegatronReadsOurFiles) {
  if (RunCommand({"python3", "-c", "import struct"}).exit_code != 0) {
    GTEST_SKIP() << "python3 is not installed";
  }
  TempDir dir;
  const std::string prefix = dir.File("ds");
  WriteSample(prefix, DType::kInt32);
  const auto read = RunCommand({"python3", testing::TestDataScript("read_mmidx.py"), prefix});
  ASSERT_EQ(read.exit_code, 0) << read.err;
  auto j = nlohmann::json::parse(read.out);
  EXPECT_EQ(j["dtype"], 4);
  EXPECT_EQ(j["sizes"], nlohmann::json({3, 2, 1, 0}));
  EXPECT_EQ(j["pointers"], nlohmann::json({0, 12, 20, 24}));
  EXPECT_EQ(j["doc_idx"], nlohmann::json({0, 2, 3, 4}));
  EXPECT_EQ(j["sequences"], nlohmann::json::parse("[[1,2,3],[4,5],[6],[]]"));
}

// --- bad input: each names the file and what was expected

class BadIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = dir_.File("ds");
    WriteSample(prefix_, DType::kUint16);
    idx_ = ReadAll(prefix_ + ".idx");
  }
  std::string OpenError(const std::string& idx) {
    WriteTextFile(prefix_ + ".idx", idx);
    auto ds = IndexedDataset::Open(prefix_);
    EXPECT_FALSE(ds.ok());
    return ds.ok() ? "" : ds.status().message();
  }
  TempDir dir_;
  std::string prefix_, idx_;
};

TEST_F(BadIndexTest, WrongMagic) {
  std::string bad = idx_;
  bad[0] = 'X';
  std::string msg = OpenError(bad);
  EXPECT_NE(msg.find(prefix_ + ".idx: wrong magic"), std::string::npos) << msg;
  msg = OpenError(std::string("TNTIDX\0\0", 8) + std::string(40, '\0'));
  EXPECT_NE(msg.find("'lazy'/'cached' index (TNTIDX)"), std::string::npos) << msg;
  EXPECT_NE(OpenError("").find("wrong magic"), std::string::npos);
}

TEST_F(BadIndexTest, WrongVersion) {
  std::string bad = idx_;
  bad[9] = 2;
  std::string msg = OpenError(bad);
  EXPECT_NE(msg.find("ds.idx: index version 2, expected 1"), std::string::npos) << msg;
}

TEST_F(BadIndexTest, WrongDType) {
  for (char code : {0, 6, 7, 9}) {
    std::string bad = idx_;
    bad[17] = code;
    std::string msg = OpenError(bad);
    EXPECT_NE(msg.find("ds.idx: dtype code " + std::to_string(code) + " is not a token dtype"),
              std::string::npos)
        << msg;
  }
}

TEST_F(BadIndexTest, TruncatedIndex) {
  std::string msg = OpenError(idx_.substr(0, 20));
  EXPECT_NE(msg.find("truncated header: 20 bytes, expected at least 34"), std::string::npos) << msg;
  msg = OpenError(idx_.substr(0, idx_.size() - 1));
  EXPECT_NE(msg.find("index is " + std::to_string(idx_.size() - 1) + " bytes, expected " +
                     std::to_string(idx_.size()) + " for 4 sequences and 4 document boundaries"),
            std::string::npos)
      << msg;
  std::string huge = idx_;
  huge[18] = '\xff';  // sequence count in the billions
  EXPECT_NE(OpenError(huge).find("expected far more"), std::string::npos);
}

TEST_F(BadIndexTest, CorruptPointersOrDocIdx) {
  std::string bad = idx_;
  bad[34 + 16 + 8] = 7;  // pointers[1]
  EXPECT_NE(OpenError(bad).find("sequence 1: size 2, pointer 7, expected pointer 6"),
            std::string::npos);
  bad = idx_;
  bad[34 + 16 + 32 + 8] = 9;  // doc_idx[1]
  EXPECT_NE(OpenError(bad).find("doc_idx[1] = 9"), std::string::npos);
}

TEST_F(BadIndexTest, BinSizeDoesNotMatch) {
  WriteTextFile(prefix_ + ".bin", std::string(11, '\0'));
  auto ds = IndexedDataset::Open(prefix_);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find(
                prefix_ + ".bin: 11 bytes, but the index expects 12 bytes (6 tokens of uint16)"),
            std::string::npos)
      << ds.status().message();
  unlink((prefix_ + ".bin").c_str());
  ds = IndexedDataset::Open(prefix_);
  EXPECT_EQ(ds.status().code(), coord::StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("ds.bin"), std::string::npos);
}

}  // namespace
}  // namespace trainer::data
