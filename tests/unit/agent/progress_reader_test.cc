// Reading a rank's progress file (agent/progress_reader.h): every record since the last
// read with its timings, old-format records as before, a record being written left
// for later, and bad input from a rank (not JSON, not an object, wrong types,
// impossible timings, a line too long, complete or still growing, a huge backlog)
// ignored and counted while the good records around it still count.
#include "agent/progress_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace coord::agent {
namespace {

class ProgressReaderTest : public ::testing::Test {
 protected:
  void Append(const std::string& text) {
    std::ofstream(path_, std::ios::app | std::ios::binary) << text;
  }
  ProgressReader::Poll Read() { return reader_.Read(path_, &p_); }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("rank-0.progress");
  ProgressReader reader_;
  RankProgress p_;
};

TEST_F(ProgressReaderTest, EveryRecordSinceTheLastReadWithItsTimings) {
  EXPECT_FALSE(Read().grew);  // no file yet
  Append(R"({"iteration":1,"loss":3.5,"time_ms":100,"train_iters":50,"tokens_per_s":2560,)"
         R"("stage":1,"compute_ms":60,"wait_ms":30,"wait_dp_ms":30,"data_ms":1,"optimizer_ms":9})"
         "\n");
  Append(R"({"iteration":2,"loss":3.25,"time_ms":90,"compute_ms":55,"wait_ms":25,"data_ms":1,)"
         R"("optimizer_ms":9,"checkpoint":2})"
         "\n");
  ProgressReader::Poll poll = Read();
  EXPECT_TRUE(poll.grew);
  EXPECT_EQ(poll.malformed, 0);
  EXPECT_EQ(p_.iteration(), 2);
  EXPECT_EQ(p_.loss(), 3.25);
  EXPECT_EQ(p_.checkpoint(), 2);
  EXPECT_EQ(p_.train_iters(), 50);
  EXPECT_EQ(p_.tokens_per_s(), 2560);
  EXPECT_EQ(p_.stage(), 1);
  ASSERT_EQ(p_.timings_size(), 2);
  EXPECT_EQ(p_.timings(0).iteration(), 1);
  EXPECT_EQ(p_.timings(0).compute_ms(), 60);
  EXPECT_EQ(p_.timings(0).wait_dp_ms(), 30);
  EXPECT_EQ(p_.timings(1).iteration(), 2);
  EXPECT_EQ(p_.timings(1).time_ms(), 90);
  EXPECT_GT(p_.records(), 0);
  EXPECT_NE(p_.text().find("\"iteration\":2"), std::string::npos);

  EXPECT_FALSE(Read().grew);  // nothing new: the same state
  EXPECT_EQ(p_.timings_size(), 2);
  Append(R"({"iteration":3,"loss":3.0,"time_ms":80,"compute_ms":50,"wait_ms":20})" "\n");
  EXPECT_TRUE(Read().grew);
  ASSERT_EQ(p_.timings_size(), 1);  // only the new one
  EXPECT_EQ(p_.timings(0).iteration(), 3);
}

TEST_F(ProgressReaderTest, OldRecordsWithoutTimingsReadAsBefore) {
  Append("{\"iteration\": 120, \"loss\": 3.21}\n");
  Read();
  EXPECT_EQ(p_.iteration(), 120);
  EXPECT_EQ(p_.loss(), 3.21);
  EXPECT_EQ(p_.checkpoint(), -1);
  EXPECT_EQ(p_.train_iters(), -1);
  EXPECT_EQ(p_.stage(), -1);
  EXPECT_EQ(p_.timings_size(), 0);
  Append("{\"iteration\": 121, \"loss\": null}\n");  // NaN, as gpt-rank writes it
  Read();
  EXPECT_TRUE(std::isnan(p_.loss()));
}

TEST_F(ProgressReaderTest, ARecordBeingWrittenWaitsForItsNewline) {
  Append(R"({"iteration":1,"loss":2,"compute_ms":5,"wait_ms":1})" "\n" R"({"iteration":2,"lo)");
  Read();
  EXPECT_EQ(p_.iteration(), 1);
  EXPECT_EQ(p_.timings_size(), 1);
  Append(R"(ss":1.5,"compute_ms":6,"wait_ms":1})" "\n");
  ProgressReader::Poll poll = Read();
  EXPECT_EQ(poll.malformed, 0);
  EXPECT_EQ(p_.iteration(), 2);
  EXPECT_EQ(p_.loss(), 1.5);
  ASSERT_EQ(p_.timings_size(), 1);
  EXPECT_EQ(p_.timings(0).compute_ms(), 6);
}

