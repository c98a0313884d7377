// FreeBytes (common/disk_space.h): the free space of a real filesystem, followed as a
// file fills it, and the error for a path that does not exist.
#include "common/disk_space.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tmpfs_mount.h"

namespace coord {
namespace {

TEST(FreeBytesTest, FollowsAFileFillingASmallFilesystem) {
  testing::TempDir dir;
  testing::TmpfsMount tmpfs;
  if (!tmpfs.Mount(dir.path(), "4m")) GTEST_SKIP() << "mounting a tmpfs needs root";
  StatusOr<uint64_t> empty = FreeBytes(dir.path());
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, 4u << 20);  // an empty tmpfs: all of its size
  ASSERT_TRUE(testing::WriteTextFile(dir.File("one-mib"), std::string(1 << 20, 'x')));
  StatusOr<uint64_t> after = FreeBytes(dir.File("one-mib"));  // any path on it will do
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, 3u << 20);
}

TEST(FreeBytesTest, AnyRealPathHasAnAnswer) {
  testing::TempDir dir;
  StatusOr<uint64_t> free = FreeBytes(dir.path());
  ASSERT_TRUE(free.ok()) << free.status().ToString();
}

TEST(FreeBytesTest, AMissingPathIsAnErrorNamingIt) {
  testing::TempDir dir;
  const std::string missing = dir.File("no/such/dir");
  StatusOr<uint64_t> free = FreeBytes(missing);
  ASSERT_FALSE(free.ok());
  EXPECT_EQ(free.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(free.status().message(), "statvfs " + missing + ": No such file or directory");
}

}  // namespace
}  // namespace coord
