// The rendezvous store's wire format (see tcp_store.h for the protocol): frame
// splitting and request decoding, apart from the sockets so the server's decoding
// can be fuzzed (tests/fuzz/tcp_store_fuzz.cc). Pure functions over bytes; no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpt_rank::dist::wire {

// Larger frames are a protocol error (or a stray client): gloo's addresses are
// bytes per peer, so 64 MiB is far above any real rendezvous value.
constexpr uint32_t kMaxFrameBytes = 64u << 20;

enum Op : uint8_t { kSet = 1, kGet = 2, kAdd = 3, kWait = 4 };

uint32_t GetU32(const char* p);  // big endian

// Bounds-checked reader over one frame body; any overrun clears ok.
class BodyReader {
 public:
  BodyReader(const char* data, size_t size) : p_(data), left_(size) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && left_ == 0; }
  uint8_t U8();
  uint32_t U32();
  int64_t I64();
  std::string String();  // u32 length + bytes

 private:
  bool Need(size_t n);
  void Skip(size_t n);
  const char* p_;
  size_t left_;
  bool ok_ = true;
};

// The frame at the start of `data`: kComplete sets *body_length (the body follows the
// 4-byte length); kNeedMore: not all of it has arrived; kTooLarge: over kMaxFrameBytes.
enum class FrameState { kNeedMore, kTooLarge, kComplete };
FrameState NextFrame(const char* data, size_t size, uint32_t* body_length);

// One decoded request body.
struct StoreRequest {
  Op op = kSet;
  std::string key;                // SET, GET, ADD
  std::string value;              // SET
  int64_t delta = 0;              // ADD
  std::vector<std::string> keys;  // WAIT
};

// Decodes a request body; nullopt when it is malformed (unknown op, a length running
// past the body, bytes left over), for which the server drops the connection.
std::optional<StoreRequest> DecodeRequest(const char* body, size_t size);

}  // namespace gpt_rank::dist::wire