TEST_F(ProgressReaderTest, MalformedRecordsAreIgnoredAndCounted) {
  Append("not json at all\n");  // the first record: no numbers yet
  ProgressReader::Poll poll = Read();
  EXPECT_TRUE(poll.grew);  // still bytes written: the hang deadline sees activity
  EXPECT_EQ(poll.malformed, 1);
  EXPECT_EQ(poll.first_error, "not JSON");
  EXPECT_EQ(p_.iteration(), -1);
  EXPECT_EQ(p_.checkpoint(), -1);
  EXPECT_EQ(p_.text(), "not json at all");

  Append(R"({"iteration":7,"loss":2.5,"compute_ms":10,"wait_ms":2})" "\n");
  const std::string bad[] = {
      "[1, 2, 3]",
      R"({"iteration":"eight"})",
      R"({"iteration":-4})",
      R"({"iteration":9,"loss":"low"})",
      R"({"iteration":9,"compute_ms":-1})",
      R"({"iteration":9,"compute_ms":"fast"})",
      R"({"iteration":9,"wait_ms":1e300})",
      R"({"iteration":9,"stage":99999999})",
      R"({"iteration":9,"tokens_per_s":-5})",
      R"({"iteration":9,"checkpoint":1.5})",
      "{\"iteration\":9,\"pad\":\"" + std::string(5000, 'x') + "\"}",
  };
  for (const std::string& b : bad) Append(b + "\n");
  poll = Read();
  EXPECT_EQ(poll.malformed, static_cast<int64_t>(std::size(bad)));
  EXPECT_EQ(poll.first_error, "not a JSON object");
  EXPECT_EQ(p_.malformed_records(), 1 + static_cast<int64_t>(std::size(bad)));
  // The good record's numbers stand; none of the bad ones' leaked in.
  EXPECT_EQ(p_.iteration(), 7);
  EXPECT_EQ(p_.loss(), 2.5);
  ASSERT_EQ(p_.timings_size(), 1);
  EXPECT_EQ(p_.timings(0).iteration(), 7);
  EXPECT_LE(p_.text().size(), kProgressTextBytes);
}

TEST_F(ProgressReaderTest, ALineThatNeverEndsIsCountedOnceAndSkipped) {
  Append(std::string(kMaxRecordBytes + 100, 'y'));  // no newline yet
  ProgressReader::Poll poll = Read();
  EXPECT_EQ(poll.malformed, 1);
  Append(std::string(10000, 'y'));
  EXPECT_EQ(Read().malformed, 0);  // the same line: counted already
  Append(std::string(100, 'y') + "\n" + R"({"iteration":4,"compute_ms":3,"wait_ms":0})" "\n");
  poll = Read();
  EXPECT_EQ(poll.malformed, 0);
  EXPECT_EQ(p_.iteration(), 4);
  EXPECT_EQ(p_.malformed_records(), 1);
}

TEST_F(ProgressReaderTest, AHugeBacklogIsReadFromItsEndOnly) {
  std::string backlog;
  int it = 0;
  while (backlog.size() < 3 * kMaxProgressRead) {
    backlog += "{\"iteration\":" + std::to_string(++it) + ",\"compute_ms\":1,\"wait_ms\":0}\n";
  }
  Append(backlog);
  ProgressReader::Poll poll = Read();
  EXPECT_EQ(poll.malformed, 0);  // the cut-off line before the window is skipped, not counted
  EXPECT_EQ(p_.iteration(), it);
  ASSERT_EQ(p_.timings_size(), kMaxTimingsPerPoll);  // the newest
  EXPECT_EQ(p_.timings(kMaxTimingsPerPoll - 1).iteration(), it);
}

}  // namespace
}  // namespace coord::agent
