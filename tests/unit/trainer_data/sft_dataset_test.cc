// Chat datasets and their rows (trainer/data/sft_dataset.h, sft_packing.h): the four
// formats give the same conversation, bad lines are skipped with their line and JSON
// path (or fatal with strict), truncation by each rule, the held-out split, padding
// and packing (positions restarting, segments, the trained mask shifted onto targets).
#include "trainer/data/sft_dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tiny_chat_tokenizer.h"
#include "trainer/data/hf_tokenizer.h"
#include "trainer/data/sft_packing.h"

namespace trainer::data {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using nlohmann::json;
using V = std::vector<ChatMessage>;

bool Same(const V& a, const V& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].role != b[i].role || a[i].content != b[i].content) return false;
  }
  return true;
}

TEST(SftFormatsTest, AllFormatsGiveTheSameConversation) {
  const V want = {
      {"system", "s"}, {"user", "q1"}, {"assistant", "r1"}, {"user", "q2"}, {"assistant", "r2"}};
  const json lines[] = {
      json::parse(R"({"messages": [{"role": "system", "content": "s"},
                   {"role": "user", "content": "q1"}, {"role": "assistant", "content": "r1"},
                   {"role": "user", "content": "q2"}, {"role": "assistant", "content": "r2"}]})"),
      json::parse(R"({"system": "s", "history": [["q1", "r1"]], "query": "q2", "response": "r2"})"),
      json::parse(R"({"conversations": [{"from": "system", "value": "s"},
                   {"from": "human", "value": "q1"}, {"from": "gpt", "value": "r1"},
                   {"from": "human", "value": "q2"}, {"from": "gpt", "value": "r2"}]})"),
      json::parse(R"({"system": "s", "conversations": [{"from": "human", "value": "q1"},
                   {"from": "gpt", "value": "r1"}, {"from": "human", "value": "q2"},
                   {"from": "gpt", "value": "r2"}]})"),
  };
  for (const json& j : lines) {
    auto c = ParseConversation(j);
    ASSERT_TRUE(c.ok()) << j.dump() << ": " << c.status().ToString();
    EXPECT_TRUE(Same(*c, want)) << j.dump();
  }
  auto alpaca =
      ParseConversation(json::parse(R"({"instruction": "do", "input": "x", "output": "y"})"));
  ASSERT_TRUE(alpaca.ok());
  EXPECT_TRUE(Same(*alpaca, V{{"user", "do\nx"}, {"assistant", "y"}}));
  auto no_input =
      ParseConversation(json::parse(R"({"instruction": "do", "input": "", "output": "y"})"));
  ASSERT_TRUE(no_input.ok());
  EXPECT_TRUE(Same(*no_input, V{{"user", "do"}, {"assistant", "y"}}));
}

TEST(SftFormatsTest, ErrorsNameTheJsonPath) {
  auto error = [](const char* text) {
    auto c = ParseConversation(json::parse(text));
    EXPECT_FALSE(c.ok()) << text;
    return c.ok() ? std::string() : c.status().message();
  };
  EXPECT_EQ(
      error(
          R"({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]})"),
      "messages[1].role: unknown role \"tool\" (system, user or assistant)");
  EXPECT_EQ(error(R"({"messages": [{"role": "user"}]})"), "messages[0].content: missing");
  EXPECT_EQ(error(R"({"conversations": [{"from": "bot", "value": "b"}]})"),
            "conversations[0].from: unknown role \"bot\" (system, human or gpt)");
  EXPECT_EQ(error(R"({"query": "q", "history": [["a"]]})"),
            "history[0]: not a [query, response] pair of strings");
  EXPECT_EQ(error(R"({"instruction": 3})"), "instruction: not a string");
  EXPECT_NE(error(R"({"text": "pretraining"})").find("not a conversation"), std::string::npos);
}

class SftLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTextFile(dir_.File("tokenizer.json"), testing::TinyChatTokenizerJson().dump());
    auto tok = HfBpeTokenizer::LoadTokenizerJson(dir_.File("tokenizer.json"));
    ASSERT_TRUE(tok.ok());
    tok_ = std::move(*tok);
  }
  coord::StatusOr<SftData> Load(const std::string& jsonl, const SftLoadOptions& o) {
    WriteTextFile(dir_.File("chat.jsonl"), jsonl);
    return LoadSftJsonl(dir_.File("chat.jsonl"), *ChatTemplate::ByName("chatml"), tok_.get(), o);
  }
  TempDir dir_;
  std::unique_ptr<HfBpeTokenizer> tok_;
};

// <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n: 24 tokens
// on the tiny vocab (bytes, "hello" one token), trained: "hello" and its <|im_end|>.
const char kGood[] = R"({"query": "hi", "response": "hello"})";
constexpr int kGoodTokens = 1 + 5 + 2 + 1 + 1 + 1 + 10 + 1 + 1 + 1;

