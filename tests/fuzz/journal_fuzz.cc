// Fuzzes coordd's journal replay (coordinator/journal.h): the input is
// STATE_DIR/journal.jsonl, opened (and replayed) as coordd does at start.
#include "coordinator/journal.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      coord::fuzz::WriteScratch("state/journal.jsonl", coord::fuzz::AsString(data, size));
  std::vector<coord::coordinator::JournaledJob> jobs;
  (void)coord::coordinator::Journal::Open(path.substr(0, path.rfind('/')), &jobs);
  return 0;
}
