// Event files: TensorBoard's file name, brain.Event:2 first, scalar events (tag, step,
// wall time, simple_value), a second writer in the same second getting its own file,
// a directory that cannot be written (an error naming it), and a disk that fills (one
// warning, the batch dropped whole, the file still readable, writing resumed later).
#include "trainer/tensorboard/event_file_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <regex>

#include "tests/support/temp_dir.h"
#include "tests/unit/trainer_tensorboard/event_reader.h"

namespace trainer::tensorboard {
namespace {

using testing::ReadEvents;

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

TEST(EventFileWriterTest, NameAndFirstEvent) {
  coord::testing::TempDir dir;
  const double before = EventFileWriter::Now();
  auto w = EventFileWriter::Create(dir.File("tb/run"));  // parents created
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const double after = EventFileWriter::Now();
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::regex name("events\\.out\\.tfevents\\.(\\d{10})\\.(.+)\\.(\\d+)\\.0");
  std::smatch m;
  const std::string base = Basename((*w)->path());
  ASSERT_TRUE(std::regex_match(base, m, name)) << base;
  EXPECT_EQ((*w)->path(), dir.File("tb/run/") + base);
  EXPECT_GE(std::stoll(m[1]), static_cast<long long>(before));
  EXPECT_LE(std::stoll(m[1]), static_cast<long long>(after));
  EXPECT_EQ(m[2], std::string(host));
  EXPECT_EQ(std::stoll(m[3]), static_cast<long long>(getpid()));

  std::string error;
  auto events = ReadEvents((*w)->path(), &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(events.size(), 1u);  // written at once, before any scalar
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[0].source_metadata().writer(), "gpt-rank");
  EXPECT_GE(events[0].wall_time(), before);
  EXPECT_LE(events[0].wall_time(), after);
  EXPECT_EQ(events[0].step(), 0);
}

TEST(EventFileWriterTest, ScalarsAppearAfterFlush) {
  coord::testing::TempDir dir;
  auto w = EventFileWriter::Create(dir.path());
  ASSERT_TRUE(w.ok());
  (*w)->AddScalar("lm loss", 7.25, 10, 1700000000.5);
  (*w)->AddScalar("lm loss vs samples", 7.25, 80, 1700000000.5);
  std::string error;
  EXPECT_EQ(ReadEvents((*w)->path(), &error).size(), 1u);  // queued, not yet written
  (*w)->Flush();
  auto events = ReadEvents((*w)->path(), &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(events.size(), 3u);
  for (size_t i = 1; i < 3; ++i) {
    ASSERT_TRUE(events[i].has_summary());
    ASSERT_EQ(events[i].summary().value_size(), 1);
    EXPECT_EQ(events[i].summary().value(0).simple_value(), 7.25f);
    EXPECT_EQ(events[i].wall_time(), 1700000000.5);
  }
  EXPECT_EQ(events[1].summary().value(0).tag(), "lm loss");
  EXPECT_EQ(events[1].step(), 10);
  EXPECT_EQ(events[2].summary().value(0).tag(), "lm loss vs samples");
  EXPECT_EQ(events[2].step(), 80);
}

TEST(EventFileWriterTest, EveryWriterGetsANewFile) {
  coord::testing::TempDir dir;
  auto a = EventFileWriter::Create(dir.path());
  ASSERT_TRUE(a.ok());
  (*a)->AddScalar("x", 1, 1, 1);
  (*a)->Flush();
  const std::string a_bytes = *coord::ReadFile((*a)->path());
  auto b = EventFileWriter::Create(dir.path());  // a resumed run, maybe in the same second
  ASSERT_TRUE(b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
  EXPECT_EQ(*coord::ReadFile((*a)->path()), a_bytes);
  std::string error;
  EXPECT_EQ(ReadEvents((*b)->path(), &error).size(), 1u);
  EXPECT_EQ(error, "");
}

TEST(EventFileWriterTest, UnwritableDirectoryIsAnErrorNamingIt) {
  coord::testing::TempDir dir;
  std::ofstream(dir.File("file")) << "x";
  auto w = EventFileWriter::Create(dir.File("file/tb"));  // a file where a folder should be
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find(dir.File("file")), std::string::npos)
      << w.status().message();
  if (geteuid() != 0) {  // root writes through permission bits
    ASSERT_EQ(mkdir(dir.File("ro").c_str(), 0500), 0);
    auto ro = EventFileWriter::Create(dir.File("ro"));
    ASSERT_FALSE(ro.ok());
    EXPECT_NE(ro.status().message().find(dir.File("ro")), std::string::npos);
    EXPECT_NE(ro.status().message().find("Permission denied"), std::string::npos);
    chmod(dir.File("ro").c_str(), 0700);
  }
}

TEST(EventFileWriterTest, FullDiskDropsBatchesWarnsOnceAndRecovers) {
  coord::testing::TempDir dir;
  bool full = false;
  auto w = EventFileWriter::Create(
      dir.path(), [&full](int fd, const void* buf, size_t size, off_t offset) -> ssize_t {
        if (!full) return ::pwrite(fd, buf, size, offset);
        if (size > 7) return ::pwrite(fd, buf, 7, offset);  // lands partly, then:
        errno = ENOSPC;
        return -1;
      });
  ASSERT_TRUE(w.ok());
  (*w)->AddScalar("a", 1, 1, 1);
  (*w)->Flush();
  full = true;
  ::testing::internal::CaptureStderr();
  for (int i = 2; i < 5; ++i) {
    (*w)->AddScalar("a", i, i, i);
    (*w)->AddScalar("b", i, i, i);
    (*w)->Flush();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find((*w)->path()), std::string::npos) << err;
  EXPECT_EQ(err.find("tensorboard:"), err.rfind("tensorboard:")) << "warned twice: " << err;
  EXPECT_EQ((*w)->dropped_events(), 6);
  full = false;
  (*w)->AddScalar("a", 5, 5, 5);
  (*w)->Flush();
  std::string error;
  auto events = ReadEvents((*w)->path(), &error);
  EXPECT_EQ(error, "");  // no torn record anywhere
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].step(), 1);
  EXPECT_EQ(events[2].step(), 5);
}

}  // namespace
}  // namespace trainer::tensorboard
