// env-check: runs this node's checks and prints one line per check.
// Exit 0 when nothing FAILs, 1 otherwise, 2 on bad flags.
#include <cstdio>
#include <cstring>
#include <string>

#include "env_check/check.h"

int main(int argc, char** argv) {
  using namespace coord::env_check;
  CheckContext ctx;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--checkpoint-dir" && i + 1 < argc) {
      ctx.checkpoint_dir = argv[++i];
    } else if (a == "--list") {
      for (const Check& c : AllChecks()) std::printf("%-18s %s\n", c.id, c.what);
      return 0;
    } else {
      std::fprintf(stderr, "usage: env-check [--list] [--checkpoint-dir DIR]\n");
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  bool failed = false;
  for (const CheckResult& r : RunAll(ctx)) {
    const char* verdict = r.passed ? "ok" : SeverityName(r.severity);
    std::printf("%-5s %-18s found: %s", verdict, r.id.c_str(), r.found.c_str());
    if (!r.passed) std::printf("; expected: %s; fix: %s", r.expected.c_str(), r.hint.c_str());
    std::printf("\n");
    failed |= !r.passed && r.severity == Severity::kFail;
  }
  return failed ? 1 : 0;
}
