// Fuzzes the job spec parser (common/job_spec.h), which coordctl, coordd, env-check and
// the agent's CheckNode run on the JSON a user submits.
#include "common/job_spec.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)coord::ParseJobSpec(coord::fuzz::AsString(data, size), "job.json");
  return 0;
}
