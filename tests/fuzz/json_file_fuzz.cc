// Fuzzes the shared JSON parser (common/json_file.h) every user-facing JSON goes
// through, with duplicate-key tracking on, and prints what it built (dump() walks the
// whole value recursively: deep nesting must have been refused before it gets there).
#include "common/json_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> duplicates;
  auto parsed = coord::ParseJson(coord::fuzz::AsString(data, size), "in.json", &duplicates);
  if (parsed.ok()) (void)parsed->dump();
  return 0;
}
