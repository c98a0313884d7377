// env-check: runs this node's checks and prints a table (or JSON with --json).
// Exit 0 when every check passed, 1 when only WARN/INFO checks missed, 2 on any
// FAIL, and 2 on bad flags or an unreadable/invalid config.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "env_check/check.h"
#include "env_check/job_context.h"
#include "env_check/report.h"

namespace {

constexpr char kUsage[] =
    "usage: env-check [--config job.json] [--json] [--list] [--shared-path P]\n"
    "                 [--checkpoint-dir D] [--probe-deadline-s S]\n"
    "Checks that this node can run the job. Exit 0 ok, 1 warnings, 2 failures.\n";

int Usage(const std::string& problem) {
  std::fprintf(stderr, "env-check: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace coord::env_check;
  std::string config, shared_path, checkpoint_dir, probe_deadline;
  bool json = false, list = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    // Flags with a value, as "--flag V" or "--flag=V".
    auto value = [&](const char* flag, std::string* out) {
      std::string f = flag;
      if (a == f && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (a.compare(0, f.size() + 1, f + "=") == 0) {
        *out = a.substr(f.size() + 1);
        return true;
      }
      return false;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--list") {
      list = true;
    } else if (!value("--config", &config) && !value("--shared-path", &shared_path) &&
               !value("--checkpoint-dir", &checkpoint_dir) &&
               !value("--probe-deadline-s", &probe_deadline)) {
      return Usage("unknown or incomplete flag " + a);
    }
  }
  if (list) {
    for (const Check& c : AllChecks()) std::printf("%-26s %s\n", c.id, c.what);
    return 0;
  }

  CheckContext ctx;
  if (!config.empty()) {
    std::ifstream in(config);
    if (!in) {
      std::fprintf(stderr, "env-check: cannot read %s\n", config.c_str());
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = ContextFromJob(text.str(), config);
    if (!parsed.ok()) {
      std::fprintf(stderr, "env-check: %s\n", parsed.status().message().c_str());
      return 2;
    }
    ctx = std::move(parsed).value();
  }
  // Flags override the config.
  if (!shared_path.empty()) ctx.shared_path = shared_path;
  if (!checkpoint_dir.empty()) ctx.checkpoint_dir = checkpoint_dir;
  if (!probe_deadline.empty()) {
    char* end = nullptr;
    double s = std::strtod(probe_deadline.c_str(), &end);
    if (end == probe_deadline.c_str() || *end != '\0' || s <= 0)
      return Usage("--probe-deadline-s: expected a positive number of seconds, got " +
                   probe_deadline);
    ctx.probe_deadline = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  }

  std::vector<CheckResult> results = RunAll(ctx, MakeRealSystem());
  if (json) {
    std::printf("%s\n", ToJson(results).dump(2).c_str());
  } else {
    std::fputs(FormatTable(results).c_str(), stdout);
  }
  return ExitCode(results);
}
