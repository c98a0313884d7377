// `gpt-rank train --config job.json [--set training.train_iters=20 ...]`: one rank
// of training (trainer/train/trainer.h), joined to its peers (trainer/dist) when
// WORLD_SIZE > 1. SIGTERM/SIGINT stop the loop before the
// next micro-batch without saving (checkpoints are periodic): exit 143.
#include <sys/resource.h>

#include <chrono>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <thread>
#include <iostream>

#include "common/logging.h"
#include "trainer/cli/commands.h"
#include "trainer/dist/process_group.h"
#include "trainer/checkpoint/save_fence.h"
#include "trainer/dist/rank_env.h"
#include "trainer/train/cli_args.h"
#include "trainer/plan/host_memory.h"
#include "trainer/train/parallel_groups.h"
#include "trainer/train/trainer.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::cli {
namespace {

namespace po = boost::program_options;
using train::kExitFailed;
using train::kExitOk;
using train::kExitUsage;

constexpr int kExitTerminated = 128 + SIGTERM;

void OnStopSignal(int) { train::Trainer::RequestStop(); }

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace

int RunTrain(const std::vector<std::string>& args) {
  const train::VerbInfo verb = {"train", "train --config F [--set KEY=VALUE ...]",
                                "train a GPT on this rank (Megatron's pretrain_gpt2.py)"};
  std::string config_path;
  std::vector<std::string> sets;
  po::options_description options("options");
  options.add_options()("config,c", po::value(&config_path)->required(), "job spec JSON")(
      "set", po::value(&sets)->composing(),
      "override a config key by its JSON path, e.g. training.train_iters=20 (value parsed as "
      "JSON, else taken as a string); repeatable");
  po::variables_map vm;
  int code = kExitOk;
  if (!train::ParseVerbArgs(args, verb, options, {}, &vm, &code)) return code;
  // Rank and world from torchrun's variables (what coord-agent sets), else Open MPI's
  // or Slurm's, so `mpirun -np 4 gpt-rank train ...` works too.
  auto env = dist::DiscoverRankEnv();
  if (!env.ok()) {
    train::SetRankLogTag();
    return train::ReportSetupError(env.status());
  }
  train::SetRankLogTag(env->rank);
  // Checkpoint saves are fenced by run and generation (save_fence.h).
  trainer::SetProcessSaveOwner({env->run_id, env->restart_count});
  auto parsed =
      train::LoadTrainerConfig(config_path, sets, env->world_size, env->local_world_size);
  if (!parsed.ok()) {
    std::cerr << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (env->rank == 0) {
    for (const std::string& w : parsed->warnings) LOG_WARN << w;
  }
  if (coord::Status s = train::CheckTrainable(parsed->config); !s.ok()) {
    return train::ReportSetupError(s);
  }
  // Before anything is allocated: a config this node cannot hold is a clear error
  // with the plan's figures, not bad_alloc or the OOM killer in the first step.
  if (coord::Status s = plan::CheckHostMemory(parsed->config, std::max(1, env->local_world_size),
                                              plan::ReadHostMemoryLimits());
      !s.ok()) {
    return train::ReportSetupError(s);
  }
  InstallStopHandlers();
  // Like torchrun, do not let every local rank spawn a thread per core: with neither
  // training.threads nor OMP_NUM_THREADS given, the node's cores are shared out.
  const char* omp_env = std::getenv("OMP_NUM_THREADS");
  if (parsed->config.training.threads == 0 && (omp_env == nullptr || *omp_env == '\0') &&
      env->local_world_size > 1) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    parsed->config.training.threads = std::max(1, cores / env->local_world_size);
    LOG_INFO << "OMP_NUM_THREADS and training.threads unset: " << env->local_world_size
             << " local ranks share " << cores << " cores, " << parsed->config.training.threads
             << " thread(s) each";
  }
  const train::ParallelConfig& par = parsed->config.parallel;
  dist::ProcessGroupOptions pgo;
  pgo.rendezvous_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(par.rendezvous_timeout_s * 1000.0));
  pgo.collective_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(par.collective_timeout_s * 1000.0));
  auto group = dist::ProcessGroup::Init(*env, pgo);
  if (!group.ok()) return train::ReportSetupError(group.status());
  // Megatron's print_rank_0: the other ranks log only warnings and errors.
  if (env->rank != 0 && !coord::LogEnabled(coord::LogLevel::kDebug)) {
    coord::SetLogLevel(coord::LogLevel::kWarning);
  }
  parsed->config.parallel.local_rank = env->local_rank;
  auto groups =
      train::MakeParallelGroups(group->get(), parsed->config.parallel.tensor_model_parallel_size,
                                parsed->config.parallel.pipeline_model_parallel_size);
  if (!groups.ok()) return train::ReportSetupError(groups.status());
  auto trainer = train::Trainer::Create(parsed->config, &*groups, (*group)->store());
  if (!trainer.ok()) return train::ReportSetupError(trainer.status());
  coord::Status s = (*trainer)->Run();
  if (s.ok()) {
    // Every rank reports its peak RSS (ZeRO-3's memory test and `plan` comparisons
    // read it); the other ranks log only warnings, so this one line is let through.
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    if (!coord::LogEnabled(coord::LogLevel::kInfo)) coord::SetLogLevel(coord::LogLevel::kInfo);
    LOG_INFO << "peak resident memory: " << usage.ru_maxrss / 1024 << " MiB";
    return kExitOk;
  }
  LOG_ERROR << s.message();
  return s.code() == coord::StatusCode::kCancelled ? kExitTerminated : kExitFailed;
}

}  // namespace gpt_rank::cli
