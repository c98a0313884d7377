// TFRecord framing against a record written by another TFRecord writer, and
// RecordFile's all-or-nothing appends: a short write followed by ENOSPC, a write
// that makes no progress and EINTR, each leaving only whole, verified records.
#include "trainer/tensorboard/record_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "tests/support/temp_dir.h"
#include "tests/unit/trainer_tensorboard/event_reader.h"

namespace trainer::tensorboard {
namespace {

using testing::ReadRecords;

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// data.tfrecord of the npm `tfrecord` package 0.2.0 (its test data): one record of a
// 52-byte tf.train.Example.
const char kOtherWritersRecord[] =
    "34000000000000005e33175c0a320a0f0a06616e7377657212051a030a012a0a0e0a0270691208"
    "12060a04c3f548400a0f0a046e616d6512070a050a03414243f9516db6";

TEST(RecordFileTest, FramingMatchesAnotherWriter) {
  const std::string file = FromHex(kOtherWritersRecord);
  ASSERT_EQ(file.size(), 68u);
  std::string framed;
  AppendRecord(file.substr(12, 52), &framed);
  EXPECT_EQ(framed, file);
}

TEST(RecordFileTest, EmptyRecord) {
  std::string framed;
  AppendRecord("", &framed);
  ASSERT_EQ(framed.size(), 16u);
  EXPECT_EQ(framed.substr(0, 8), std::string(8, '\0'));
  EXPECT_EQ(testing::Le32(framed, 8), MaskCrc32c(Crc32c(framed.data(), 8)));
  EXPECT_EQ(testing::Le32(framed, 12), 0xa282ead8u);  // Mask(CRC of nothing = 0)
}

TEST(RecordFileTest, NeverRewritesAnExistingFile) {
  coord::testing::TempDir dir;
  const std::string path = dir.File("events");
  std::ofstream(path) << "earlier run";
  auto f = RecordFile::Create(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), coord::StatusCode::kAlreadyExists);
  EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
  EXPECT_EQ(*coord::ReadFile(path), "earlier run");
}

std::string Framed(const std::string& data) {
  std::string out;
  AppendRecord(data, &out);
  return out;
}

// A disk that fills in the middle of a batch: the first pwrite lands `first` bytes,
// the next fails with `err` (0: returns 0, no progress). Reset by `full = false`.
struct FillingDisk {
  bool full = false;
  size_t first = 10;
  int err = ENOSPC;
  int calls = 0;
  PwriteFn Fn() {
    return [this](int fd, const void* buf, size_t size, off_t offset) -> ssize_t {
      ++calls;
      if (!full) return ::pwrite(fd, buf, size, offset);
      if (calls == 1) return ::pwrite(fd, buf, std::min(first, size), offset);
      if (err == 0) return 0;
      errno = err;
      return -1;
    };
  }
};

TEST(RecordFileTest, ShortWriteThenFullDiskLeavesNoTornRecord) {
  coord::testing::TempDir dir;
  FillingDisk disk;
  auto f = RecordFile::Create(dir.File("events"), disk.Fn());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append(Framed("one")).ok());
  const int64_t good = (*f)->size();

  disk.full = true;
  disk.calls = 0;
  const coord::Status s = (*f)->Append(Framed("two") + Framed("three"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(dir.File("events")), std::string::npos) << s.message();
  EXPECT_EQ(disk.calls, 2);  // the short write, then the failing one
  EXPECT_EQ((*f)->size(), good);
  auto on_disk = ReadRecords(dir.File("events"));
  EXPECT_EQ(on_disk.error, "");
  EXPECT_EQ(on_disk.data, std::vector<std::string>{"one"});

  disk.full = false;  // space again: appending goes on after the last whole record
  ASSERT_TRUE((*f)->Append(Framed("four")).ok());
  on_disk = ReadRecords(dir.File("events"));
  EXPECT_EQ(on_disk.error, "");
  EXPECT_EQ(on_disk.data, (std::vector<std::string>{"one", "four"}));
}

TEST(RecordFileTest, NoProgressIsAFullDisk) {
  coord::testing::TempDir dir;
  FillingDisk disk;
  disk.err = 0;
  auto f = RecordFile::Create(dir.File("events"), disk.Fn());
  ASSERT_TRUE(f.ok());
  disk.full = true;
  EXPECT_FALSE((*f)->Append(Framed("x")).ok());
  EXPECT_EQ((*f)->size(), 0);
  auto on_disk = ReadRecords(dir.File("events"));
  EXPECT_EQ(on_disk.error, "");
  EXPECT_TRUE(on_disk.data.empty());
}

TEST(RecordFileTest, RetriesInterruptedWrites) {
  coord::testing::TempDir dir;
  int interrupts = 2;
  auto f = RecordFile::Create(dir.File("events"),
                              [&](int fd, const void* buf, size_t size, off_t offset) -> ssize_t {
                                if (interrupts-- > 0) {
                                  errno = EINTR;
                                  return -1;
                                }
                                return ::pwrite(fd, buf, std::min<size_t>(size, 5), offset);
                              });
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(Framed("interrupted")).ok());
  auto on_disk = ReadRecords(dir.File("events"));
  EXPECT_EQ(on_disk.error, "");
  EXPECT_EQ(on_disk.data, std::vector<std::string>{"interrupted"});
}

}  // namespace
}  // namespace trainer::tensorboard
