// Fuzzes the agent's reader of rank-R.progress (agent/progress_reader.h), which a
// rank's process writes, so anything may be in it: the file is read with a
// ProgressReader exactly as the agent polls it, then each line is parsed alone too.
#include "agent/progress_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = coord::fuzz::AsString(data, size);
  const std::string path = coord::fuzz::WriteScratch("rank-0.progress", text);
  coord::agent::ProgressReader reader;
  coord::agent::RankProgress progress;
  (void)reader.Read(path, &progress);
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    coord::agent::RankProgress out;
    coord::agent::IterationTiming timing;
    bool has_timing = false;
    std::string why;
    (void)coord::agent::ParseProgressRecord(text.substr(start, nl - start), &out, &timing,
                                            &has_timing, &why);
    start = nl + 1;
  }
  return 0;
}
