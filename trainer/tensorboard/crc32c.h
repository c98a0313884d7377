// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78; iSCSI, RFC 3720), the
// checksum of TFRecord framing, and TensorFlow's masking of it. Table-driven, one
// byte at a time: event records are small, a few per log line. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace trainer::tensorboard {

// CRC-32C of `size` bytes, continuing from `crc` (0 to start): Crc32c(b, crc32c(a))
// equals the CRC of a followed by b.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

// TensorFlow's masked CRC (lib/hash/crc32c.h Mask): rotate right by 15, add
// 0xa282ead8. A CRC stored next to the data it covers is masked so that the CRC of
// a buffer holding embedded CRCs is not degenerate.
inline uint32_t MaskCrc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
inline uint32_t UnmaskCrc32c(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace trainer::tensorboard
