// Unit tests of the GPT-2 pre-tokenizer and BPE on a small hand-made vocab:
// regex pieces, merges by rank, round trips, and every bad vocab/merges input.
// (bpe_reference_test.cc compares the real GPT-2 vocab with the npm reference.)
#include "trainer/data/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tiny_vocab.h"
#include "trainer/data/gpt2_pretokenizer.h"

namespace trainer::data {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using testing::MakeTinyVocab;
using testing::TinyVocab;

std::vector<std::string> Pieces(const std::string& text) {
  std::vector<std::string> out;
  for (const Piece& p : PreTokenize(text)) out.push_back(text.substr(p.offset, p.length));
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizeTest, WordsSpacesAndPunctuation) {
  EXPECT_EQ(Pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(Pieces("Hello, world!!"), (V{"Hello", ",", " world", "!!"}));
  EXPECT_EQ(Pieces(""), V{});
  // A run of spaces gives all but its last to \s+(?!\S); the last starts the word.
  EXPECT_EQ(Pieces("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(Pieces("  \n\n  "), (V{"  \n\n  "}));  // whitespace up to the end: one piece
  EXPECT_EQ(Pieces("a\n\nb"), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(Pieces("a\tb"), (V{"a", "\t", "b"}));  // only ' ' joins the next word
  EXPECT_EQ(Pieces("end  "), (V{"end", "  "}));
}

TEST(PreTokenizeTest, ContractionsNumbersAndOthers) {
  EXPECT_EQ(Pieces("I'm don't we'll they've she'd it's you're"),
            (V{"I", "'m", " don", "'t", " we", "'ll", " they", "'ve", " she", "'d", " it", "'s",
               " you", "'re"}));
  EXPECT_EQ(Pieces("'s"), (V{"'s"}));
  EXPECT_EQ(Pieces("'S"), (V{"'", "S"}));  // case-sensitive, as the pattern
  EXPECT_EQ(Pieces(" 'll"), (V{" '", "ll"}));
  EXPECT_EQ(Pieces("abc123 456"), (V{"abc", "123", " 456"}));
  EXPECT_EQ(Pieces("3.14"), (V{"3", ".", "14"}));
  EXPECT_EQ(Pieces("café naïve"), (V{"café", " naïve"}));
  EXPECT_EQ(Pieces("中文，日本"), (V{"中文", "，", "日本"}));
  EXPECT_EQ(Pieces("½²"), (V{"½²"}));  // \p{N} includes No
  EXPECT_EQ(Pieces("hi 😀😀!"), (V{"hi", " 😀😀!"}));
}

TEST(PreTokenizeTest, PiecesTileArbitraryBytes) {
  const std::string bad("a\xff\xfe b\xc3", 6);  // invalid and truncated UTF-8
  size_t covered = 0;
  for (const Piece& p : PreTokenize(bad)) {
    EXPECT_EQ(p.offset, covered);
    covered += p.length;
  }
  EXPECT_EQ(covered, bad.size());
  EXPECT_EQ(SanitizeUtf8(bad), "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD");
}

class TinyTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyVocab v = MakeTinyVocab();
    vocab_ = dir_.File("vocab.json");
    merges_ = dir_.File("merges.txt");
    WriteTextFile(vocab_, v.vocab_json);
    WriteTextFile(merges_, v.merges_txt);
  }
  coord::Status LoadStatus() { return Gpt2Tokenizer::Load(vocab_, merges_).status(); }
  TempDir dir_;
  std::string vocab_, merges_;
};

TEST_F(TinyTokenizerTest, MergesByRankAndRoundTrips) {
  auto tok = Gpt2Tokenizer::Load(vocab_, merges_);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ((*tok)->vocab_size(), 256 + 7 + 1);
  EXPECT_EQ((*tok)->eod_id(), 263);
  // "hello": h+e, l+l, he+ll, hell+o -> one token; " world": Ġ+w, o+r, Ġw+or, l, d.
  std::vector<int32_t> ids = (*tok)->Encode("hello world");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ((*tok)->TokenBytes(ids[0]), "hello");
  EXPECT_EQ((*tok)->TokenBytes(ids[1]), " wor");
  EXPECT_EQ(ids[2], 'l');
  EXPECT_EQ(ids[3], 'd');
  EXPECT_EQ((*tok)->Encode("hello world"), ids);  // again, from the cache
  for (std::string s : {std::string("hello world"), std::string("  \n\n  x"),
                        std::string("a\xff\x00z", 4), std::string("😀 café 中文")}) {
    auto back = (*tok)->Decode((*tok)->Encode(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  auto bad = (*tok)->Decode({5, 99999});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("99999"), std::string::npos);
}

TEST_F(TinyTokenizerTest, MissingFilesNameThePath) {
  auto st = Gpt2Tokenizer::Load(dir_.File("nope.json"), merges_).status();
  EXPECT_EQ(st.code(), coord::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("nope.json"), std::string::npos) << st.message();
  st = Gpt2Tokenizer::Load(vocab_, dir_.File("nope.txt")).status();
  EXPECT_EQ(st.code(), coord::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("nope.txt"), std::string::npos) << st.message();
}

TEST_F(TinyTokenizerTest, MalformedVocabNamesFileAndLine) {
  WriteTextFile(vocab_, "{\n  \"a\": 1,\n  oops\n}\n");
  auto st = LoadStatus();
  EXPECT_EQ(st.code(), coord::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("vocab.json:3:"), std::string::npos) << st.message();

  // Beyond double range, or nested without end: an error naming the place, not a crash.
  WriteTextFile(vocab_, "{\"a\":\n 1e400}");
  EXPECT_NE(LoadStatus().message().find("vocab.json:2:2: invalid JSON: the number 1e400"),
            std::string::npos)
      << LoadStatus().message();
  WriteTextFile(vocab_, std::string(100000, '['));
  EXPECT_NE(LoadStatus().message().find("vocab.json:1:65: invalid JSON: arrays/objects nested"),
            std::string::npos)
      << LoadStatus().message();

  WriteTextFile(vocab_, "[1, 2]");
  EXPECT_NE(LoadStatus().message().find("expected a JSON object"), std::string::npos);
  WriteTextFile(vocab_, "{\"a\": \"one\"}");
  EXPECT_NE(LoadStatus().message().find("\"a\": id is not an integer"), std::string::npos);
  WriteTextFile(vocab_, "{\"a\": 0, \"b\": 0}");
  EXPECT_NE(LoadStatus().message().find("used by two tokens"), std::string::npos);
  WriteTextFile(vocab_, "{\"a\": 0, \"b\": 1}");
  EXPECT_NE(LoadStatus().message().find("no token for byte 0"), std::string::npos);
  WriteTextFile(vocab_, "{\"a b\": 0}");  // ' ' is not in the alphabet (it is spelled Ġ)
  EXPECT_NE(LoadStatus().message().find("byte-to-unicode alphabet"), std::string::npos);
}

TEST_F(TinyTokenizerTest, MalformedMergesNamesFileAndLine) {
  WriteTextFile(merges_, "h e\n");
  auto st = LoadStatus();
  EXPECT_NE(st.message().find("merges.txt:1: expected the header"), std::string::npos)
      << st.message();
  WriteTextFile(merges_, "#version: 0.2\nh e\nl l x\n");
  st = LoadStatus();
  EXPECT_NE(st.message().find("merges.txt:3: expected two symbols"), std::string::npos)
      << st.message();
  WriteTextFile(merges_, "#version: 0.2\nh e\nhe\n");
  EXPECT_NE(LoadStatus().message().find("merges.txt:3:"), std::string::npos);
  WriteTextFile(merges_, "#version: 0.2\nh e\nq z\n");  // "qz" is no token
  st = LoadStatus();
  EXPECT_NE(st.message().find("merges.txt:3: merge \"q z\""), std::string::npos) << st.message();
  WriteTextFile(merges_, "");
  EXPECT_NE(LoadStatus().message().find("empty"), std::string::npos);
  // CRLF endings and empty lines are fine (an empty line only takes a rank).
  WriteTextFile(merges_, "#version: 0.2\r\nh e\r\n\r\nl l\r\n");
  EXPECT_TRUE(LoadStatus().ok()) << LoadStatus().ToString();
}

}  // namespace
}  // namespace trainer::data
