// Fuzzes the save directory's owner record (trainer/checkpoint/save_fence.h:
// coord_save_owner.json, {"run_id", "restart_count"}) through ClaimSaveDir and
// PublishFenced, as rank 0 reads it when it starts and before each checkpoint publish.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint/save_fence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string record = coord::fuzz::AsString(data, size);
  const std::string dir = coord::fuzz::ScratchDir() + "/save";
  const trainer::SaveOwner me{"run-1", 1};
  coord::fuzz::WriteScratch(std::string("save/") + trainer::kSaveOwnerFile, record);
  (void)trainer::PublishFenced(
      dir, me, [] { return coord::Status::Ok(); }, 1000);
  coord::fuzz::WriteScratch(std::string("save/") + trainer::kSaveOwnerFile, record);
  (void)trainer::ClaimSaveDir(dir, me);
  return 0;
}
