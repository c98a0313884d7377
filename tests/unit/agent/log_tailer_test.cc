// Unit tests for TailLogs file reading (agent/log_tailer.h).
#include "agent/log_tailer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "agent/state_dir.h"
#include "common/fs.h"
#include "tests/support/temp_dir.h"

namespace coord::agent {
namespace {

TEST(LogTailerTest, TailStart) {
  EXPECT_EQ(LogTailer::TailStart("a\nb\nc\n", 2), 2u);
  EXPECT_EQ(LogTailer::TailStart("a\nb\nc\n", 1), 4u);
  EXPECT_EQ(LogTailer::TailStart("a\nb\nc\n", 3), 0u);
  EXPECT_EQ(LogTailer::TailStart("a\nb\nc\n", 9), 0u);
  EXPECT_EQ(LogTailer::TailStart("a\nb\nc", 1), 4u);  // a partial last line counts
  EXPECT_EQ(LogTailer::TailStart("", 1), 0u);
  EXPECT_EQ(LogTailer::TailStart("a\n", 0), 0u);
}

class LogFiles : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path(); }
  coord::testing::TempDir tmp_;
  std::string dir_;  // tmp_'s path
};

TEST_F(LogFiles, ReadsLinesKeepsPartialUntilFlushAndBatches) {
  std::string out = dir_ + "/rank-0.out";
  std::string text;
  for (int i = 0; i < 600; ++i) text += "line " + std::to_string(i) + "\n";
  text += "partial";
  ASSERT_TRUE(WriteRecord(out, text).ok());
  LogTailer tailer({{0, LOG_STDOUT, out}, {0, LOG_STDERR, dir_ + "/rank-0.err"}}, 0);
  std::vector<std::string> lines;
  int batches = 0;
  auto emit = [&](const LogBatch& b) {
    ++batches;
    EXPECT_LE(b.lines_size(), LogTailer::kMaxLinesPerBatch);
    for (const auto& l : b.lines()) lines.push_back(l.text());
    return true;
  };
  ASSERT_TRUE(tailer.ReadNew(false, emit));
  EXPECT_EQ(lines.size(), 600u);
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(lines[599], "line 599");
  ASSERT_TRUE(tailer.ReadNew(true, emit));
  ASSERT_EQ(lines.size(), 601u);
  EXPECT_EQ(lines[600], "partial");
}

TEST_F(LogFiles, TailLinesThenFollowUntilFinished) {
  std::string out = dir_ + "/rank-1.out";
  ASSERT_TRUE(WriteRecord(out, "a\nb\nc\n").ok());
  std::vector<std::string> lines;
  int polls = 0;
  Status st = StreamLogs(
      {{1, LOG_STDOUT, out}}, 2, true, 1,
      [&] {
        if (++polls == 3) {
          FILE* f = fopen(out.c_str(), "a");
          fputs("d\ne", f);
          fclose(f);
        }
        return polls >= 5;
      },
      [] { return false; },
      [&](const LogBatch& b) {
        for (const auto& l : b.lines()) {
          EXPECT_EQ(l.rank(), 1);
          lines.push_back(l.text());
        }
        return true;
      });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(lines, (std::vector<std::string>{"b", "c", "d", "e"}));
}

}  // namespace
}  // namespace coord::agent
