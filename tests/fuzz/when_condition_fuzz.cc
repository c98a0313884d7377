// Fuzzes a playbook task's `when:` expression (playbooks/runner/condition.h): parse,
// then evaluate against variables that answer by name (a name ending in "_missing"
// is an undefined variable, as the runner reports it).
#include "playbooks/runner/condition.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto condition = coord::playbooks::Condition::Parse(coord::fuzz::AsString(data, size));
  if (!condition.ok()) return 0;
  auto lookup = [](const std::string& name) -> coord::StatusOr<std::string> {
    if (name.size() >= 8 && name.compare(name.size() - 8, 8, "_missing") == 0) {
      return coord::InvalidArgument("undefined variable " + name);
    }
    return name.size() % 2 == 0 ? name : std::string();
  };
  (void)condition->Evaluate(lookup);
  return 0;
}