TEST_F(SftLoadTest, BadLinesAreCountedAndSkippedWithTheirLine) {
  const std::string jsonl =
      std::string(kGood) + "\n" + R"({"messages": [{"role": "user", "content": "x"}]})" + "\n\n" +
      "{not json\n" + R"({"messages": [{"role": "robot", "content": "x"}]})" + "\n" + kGood + "\n";
  auto d = Load(jsonl, {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->lines, 5);
  ASSERT_EQ(d->samples.size(), 2u);
  EXPECT_EQ(d->samples[0].line, 1);
  EXPECT_EQ(d->samples[1].line, 6);
  EXPECT_EQ(static_cast<int>(d->samples[0].ids.size()), kGoodTokens);
  ASSERT_EQ(d->skipped.size(), 3u);
  EXPECT_EQ(d->skipped[0].line, 2);
  EXPECT_EQ(d->skipped[0].reason, "no assistant turn");
  EXPECT_EQ(d->skipped[1].line, 4);
  // The shared parser's reason, with the column ("{not json": "no" is not a literal).
  EXPECT_EQ(d->skipped[1].reason.rfind("not valid JSON at column 3: ", 0), 0u)
      << d->skipped[1].reason;
  EXPECT_EQ(d->skipped[2].line, 5);
  EXPECT_NE(d->skipped[2].reason.find("messages[0].role: unknown role \"robot\""),
            std::string::npos);
  // strict: the first bad line is fatal, with file:line.
  SftLoadOptions strict;
  strict.strict = true;
  auto f = Load(jsonl, strict);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("chat.jsonl:2: no assistant turn"), std::string::npos)
      << f.status().message();
}

// Lines a user's file may hold: a number out of double range, nesting without end, bytes
// that are not UTF-8, a wrong type. Each is skipped with its reason (line, column, JSON
// path), or with strict the error "chat.jsonl:LINE: ...", never an exception.
TEST_F(SftLoadTest, HostileLinesAreSkippedWithLineColumnAndPath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"query": "hi", "response": "hello", "n": 1e400})",
       "not valid JSON at column 43: the number 1e400 is out of range"},
      {std::string(100000, '['),
       "not valid JSON at column 65: arrays/objects nested deeper than 64"},
      {"{\"query\": \"h\xffi\", \"response\": \"hello\"}",
       "not valid JSON at column 13: invalid string: ill-formed UTF-8 byte"},
      {R"({"query": 1e300, "response": "hello"})", "query: not a string"},
      {R"({"messages": [{"role": "user", "content": ["x"]}]})",
       "messages[0].content: not a string"},
      {R"({"conversations": {"from": "human"}})", "conversations: not an array"},
  };
  std::string jsonl = std::string(kGood) + "\n";
  for (const auto& c : cases) jsonl += c.first + "\n";
  auto d = Load(jsonl, {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->samples.size(), 1u);
  ASSERT_EQ(d->skipped.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(d->skipped[i].line, static_cast<int64_t>(i) + 2);
    EXPECT_EQ(d->skipped[i].reason.rfind(cases[i].second, 0), 0u) << d->skipped[i].reason;
  }
  SftLoadOptions strict;
  strict.strict = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto f = Load(std::string(kGood) + "\n" + cases[i].first + "\n", strict);
    ASSERT_FALSE(f.ok()) << i;
    EXPECT_EQ(f.status().code(), coord::StatusCode::kInvalidArgument);
    EXPECT_NE(f.status().message().find("chat.jsonl:2: " + cases[i].second), std::string::npos)
        << f.status().message();
  }
}

TEST_F(SftLoadTest, TruncationRules) {
  const std::string jsonl = std::string(kGood) + "\n" + R"({"query": "a", "response": "b"})" + "\n";
  SftLoadOptions o;
  o.max_length = 23;  // kGood (24 tokens) is one too long; the second has 23
  auto del = Load(jsonl, o);
  ASSERT_TRUE(del.ok());
  ASSERT_EQ(del->samples.size(), 1u);
  EXPECT_EQ(del->samples[0].line, 2);
  ASSERT_EQ(del->skipped.size(), 1u);
  EXPECT_EQ(del->skipped[0].line, 1);
  EXPECT_EQ(del->skipped[0].reason,
            "24 tokens, longer than max_length 23 (truncation_strategy delete)");
  o.truncation = Truncation::kLeft;
  auto left = Load(jsonl, o);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->samples.size(), 2u);
  EXPECT_EQ(left->truncated, 1);
  EXPECT_EQ(left->samples[0].ids.size(), 23u);
  EXPECT_EQ(left->samples[0].ids.front(), 'u');  // <|im_start|> cut off the left
  EXPECT_EQ(left->samples[0].ids.back(), '\n');
  o.truncation = Truncation::kRight;
  auto right = Load(jsonl, o);
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->samples[0].ids.size(), 23u);
  EXPECT_EQ(right->samples[0].ids.back(), testing::kTinyImEnd);  // the final "\n" cut
  // Cutting away every assistant token leaves nothing to train: skipped, said so.
  o.max_length = 12;
  auto none = Load(std::string(kGood) + "\n", o);
  ASSERT_TRUE(none.ok());
  ASSERT_EQ(none->skipped.size(), 1u);
  EXPECT_NE(none->skipped[0].reason.find("no assistant token left"), std::string::npos);
  EXPECT_FALSE(ParseTruncation("middle").ok());
}

