// Fuzzes the safetensors reader (trainer/checkpoint/safetensors.h): 8-byte header
// length, JSON header, data section. Every tensor of a file that opens is then read as
// fp32 with its own shape, as the HF importers do.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      coord::fuzz::WriteScratch("model.safetensors", coord::fuzz::AsString(data, size));
  auto file = trainer::SafetensorsFile::Read(path);
  if (!file.ok()) return 0;
  for (const auto& [name, info] : file->tensors()) {
    // The reader checked (end - begin) == numel * dtype bytes, so numel <= file size.
    std::vector<float> out((info.end - info.begin) / 2 + 1);
    (void)file->ReadF32(name, info.shape, out.data());
  }
  return 0;
}
