// `gpt-rank plan --config job.json [--hosts hosts.txt | --nodes N --gpus-per-node G]
// [--gpu v100-32gb|a100-40gb|a100-80gb|h100-80gb] [--train-tokens 2.5e9] [--json]`:
// validates the config for that cluster and prints the plan of trainer/plan/plan.h
// (memory per GPU of every pipeline stage and per node, time per iteration with the
// pipeline bubble, the training time for the token budget, the largest micro-batch that
// fits, DeepSpeed's estimates).
// Nothing is allocated, so it plans configs/100B.json on any machine. Exit 0 when it
// fits, 1 when it does not (the plan says which resource and what to change), 2 for
// bad usage or config.
#include "trainer/plan/plan.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "common/fs.h"
#include "common/hostfile.h"
#include "common/json_file.h"
#include "common/logging.h"
#include "trainer/cli/commands.h"
#include "trainer/data/tokenizer.h"
#include "trainer/plan/plan_format.h"
#include "trainer/train/cli_args.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::cli {
namespace {

namespace po = boost::program_options;
using nlohmann::json;

// launch.nproc_per_node and launch.nnodes of the job file (an elastic "MIN:MAX" plans
// MAX, the job's full size), 0 when absent. A file that cannot be read or parsed is left
// to the config load that follows (it names the position); a launch value that is not
// a count (1e300, "many", -1) is an error here, naming the file and the key.
struct LaunchShape {
  int nproc_per_node = 0;
  int nnodes = 0;
};

coord::StatusOr<LaunchShape> LaunchShapeOf(const std::string& path) {
  LaunchShape shape;
  coord::StatusOr<std::string> text = coord::ReadFile(path);
  if (!text.ok()) return shape;
  coord::StatusOr<json> parsed = coord::ParseJson(*text, path);
  if (!parsed.ok() || !parsed->is_object()) return shape;
  auto launch = parsed->find("launch");
  if (launch == parsed->end() || !launch->is_object()) return shape;
  // n as a count 1..max, or an error showing what the file says (`as_written`).
  // Negative integers parse as number_integer, the others as number_unsigned.
  auto count = [&path](const char* key, const json& n, const json& as_written,
                       uint64_t max) -> coord::StatusOr<int> {
    if (n.is_number_unsigned() && n.get<uint64_t>() >= 1 && n.get<uint64_t>() <= max) {
      return coord::JsonGet<int>(n);
    }
    return coord::InvalidArgument(
        path + ": launch." + key + ": expected an integer 1.." + std::to_string(max) +
        (as_written.is_string() ? " or \"MIN:MAX\"" : "") + ", got " +
        (as_written.is_number() || as_written.is_string() ? as_written.dump()
                                                          : as_written.type_name()));
  };
  if (auto n = launch->find("nproc_per_node"); n != launch->end() && !n->is_null()) {
    ASSIGN_OR_RETURN(shape.nproc_per_node, count("nproc_per_node", *n, *n, 1024));
  }
  if (auto n = launch->find("nnodes"); n != launch->end() && !n->is_null()) {
    json max = *n;
    if (n->is_string()) {  // "N" or "MIN:MAX": plan MAX
      const std::string& v = n->get_ref<const std::string&>();
      const std::string digits = v.substr(v.find(':') == std::string::npos ? 0 : v.find(':') + 1);
      if (!digits.empty() && digits.size() <= 6 &&
          std::all_of(digits.begin(), digits.end(), ::isdigit)) {
        max = std::stoul(digits);
      }
    }
    ASSIGN_OR_RETURN(shape.nnodes, count("nnodes", max, *n, 100000));
  }
  return shape;
}

// The cluster from --hosts (slots= per host, else launch.nproc_per_node), or
// --nodes / --gpus-per-node, or launch.nnodes nodes of launch.nproc_per_node (one node
// when nnodes is absent; WORLD_SIZE ranks when nproc_per_node is too).
coord::StatusOr<plan::ClusterShape> Cluster(const po::variables_map& vm,
                                            const std::string& config_path) {
  plan::ClusterShape shape;
  ASSIGN_OR_RETURN(const LaunchShape launch, LaunchShapeOf(config_path));
  const int nproc = launch.nproc_per_node;
  shape.gpus_per_node = vm.count("gpus-per-node") ? vm["gpus-per-node"].as<int>() : nproc;
  if (vm.count("hosts")) {
    if (vm.count("nodes")) return coord::InvalidArgument("give --hosts or --nodes, not both");
    const std::string path = vm["hosts"].as<std::string>();
    ASSIGN_OR_RETURN(std::vector<coord::HostEntry> hosts, coord::LoadHostfile(path));
    shape.nodes = static_cast<int>(hosts.size());
    int slots = 0;  // of the first host that gives slots=
    for (const coord::HostEntry& h : hosts) {
      if (h.slots == 0 || vm.count("gpus-per-node")) continue;
      if (slots != 0 && h.slots != slots) {
        return coord::InvalidArgument(path + ":" + std::to_string(h.line) + ": slots=" +
                                      std::to_string(h.slots) + " differs from other hosts (" +
                                      std::to_string(slots) +
                                      "); plan assumes one node type: pass --gpus-per-node");
      }
      slots = h.slots;
    }
    if (slots != 0) shape.gpus_per_node = slots;
  } else if (vm.count("nodes")) {
    shape.nodes = vm["nodes"].as<int>();
  } else if (launch.nnodes > 0) {
    shape.nodes = launch.nnodes;
  } else if (shape.gpus_per_node == 0) {
    ASSIGN_OR_RETURN(shape.gpus_per_node, train::WorldSizeFromEnv());
  }
  if (shape.gpus_per_node <= 0) shape.gpus_per_node = 1;
  if (shape.nodes < 1 || shape.nodes > 100000 || shape.gpus_per_node > 1024) {
    return coord::InvalidArgument("--nodes / --gpus-per-node: expected 1..100000 nodes of "
                                  "1..1024 GPUs");
  }
  return shape;
}

void PrintHeader(const train::TrainerConfig& c, const std::string& path,
                 const std::string& vocab_note) {
  const trainer::GptConfig& m = c.model;
  const train::TrainingConfig& t = c.training;
  std::printf("config: %s: valid\n", path.c_str());
  std::printf("model: %d layers, hidden %d, %d heads (head size %d), seq %d, vocab %d (%s), "
              "padded to %d\n", m.num_layers, m.hidden_size, m.num_attention_heads,
              m.head_size(), m.seq_length, m.vocab_size, vocab_note.c_str(),
              m.padded_vocab_size());
  std::printf("batch: micro %lld, global %lld; %lld iterations, %lld samples\n",
              static_cast<long long>(t.micro_batch_size),
              static_cast<long long>(t.global_batch_size), static_cast<long long>(t.train_iters),
              static_cast<long long>(t.train_iters * t.global_batch_size));
}

}  // namespace

