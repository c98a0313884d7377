// The flight record (common/flight_record.h): what a writer records is what another
// reader sees, the ring keeps the last 32 collectives, a copy left half-written (a
// writer stopped mid-update) does not hide the state, a reader racing a busy writer
// only ever sees whole states, and a process stopped with SIGSTOP inside a collective
// is read from outside. Files that are not flight records are refused, not misread.
#include "common/flight_record.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace coord {
namespace {

TEST(FlightRecordTest, AReaderSeesThePhaseIterationAndCollectivesInOrder) {
  testing::TempDir dir;
  const std::string path = dir.File("rank-3.flight");
  auto rec = FlightRecorder::Create(path, 3);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  (*rec)->SetIteration(17);
  (*rec)->SetPhase(RankPhase::kBackward, 2);
  const uint64_t a = (*rec)->BeginCollective(CollectiveOp::kAllReduce, "dp", 4 << 20);
  (*rec)->EndCollective(a, true);
  const uint64_t b = (*rec)->BeginCollective(CollectiveOp::kRecv, "pp", 1024, 2);

  auto s = ReadFlightRecord(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rank, 3);
  EXPECT_EQ(s->pid, getpid());
  EXPECT_EQ(s->iteration, 17);
  EXPECT_EQ(s->phase, RankPhase::kBackward);
  EXPECT_STREQ(RankPhaseName(s->phase), "backward");
  EXPECT_EQ(s->micro_batch, 2);
  EXPECT_GT(s->phase_since_ms, 0);
  ASSERT_EQ(s->recent.size(), 2u);
  EXPECT_EQ(s->collectives, b);
  EXPECT_EQ(s->recent[0].seq, a);
  EXPECT_EQ(s->recent[0].op, CollectiveOp::kAllReduce);
  EXPECT_EQ(s->recent[0].group, "dp");
  EXPECT_EQ(s->recent[0].bytes, 4u << 20);
  EXPECT_GT(s->recent[0].finished_ms, 0);
  EXPECT_FALSE(s->recent[0].failed);
  const CollectiveRecord* in_flight = s->InFlight();
  ASSERT_NE(in_flight, nullptr);
  EXPECT_EQ(in_flight->seq, b);
  EXPECT_STREQ(CollectiveOpName(in_flight->op), "recv");
  EXPECT_EQ(in_flight->peer, 2);
  EXPECT_EQ(in_flight->finished_ms, 0);

  (*rec)->EndCollective(b, false);
  s = ReadFlightRecord(path);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->InFlight(), nullptr);
  EXPECT_TRUE(s->recent[1].failed);
}

TEST(FlightRecordTest, TheRingKeepsTheLast32Collectives) {
  testing::TempDir dir;
  auto rec = FlightRecorder::Create(dir.File("r.flight"), 0);
  ASSERT_TRUE(rec.ok());
  for (int i = 1; i <= 40; ++i) {
    (*rec)->EndCollective((*rec)->BeginCollective(CollectiveOp::kAllGather, "tp", i), true);
  }
  auto s = ReadFlightRecord(dir.File("r.flight"));
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->recent.size(), static_cast<size_t>(kFlightRing));
  EXPECT_EQ(s->recent.front().seq, 9u);
  EXPECT_EQ(s->recent.back().seq, 40u);
  EXPECT_EQ(s->recent.back().bytes, 40u);
  EXPECT_EQ(s->collectives, 40u);
  // A collective pushed out of the ring ends quietly.
  (*rec)->EndCollective(1, true);
  // Memory-only recorders answer the same.
  auto mem = FlightRecorder::Create("", 5);
  ASSERT_TRUE(mem.ok());
  (*mem)->BeginCollective(CollectiveOp::kBarrier, "world", 0);
  EXPECT_EQ((*mem)->Snapshot().rank, 5);
  ASSERT_NE((*mem)->Snapshot().InFlight(), nullptr);
}

