// Loose JSON reading (bad lines fatal or skipped and counted, with file:line),
// preprocess to an indexed dataset (Megatron's --append-eod, empty documents
// left out, uint16), and DescribeDataset for `gpt-rank data-info`.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tiny_vocab.h"
#include "trainer/data/bpe_tokenizer.h"
#include "trainer/data/dataset_info.h"
#include "trainer/data/loose_json.h"
#include "trainer/data/preprocess.h"

namespace trainer::data {
namespace {

using coord::testing::RunCommand;
using coord::testing::TempDir;
using coord::testing::WriteTextFile;

const char kMixed[] =
    "{\"text\": \"hello world\"}\n"     // 1
    "not json\n"                        // 2
    "{\"title\": \"no text\"}\n"        // 3
    "{\"text\": 42}\n"                  // 4
    "[\"text\"]\n"                      // 5
    "\n"                                // 6
    "{\"text\": \"\", \"id\": 7}\n"     // 7: an empty document is still a document here
    "{\"text\": \"hello\\nhello\"}\n";  // 8

TEST(LooseJsonTest, BadLineIsFatalByDefault) {
  TempDir dir;
  WriteTextFile(dir.File("data.json"), kMixed);
  auto r = LooseJsonReader::Open(dir.File("data.json"), {});
  ASSERT_TRUE(r.ok());
  std::string text;
  ASSERT_TRUE(*(*r)->Next(&text));
  EXPECT_EQ(text, "hello world");
  auto next = (*r)->Next(&text);
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find(dir.File("data.json") + ":2: not valid JSON"),
            std::string::npos)
      << next.status().message();
}

TEST(LooseJsonTest, BadLinesSkippedAndCounted) {
  TempDir dir;
  WriteTextFile(dir.File("data.json"), kMixed);
  LooseJsonOptions o;
  o.skip_bad_lines = true;
  auto r = LooseJsonReader::Open(dir.File("data.json"), o);
  ASSERT_TRUE(r.ok());
  std::vector<std::string> texts;
  std::string text;
  while (true) {
    auto more = (*r)->Next(&text);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    texts.push_back(text);
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"hello world", "", "hello\nhello"}));
  EXPECT_EQ((*r)->skipped_lines(), 5);
  EXPECT_EQ((*r)->documents(), 3);
  EXPECT_EQ((*r)->line_number(), 8);
  EXPECT_EQ((*r)->first_skipped().rfind(dir.File("data.json") + ":2: not valid JSON", 0), 0u)
      << (*r)->first_skipped();
}

TEST(LooseJsonTest, EachKindOfBadLineIsNamed) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"title\": 1}", ":1: no \"text\" key"},
      {"{\"text\": 42}", ":1: \"text\" is not a string"},
      {"[1]", ":1: expected a JSON object"},
      {"", ":1: empty line"},
      {"{\"text\": \"\\ud800\"}", ":1: not valid JSON"},  // lone surrogate
      {"{\"text\": \"a\", \"n\": 1e400}", ":1: not valid JSON"},  // beyond double range
  };
  for (const auto& [line, want] : cases) {
    WriteTextFile(dir.File("d.json"), line + "\n");
    auto r = LooseJsonReader::Open(dir.File("d.json"), {});
    ASSERT_TRUE(r.ok());
    std::string text;
    auto next = (*r)->Next(&text);
    ASSERT_FALSE(next.ok()) << line;
    EXPECT_NE(next.status().message().find(want), std::string::npos) << next.status().message();
  }
  EXPECT_EQ(LooseJsonReader::Open(dir.File("missing.json"), {}).status().code(),
            coord::StatusCode::kNotFound);
}

class PreprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TinyVocab v = testing::MakeTinyVocab();
    WriteTextFile(dir_.File("vocab.json"), v.vocab_json);
    WriteTextFile(dir_.File("merges.txt"), v.merges_txt);
    auto tok = Gpt2Tokenizer::Load(dir_.File("vocab.json"), dir_.File("merges.txt"));
    ASSERT_TRUE(tok.ok());
    tok_ = std::move(*tok);
  }
  TempDir dir_;
  std::unique_ptr<Gpt2Tokenizer> tok_;
};

TEST_F(PreprocessTest, WritesDocumentsWithEodAndDescribesThem) {
  WriteTextFile(dir_.File("data.json"), kMixed);
  PreprocessOptions o;
  o.input = dir_.File("data.json");
  o.output_prefix = MegatronOutputPrefix(dir_.File("out"), "text");
  EXPECT_EQ(o.output_prefix, dir_.File("out") + "_text_document");
  o.skip_bad_lines = true;
  auto stats = PreprocessLooseJson(o, tok_.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->documents, 2);
  EXPECT_EQ(stats->empty_documents, 1);
  EXPECT_EQ(stats->skipped_lines, 5);
  EXPECT_EQ(stats->dtype, DType::kUint16);  // vocab 264 < 65500
  // "hello world" = hello, " wor", l, d + EOD; "hello\nhello" = hello, \n, hello + EOD.
  EXPECT_EQ(stats->tokens, 5 + 4);

  auto d = DescribeDataset(o.output_prefix, *ParseDocumentRange("0:2"), tok_.get());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->dtype, DType::kUint16);
  EXPECT_EQ(d->documents, 2);
  EXPECT_EQ(d->tokens, 9);
  ASSERT_EQ(d->chosen.size(), 2u);
  EXPECT_EQ(d->chosen[0].tokens.size(), 5u);
  EXPECT_EQ(d->chosen[0].tokens.back(), tok_->eod_id());
  EXPECT_EQ(d->chosen[0].text, "hello world<|endoftext|>");
  EXPECT_EQ(d->chosen[1].text, "hello\nhello<|endoftext|>");
  nlohmann::json j = DescriptionToJson(*d);
  EXPECT_EQ(j["dtype"], "uint16");
  EXPECT_EQ(j["chosen"][1]["num_tokens"], 4);
  EXPECT_NE(DescriptionToText(*d).find("2 documents, 2 sequences, 9 tokens"), std::string::npos);

  auto past = DescribeDataset(o.output_prefix, *ParseDocumentRange("1:3"), nullptr);
  EXPECT_EQ(past.status().code(), coord::StatusCode::kOutOfRange);
  EXPECT_NE(past.status().message().find("the dataset has 2"), std::string::npos);
  EXPECT_FALSE(ParseDocumentRange("3:1").ok());
  EXPECT_FALSE(ParseDocumentRange("a:b").ok());
  EXPECT_EQ(ParseDocumentRange("4")->end, 5);
}

TEST_F(PreprocessTest, BadLineIsFatalAndLeavesNoOutput) {
  WriteTextFile(dir_.File("data.json"), kMixed);
  PreprocessOptions o;
  o.input = dir_.File("data.json");
  o.output_prefix = dir_.File("out");
  auto stats = PreprocessLooseJson(o, tok_.get());
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("data.json:2:"), std::string::npos);
  EXPECT_EQ(RunCommand({"ls", dir_.path()}).out, "data.json\nmerges.txt\nvocab.json\n");
}

}  // namespace
}  // namespace trainer::data
