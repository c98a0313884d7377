// Fuzzes the hosts file parser (common/hostfile.h): coordctl/coordd read it from users.
#include "common/hostfile.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)coord::ParseHostfile(coord::fuzz::AsString(data, size), "hosts");
  return 0;
}
