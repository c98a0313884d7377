// `gpt-rank plan --config job.json`: validates the config and prints the parameter
// count and the memory plan without training (nothing is allocated, so it works for
// configs/10B.json and configs/100B.json on any machine). Parallel layouts the
// trainer does not run yet are sized approximately and named as plan-only.
#include <cstdio>
#include <iostream>

#include "common/logging.h"
#include "trainer/cli/commands.h"
#include "trainer/data/bpe_tokenizer.h"
#include "trainer/model/gpt_params.h"
#include "trainer/train/cli_args.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::cli {
namespace {

namespace po = boost::program_options;

double GiB(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

// Per-rank bytes under tensor/pipeline parallel and ZeRO (approximate: Megatron
// splits the linear layers and the vocabulary by tp and the layers by pp; ZeRO
// stage s shards optimizer (s >= 1), gradients (s >= 2) and params (s = 3) over dp).
void PrintPerRank(const train::TrainerConfig& c, const trainer::MemoryPlan& plan) {
  const train::ParallelConfig& p = c.parallel;
  const double mp = static_cast<double>(p.tensor_model_parallel_size) *
                    p.pipeline_model_parallel_size;
  const double dp = std::max(1.0, static_cast<double>(p.world_size) / mp);
  const double params = plan.param_bytes / mp / (p.zero_stage >= 3 ? dp : 1.0);
  const double grads = plan.grad_bytes / mp / (p.zero_stage >= 2 ? dp : 1.0);
  const double optim = plan.optimizer_bytes / mp / (p.zero_stage >= 1 ? dp : 1.0);
  const bool ckpt = c.model.checkpoint_activations;
  const double acts =
      (ckpt ? plan.activation_bytes_checkpointed : plan.activation_bytes) / mp +
      plan.backward_bytes / static_cast<double>(p.tensor_model_parallel_size);
  std::printf("per rank (tp %d, pp %d, dp %.0f, ZeRO stage %d%s), approximate, fp32:\n",
              p.tensor_model_parallel_size, p.pipeline_model_parallel_size, dp, p.zero_stage,
              p.cpu_optimizer ? ", optimizer on CPU" : "");
  std::printf("  parameters            %10.2f GiB\n", GiB(params));
  std::printf("  gradients             %10.2f GiB\n", GiB(grads));
  if (p.cpu_optimizer) {
    std::printf("  optimizer (Adam m,v)  %10.2f GiB in host memory (0 on the device)\n",
                GiB(optim));
  } else {
    std::printf("  optimizer (Adam m,v)  %10.2f GiB\n", GiB(optim));
  }
  std::printf("  activations           %10.2f GiB\n", GiB(acts));
  std::printf("  device total          %10.2f GiB\n",
              GiB(params + grads + acts + (p.cpu_optimizer ? 0.0 : optim)));
}

}  // namespace

int RunPlan(const std::vector<std::string>& args) {
  const train::VerbInfo verb = {"plan", "plan --config F [--set KEY=VALUE ...]",
                                "validate a job config; print parameter count and memory plan"};
  std::string config_path;
  std::vector<std::string> sets;
  po::options_description options("options");
  options.add_options()("config,c", po::value(&config_path)->required(), "job spec JSON")(
      "set", po::value(&sets)->composing(), "override a config key by its JSON path");
  po::variables_map vm;
  int code = train::kExitOk;
  if (!train::ParseVerbArgs(args, verb, options, {}, &vm, &code)) return code;
  auto world_size = train::WorldSizeFromEnv();
  if (!world_size.ok()) return train::ReportSetupError(world_size.status());
  auto parsed = train::LoadTrainerConfig(config_path, sets, *world_size);
  if (!parsed.ok()) {
    std::cerr << parsed.status().message() << "\n";
    return train::kExitUsage;
  }
  for (const std::string& w : parsed->warnings) std::cerr << "warning: " << w << "\n";
  train::TrainerConfig& c = parsed->config;
  std::string vocab_note = "from model.vocab_size";
  if (!c.vocab_size_given) {
    auto tok = trainer::data::Gpt2Tokenizer::Load(c.data.vocab_file, c.data.merge_file);
    vocab_note = tok.ok() ? "from " + c.data.vocab_file
                          : "GPT-2's 50257 (vocab file not readable here)";
    if (tok.ok()) c.model.vocab_size = (*tok)->vocab_size();
  }
  const trainer::GptConfig& m = c.model;
  const train::TrainingConfig& t = c.training;
  const trainer::GptParamLayout layout(m);
  const trainer::MemoryPlan plan =
      trainer::PlanMemory(m, static_cast<int>(t.micro_batch_size), m.seq_length);
  std::printf("config: %s: valid\n", config_path.c_str());
  std::printf("model: %d layers, hidden %d, %d heads (head size %d), seq %d, vocab %d (%s), "
              "padded to %d\n", m.num_layers, m.hidden_size, m.num_attention_heads,
              m.head_size(), m.seq_length, m.vocab_size, vocab_note.c_str(),
              m.padded_vocab_size());
  std::printf("parameters: %zu (%.3f B)\n", layout.num_params(), layout.num_params() / 1e9);
  std::printf("batch: micro %lld, global %lld, world size %d; %lld iterations, %lld samples\n",
              static_cast<long long>(t.micro_batch_size),
              static_cast<long long>(t.global_batch_size), c.parallel.world_size,
              static_cast<long long>(t.train_iters),
              static_cast<long long>(t.train_iters * t.global_batch_size));
  std::printf("memory plan, one rank holding the whole model (micro batch %lld):\n%s",
              static_cast<long long>(t.micro_batch_size),
              trainer::FormatMemoryPlan(plan, m.checkpoint_activations).c_str());
  const train::ParallelConfig& p = c.parallel;
  if (p.tensor_model_parallel_size > 1 || p.pipeline_model_parallel_size > 1 ||
      p.zero_stage > 0 || p.cpu_optimizer || p.world_size > 1) {
    PrintPerRank(c, plan);
  }
  if (p.precision != "fp32") {
    std::printf("precision: %s requested; the CPU backend trains in fp32 (figures above are "
                "fp32)\n", p.precision.c_str());
  }
  coord::Status trainable = train::CheckTrainable(c);
  std::printf("trainable by this gpt-rank: %s\n",
              trainable.ok() ? "yes" : ("no (plan only):\n" + trainable.message()).c_str());
  return train::kExitOk;
}

}  // namespace gpt_rank::cli
