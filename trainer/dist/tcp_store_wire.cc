// The rendezvous store's frame splitting and request decoding (see tcp_store_wire.h).
#include "trainer/dist/tcp_store_wire.h"

namespace gpt_rank::dist::wire {

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

// ---------------------------------------------------------------------------
// BodyReader

uint8_t BodyReader::U8() {
  if (!Need(1)) return 0;
  uint8_t v = static_cast<uint8_t>(*p_);
  Skip(1);
  return v;
}

uint32_t BodyReader::U32() {
  if (!Need(4)) return 0;
  uint32_t v = GetU32(p_);
  Skip(4);
  return v;
}

int64_t BodyReader::I64() {
  uint64_t hi = U32();
  uint64_t lo = U32();
  return static_cast<int64_t>((hi << 32) | lo);
}

std::string BodyReader::String() {
  uint32_t n = U32();
  if (!Need(n)) return "";
  std::string s(p_, n);
  Skip(n);
  return s;
}

bool BodyReader::Need(size_t n) {
  if (left_ < n) ok_ = false;
  return ok_;
}

void BodyReader::Skip(size_t n) {
  p_ += n;
  left_ -= n;
}

// ---------------------------------------------------------------------------
// Frames and requests

FrameState NextFrame(const char* data, size_t size, uint32_t* body_length) {
  if (size < 4) return FrameState::kNeedMore;
  const uint32_t length = GetU32(data);
  if (length > kMaxFrameBytes) return FrameState::kTooLarge;
  if (size < 4 + size_t{length}) return FrameState::kNeedMore;
  *body_length = length;
  return FrameState::kComplete;
}

std::optional<StoreRequest> DecodeRequest(const char* body, size_t size) {
  BodyReader in(body, size);
  StoreRequest r;
  const uint8_t op = in.U8();
  switch (op) {
    case kSet:
      r.key = in.String();
      r.value = in.String();
      break;
    case kGet:
      r.key = in.String();
      break;
    case kAdd:
      r.key = in.String();
      r.delta = in.I64();
      break;
    case kWait: {
      // Each key takes at least its 4-byte length, so a count the body cannot hold
      // stops at the first overrun instead of reserving `count` entries.
      const uint32_t count = in.U32();
      for (uint32_t i = 0; i < count && in.ok(); ++i) r.keys.push_back(in.String());
      break;
    }
    default:
      return std::nullopt;
  }
  if (!in.done()) return std::nullopt;
  r.op = static_cast<Op>(op);
  return r;
}

}  // namespace gpt_rank::dist::wire