TEST(FlightRecordTest, AHalfWrittenCopyLeavesTheOtherReadable) {
  testing::TempDir dir;
  const std::string path = dir.File("r.flight");
  auto rec = FlightRecorder::Create(path, 1);
  ASSERT_TRUE(rec.ok());
  (*rec)->SetIteration(5);
  (*rec)->BeginCollective(CollectiveOp::kBroadcast, "world", 8);
  for (int copy : {0, 1}) {
    // The writer updates copy 0 then copy 1: whichever it was stopped in, the other is whole.
    (*rec)->SetIteration(6 + copy);  // both copies whole again
    ASSERT_TRUE(MarkFlightCopyTornForTest(path, copy).ok());
    auto s = ReadFlightRecord(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->iteration, 6 + copy);
    EXPECT_EQ(s->rank, 1);
    ASSERT_EQ(s->recent.size(), 1u);
    EXPECT_EQ(s->recent[0].group, "world");
  }
}

TEST(FlightRecordTest, AReaderRacingABusyWriterOnlySeesWholeStates) {
  testing::TempDir dir;
  const std::string path = dir.File("r.flight");
  auto rec = FlightRecorder::Create(path, 0);
  ASSERT_TRUE(rec.ok());
  std::atomic<bool> stop{false};
  // Every state the writer publishes has iteration == the newest seq and each
  // entry's bytes == 8 x its seq: a torn read would break one of these.
  std::thread writer([&] {
    for (uint64_t i = 1; !stop; ++i) {
      const uint64_t seq = (*rec)->BeginCollective(CollectiveOp::kAllReduce, "dp", 8 * i);
      (*rec)->SetIteration(static_cast<int64_t>(seq));
      (*rec)->EndCollective(seq, true);
    }
  });
  int reads = 0;
  for (; reads < 2000; ++reads) {
    auto s = ReadFlightRecord(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (size_t k = 0; k < s->recent.size(); ++k) {
      ASSERT_EQ(s->recent[k].bytes, 8 * s->recent[k].seq);
      if (k > 0) {
        ASSERT_EQ(s->recent[k].seq, s->recent[k - 1].seq + 1);
      }
    }
    if (!s->recent.empty()) {
      ASSERT_EQ(s->recent.back().seq, s->collectives);
      ASSERT_GE(s->collectives, static_cast<uint64_t>(s->iteration));
      ASSERT_LE(s->collectives, static_cast<uint64_t>(s->iteration) + 1);
    }
  }
  stop = true;
  writer.join();
}

TEST(FlightRecordTest, AProcessStoppedInsideACollectiveIsReadFromOutside) {
  testing::TempDir dir;
  const std::string path = dir.File("rank-2.flight");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto rec = FlightRecorder::Create(path, 2);
    if (!rec.ok()) _exit(3);
    (*rec)->SetIteration(42);
    (*rec)->SetPhase(RankPhase::kOptimizer);
    (*rec)->BeginCollective(CollectiveOp::kReduceScatter, "dp", 1 << 20);
    raise(SIGSTOP);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status));
  auto s = ReadFlightRecord(path);
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->pid, child);
  EXPECT_EQ(s->iteration, 42);
  EXPECT_EQ(s->phase, RankPhase::kOptimizer);
  ASSERT_NE(s->InFlight(), nullptr);
  EXPECT_EQ(s->InFlight()->op, CollectiveOp::kReduceScatter);
}

TEST(FlightRecordTest, FilesThatAreNotFlightRecordsAreRefused) {
  testing::TempDir dir;
  EXPECT_EQ(ReadFlightRecord(dir.File("missing")).status().code(), StatusCode::kNotFound);
  std::ofstream(dir.File("short")) << "COORDFR1";
  EXPECT_EQ(ReadFlightRecord(dir.File("short")).status().code(), StatusCode::kInvalidArgument);
  // The right size, the wrong magic.
  auto rec = FlightRecorder::Create(dir.File("r.flight"), 0);
  ASSERT_TRUE(rec.ok());
  {
    std::fstream f(dir.File("r.flight"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "NOTMINE!";
  }
  EXPECT_EQ(ReadFlightRecord(dir.File("r.flight")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FlightRecorder::Create(dir.File("no/such/dir/r.flight"), 0).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace coord