TEST(SftSplitTest, HeldOutSplitIsDeterministicAndDisjoint) {
  std::vector<SftSample> all(50);
  for (int i = 0; i < 50; ++i) all[i].line = i + 1;
  std::vector<SftSample> train, valid, train2, valid2;
  SplitSftSamples(all, 0.1, 7, &train, &valid);
  SplitSftSamples(all, 0.1, 7, &train2, &valid2);
  ASSERT_EQ(valid.size(), 5u);
  ASSERT_EQ(train.size(), 45u);
  std::vector<int64_t> lines;
  for (const auto& s : train) lines.push_back(s.line);
  for (const auto& s : valid) lines.push_back(s.line);
  std::sort(lines.begin(), lines.end());
  std::vector<int64_t> want(50);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(lines, want);
  for (size_t i = 0; i < valid.size(); ++i) EXPECT_EQ(valid[i].line, valid2[i].line);
  SplitSftSamples(std::vector<SftSample>(3), 0.01, 7, &train, &valid);
  EXPECT_EQ(valid.size(), 1u);  // at least one when asked for any
}

SftSample MakeSample(int n, int64_t line) {
  SftSample s;
  s.line = line;
  for (int i = 0; i < n; ++i) {
    s.ids.push_back(static_cast<int32_t>(line * 100 + i));
    s.trained.push_back(i >= n / 2 ? 1 : 0);
  }
  return s;
}

TEST(SftRowsTest, OneSamplePerRowShiftsTheMaskOntoTargets) {
  auto rows = BuildSftRows({MakeSample(5, 1)}, 6, -7, false);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows, 1);
  // ids 100..104, trained from index 2: inputs 100..103, targets 101..104.
  EXPECT_EQ(rows->inputs, (std::vector<int32_t>{100, 101, 102, 103, -7, -7}));
  EXPECT_EQ(rows->targets, (std::vector<int32_t>{101, 102, 103, 104, -7, -7}));
  EXPECT_EQ(rows->trained, (std::vector<uint8_t>{0, 1, 1, 1, 0, 0}));
  EXPECT_EQ(rows->trained_count[0], 3);
  EXPECT_EQ(rows->filled[0], 4);
}

TEST(SftRowsTest, PackingKeepsEachSamplesPositionsAndSegments) {
  // Lengths 5, 7, 3, 4 (positions 4, 6, 2, 3) into rows of 8, best fit decreasing:
  // row 0 = [line 2 (6) + line 3 (2)], row 1 = [line 1 (4) + line 4 (3) + padding].
  std::vector<SftSample> s = {MakeSample(5, 1), MakeSample(7, 2), MakeSample(3, 3),
                              MakeSample(4, 4)};
  auto rows = BuildSftRows(s, 8, 0, true);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows, 2);
  EXPECT_EQ(rows->positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 0, 1,  //
                                                   0, 1, 2, 3, 0, 1, 2, 0}));
  EXPECT_EQ(rows->segments, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 1, 1,  //
                                                  0, 0, 0, 0, 1, 1, 1, 2}));
  EXPECT_EQ(rows->inputs[0], 200);
  EXPECT_EQ(rows->inputs[6], 300);
  EXPECT_EQ(rows->targets[7], 302);
  EXPECT_EQ(rows->inputs[8], 100);
  EXPECT_EQ(rows->inputs[12], 400);
  EXPECT_EQ(rows->filled, (std::vector<int32_t>{8, 7}));
  // Every trained target of every sample is there once.
  int64_t trained = 0;
  for (const auto& x : s) trained += std::count(x.trained.begin() + 1, x.trained.end(), 1);
  EXPECT_EQ(rows->trained_count[0] + rows->trained_count[1], trained);
  // A sample longer than a row is refused by line.
  auto bad = BuildSftRows({MakeSample(10, 9)}, 8, 0, true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 9"), std::string::npos);
}

}  // namespace
}  // namespace trainer::data
