// Fuzzes the playbook YAML parser (playbooks/runner/playbook_parser.h), which also
// parses every task's `when:` expression and templates, and the vars file parser.
#include "playbooks/runner/playbook_parser.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = coord::fuzz::AsString(data, size);
  (void)coord::playbooks::ParsePlaybook(text, "site.yaml");
  (void)coord::playbooks::ParseVarsFile(text, "vars.yaml");
  return 0;
}
