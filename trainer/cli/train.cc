// `gpt-rank train --config job.json [--set training.train_iters=20 ...]`: one rank
// of training (trainer/train/trainer.h). SIGTERM/SIGINT stop the loop before the
// next micro-batch without saving (checkpoints are periodic): exit 143.
#include <csignal>
#include <iostream>

#include "common/logging.h"
#include "trainer/cli/commands.h"
#include "trainer/train/cli_args.h"
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
  train::SetRankLogTag();

  auto world_size = train::WorldSizeFromEnv();
  if (!world_size.ok()) return train::ReportSetupError(world_size.status());
  auto parsed = train::LoadTrainerConfig(config_path, sets, *world_size);
  if (!parsed.ok()) {
    std::cerr << parsed.status().message() << "\n";
    return kExitUsage;
  }
  for (const std::string& w : parsed->warnings) LOG_WARN << w;
  InstallStopHandlers();
  auto trainer = train::Trainer::Create(parsed->config);
  if (!trainer.ok()) return train::ReportSetupError(trainer.status());
  coord::Status s = (*trainer)->Run();
  if (s.ok()) return kExitOk;
  LOG_ERROR << s.message();
  return s.code() == coord::StatusCode::kCancelled ? kExitTerminated : kExitFailed;
}

}  // namespace gpt_rank::cli
