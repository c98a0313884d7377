// Fuzzes the index of a sharded Hugging Face checkpoint (trainer/checkpoint/hf_checkpoint.h:
// model.safetensors.index.json's weight_map, tensor name -> shard file), as import-hf
// and the Llama loader open a model directory. One real shard, "model-1.safetensors"
// holding the F32 tensor "w" (1,), sits beside it, so an index naming it gets past the
// file checks to the tensor lookup.
#include <cstring>

#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/hf_checkpoint.h"

namespace {

std::string OneTensorShard() {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(&file[0], &n, 8);  // little-endian length, as safetensors writes it
  return file + header + std::string(4, '\0');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool shard_written =
      !coord::fuzz::WriteScratch("hf_index/model-1.safetensors", OneTensorShard()).empty();
  (void)shard_written;
  const std::string path = coord::fuzz::WriteScratch(
      std::string("hf_index/") + trainer::kHfIndexFile, coord::fuzz::AsString(data, size));
  (void)trainer::HfCheckpoint::Open(path.substr(0, path.rfind('/')));
  return 0;
}
