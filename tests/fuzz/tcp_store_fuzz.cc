// Fuzzes the rendezvous store server's request decoding (trainer/dist/tcp_store.h): the
// input is the byte stream one connection sends. It is cut into frames and each body
// decoded exactly as the server's loop does (tcp_store_wire.h), before any key is set.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/dist/tcp_store_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace wire = gpt_rank::dist::wire;
  const char* in = reinterpret_cast<const char*>(data);
  size_t pos = 0;
  for (;;) {
    uint32_t length = 0;
    const wire::FrameState state = wire::NextFrame(in + pos, size - pos, &length);
    if (state != wire::FrameState::kComplete) break;
    std::optional<wire::StoreRequest> request = wire::DecodeRequest(in + pos + 4, length);
    pos += 4 + size_t{length};
    if (!request) break;  // the server drops the connection
  }
  return 0;
}