int RunPlan(const std::vector<std::string>& args) {
  const train::VerbInfo verb = {
      "plan",
      "plan --config F [--hosts H | --nodes N --gpus-per-node G] [--gpu NAME] "
      "[--train-tokens T] [--json]",
      "validate a job config for a cluster; print memory per GPU and node, time per "
      "iteration, training time and what to change if it does not fit"};
  std::string config_path, gpu_name = "v100-32gb";
  std::vector<std::string> sets;
  double host_gb = 0, train_tokens = 0;
  po::options_description options("options");
  options.add_options()("config,c", po::value(&config_path)->required(), "job spec JSON")(
      "set", po::value(&sets)->composing(), "override a config key by its JSON path")(
      "hosts", po::value<std::string>(), "hosts file (one node per line, slots=GPUs)")(
      "nodes", po::value<int>(), "number of nodes (instead of --hosts)")(
      "gpus-per-node", po::value<int>(), "GPUs (ranks) per node; default launch.nproc_per_node")(
      "gpu", po::value(&gpu_name), "v100-32gb, a100-40gb, a100-80gb or h100-80gb")(
      "host-memory-gb", po::value(&host_gb), "host memory per node in GiB (default: the GPU "
                                             "table's node)")(
      "train-tokens", po::value(&train_tokens), "tokens to train on, e.g. 2.5e9 or 26e9 "
                                                "(default: train_iters x global batch x seq)")(
      "json", "print the plan as one JSON object");
  po::variables_map vm;
  int code = train::kExitOk;
  if (!train::ParseVerbArgs(args, verb, options, {}, &vm, &code)) return code;
  if (vm.count("train-tokens") && !(train_tokens >= 1 && train_tokens < 1e18)) {
    return train::ReportSetupError(coord::InvalidArgument(
        "--train-tokens: expected a token count from 1 to 1e18 (e.g. 2.5e9), got " +
        std::to_string(train_tokens)));
  }
  auto gpu = plan::FindGpuSpec(gpu_name);
  if (!gpu.ok()) return train::ReportSetupError(gpu.status());
  auto cluster = Cluster(vm, config_path);
  if (!cluster.ok()) return train::ReportSetupError(cluster.status());
  auto parsed = train::LoadTrainerConfig(config_path, sets, cluster->world_size(),
                                         cluster->gpus_per_node);
  if (!parsed.ok()) {
    std::cerr << parsed.status().message() << "\n";
    return train::kExitUsage;
  }
  for (const std::string& w : parsed->warnings) std::cerr << "warning: " << w << "\n";
  train::TrainerConfig& c = parsed->config;
  std::string vocab_note = "from model.vocab_size";
  if (!c.vocab_size_given) {
    const trainer::data::TokenizerSpec spec = train::TokenizerSpecOf(c.data);
    auto tok = trainer::data::LoadTokenizer(spec);
    if (tok.ok()) {
      vocab_note = "from " + (spec.model.empty() ? c.data.vocab_file : spec.model);
    } else if (spec.model.empty()) {
      vocab_note = "GPT-2's 50257 (vocab file not readable here)";
    } else {
      vocab_note = "GPT-2's 50257 (" + spec.model + " not readable here; set model.vocab_size)";
    }
    if (tok.ok()) c.model.vocab_size = (*tok)->vocab_size();
  }
  const plan::Plan p =
      plan::MakePlan(c, *cluster, *gpu, host_gb * 1024.0 * 1024.0 * 1024.0, train_tokens);
  coord::Status trainable = train::CheckTrainable(c);
  if (vm.count("json")) {
    json j = plan::PlanToJson(p, c);
    j["config"] = config_path;
    j["trainable"] = trainable.ok();
    // replace: a config path that is not UTF-8 (a Latin-1 file name) must not throw.
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    PrintHeader(c, config_path, vocab_note);
    std::printf("%s", plan::FormatPlanText(p, c).c_str());
    std::printf("trainable by this gpt-rank: %s\n",
                trainable.ok() ? "yes" : ("no (plan only):\n" + trainable.message()).c_str());
  }
  return p.fits() ? train::kExitOk : train::kExitFailed;
}

}  // namespace gpt_rank::cli
