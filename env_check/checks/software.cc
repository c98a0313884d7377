// Software around the job: the Open MPI version (recorded, so the coordinator can
// spot the node with a different one), environment variables on the agent that
// NCCL/DCGM guides warn about (every rank inherits them), and the job's program.
#include <cctype>
#include <string>

#include "env_check/check.h"
#include "env_check/checks/result.h"

namespace coord::env_check {
namespace {

// "Open MPI v4.1.4" (ompi_info --version) or "mpirun (Open MPI) 4.1.4": the first
// dotted number after "Open MPI". Empty when the text is not Open MPI's.
std::string ParseOpenMpiVersion(const std::string& text) {
  size_t at = text.find("Open MPI");
  if (at == std::string::npos) return "";
  for (size_t i = at + 8; i < text.size() && text[i] != '\n'; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) continue;
    size_t j = i;
    while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '.'))
      ++j;
    return text.substr(i, j - i);
  }
  return "";
}

CheckResult OpenMpiVersion(const CheckContext& ctx, const System& sys) {
  CheckResult r = Result("openmpi_version", true, Severity::kInfo, "not installed", "",
                         "install the same Open MPI on every node if the job uses mpirun");
  const std::vector<std::string> probes[] = {{"ompi_info", "--version"}, {"mpirun", "--version"}};
  for (const auto& argv : probes) {
    CommandResult c = sys.RunVersionQuery(argv, ctx.command_deadline);
    if (c.not_found) continue;
    if (c.timed_out) {
      r.found = argv[0] + " --version timed out";
      continue;
    }
    std::string v = ParseOpenMpiVersion(c.out + c.err);
    if (!v.empty()) {
      r.found = "Open MPI " + v;
      r.facts.push_back({"openmpi_version", v});
      return r;
    }
    r.found = argv[0] + " is not Open MPI";
  }
  return r;
}

// An environment variable that silently changes what a job does on this node.
struct RiskyEnv {
  const char* name;
  const char* value;  // the risky value; nullptr = risky whenever set
  const char* why;
};

constexpr RiskyEnv kRiskyEnv[] = {
    {"CUDA_VISIBLE_DEVICES", nullptr,
     "masks GPUs from the agent; the launcher assigns devices per rank"},
    {"NCCL_DEBUG", "TRACE", "logs every NCCL call: gigabytes of logs and slow steps"},
    {"NCCL_P2P_DISABLE", "1", "forces GPU-to-GPU traffic through host memory (slow, silent)"},
    {"NCCL_IB_DISABLE", "1", "falls back from InfiniBand to TCP sockets (slow, silent)"},
    {"NCCL_SHM_DISABLE", "1", "disables the shared-memory transport between local ranks"},
    {"CUDA_LAUNCH_BLOCKING", "1", "serializes every kernel launch (debugging only)"},
    {"LD_PRELOAD", nullptr, "injects a library into every rank"},
};

CheckResult RiskyEnvironment(const CheckContext&, const System& sys) {
  CheckResult r = Result("dcgm_env", true, Severity::kWarn, "none set",
                         "none of the variables DCGM/NCCL guides warn about", "");
  std::string found, hint;
  for (const RiskyEnv& e : kRiskyEnv) {
    std::string v = sys.Getenv(e.name);
    if (v.empty() || (e.value && v != e.value)) continue;
    found += (found.empty() ? "" : ", ") + std::string(e.name) + "=" + v;
    hint += (hint.empty() ? "" : "; ") + std::string(e.name) + " " + e.why;
  }
  if (!found.empty()) {
    r.passed = false;
    r.found = found;
    r.hint = "unset in the agent's environment: " + hint;
  }
  return r;
}

// The job's program must exist here, and be the same build everywhere: the digest
// goes into the facts, where the coordinator names the node whose binary differs.
CheckResult JobProgram(const CheckContext& ctx, const System& sys) {
  if (ctx.program.empty()) return Result("job_program", true, Severity::kInfo, "not configured");
  CheckResult r = Result("job_program", false, Severity::kFail, "",
                         ctx.program + " present and executable",
                         "install the same build of " + ctx.program +
                             " on every node (or put it on the shared mount)");
  // A relative path with a '/' is relative to the ranks' working directory.
  std::string program = ctx.program;
  if (program.find('/') != std::string::npos && program[0] != '/' && !ctx.workdir.empty())
    program = ctx.workdir + "/" + program;
  StatusOr<ProgramInfo> info = sys.LocateProgram(program, ctx.program_search_path,
                                                 ctx.command_deadline);
  if (!info.ok()) {
    r.found = info.status().message();
    return r;
  }
  r.passed = true;
  r.found = info->path + " (" + std::to_string(info->size) + " bytes, xxh64 " + info->digest + ")";
  r.facts.push_back({"program_digest", info->digest});
  return r;
}

}  // namespace

const std::vector<Check>& SoftwareChecks() {
  static const std::vector<Check> k = {
      {"openmpi_version", "Open MPI version (ompi_info / mpirun)", OpenMpiVersion},
      {"dcgm_env", "no environment variables that DCGM/NCCL guides warn about", RiskyEnvironment},
      {"job_program", "the job's program is on this node (digest compared across nodes)",
       JobProgram},
  };
  return k;
}

}  // namespace coord::env_check
