// Fuzzes the agent's state-dir records (agent/state_dir.h): gen.json, the supervisor's
// pid file, rank-R.started, rank-R.exit and `launched`, read back after an agent
// restart. Every input goes to all five readers.
#include "agent/state_dir.h"
#include "tests/fuzz/fuzz_util.h"

namespace agent = coord::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = coord::fuzz::AsString(data, size);
  agent::GenSpec spec;
  (void)agent::FromJson(text, &spec);
  agent::ProcId proc;
  (void)agent::FromJson(text, &proc);
  agent::RankStarted started;
  (void)agent::FromJson(text, &started);
  agent::RankExit exit;
  (void)agent::FromJson(text, &exit);
  agent::Launched launched;
  (void)agent::FromJson(text, &launched);
  return 0;
}
