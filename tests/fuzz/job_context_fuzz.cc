// Fuzzes env-check's reading of a job spec into the checks' context
// (env_check/job_context.h), which `env-check --job` and the agent's CheckNode run.
#include "env_check/job_context.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)coord::env_check::ContextFromJob(coord::fuzz::AsString(data, size), "job.json");
  return 0;
}
