// CRC-32C against published check values (the CRC catalogue's "123456789", RFC 3720
// appendix B.4's iSCSI vectors) and TensorFlow's mask.
#include "trainer/tensorboard/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace trainer::tensorboard {
namespace {

uint32_t Crc(const std::vector<uint8_t>& b) { return Crc32c(b.data(), b.size()); }

TEST(Crc32cTest, CheckValue) { EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u); }

TEST(Crc32cTest, Rfc3720Vectors) {
  EXPECT_EQ(Crc(std::vector<uint8_t>(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(Crc(std::vector<uint8_t>(32, 0xFF)), 0x62A8AB43u);
  std::vector<uint8_t> up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    down[static_cast<size_t>(i)] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(Crc(up), 0x46DD794Eu);
  EXPECT_EQ(Crc(down), 0x113FDB5Cu);
  // An iSCSI SCSI Read (10) command PDU.
  const std::vector<uint8_t> pdu = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Crc(pdu), 0xD9963A56u);
}

TEST(Crc32cTest, EmptyAndIncremental) {
  EXPECT_EQ(Crc32c("", 0), 0u);
  const std::string a = "The quick brown fox ", b = "jumps over the lazy dog";
  const std::string ab = a + b;
  EXPECT_EQ(Crc32c(ab.data(), ab.size()), 0x22620404u);  // fast-crc32c's self-test value
  EXPECT_EQ(Crc32c(b.data(), b.size(), Crc32c(a.data(), a.size())), 0x22620404u);
}

TEST(Crc32cTest, Mask) {
  EXPECT_EQ(MaskCrc32c(0), 0xa282ead8u);
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu, 0x80000000u}) {
    EXPECT_EQ(UnmaskCrc32c(MaskCrc32c(crc)), crc);
    if (crc != 0) {
      EXPECT_NE(MaskCrc32c(crc), crc);
    }
  }
  // Rotate right by 15, then add: 0x00008000 -> 0x00000001 + delta.
  EXPECT_EQ(MaskCrc32c(0x00008000u), 0xa282ead9u);
}

}  // namespace
}  // namespace trainer::tensorboard
