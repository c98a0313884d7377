// gpt-rank: the trainer process that Coord starts on every rank, and its tools.
// `gpt-rank VERB [options]`; the verbs are a table, one file each in trainer/cli/
// (declared in trainer/cli/commands.h). Exit codes: 0 done, 1 failed, 2 bad usage.
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "common/logging.h"
#include "trainer/cli/commands.h"

namespace {

struct Verb {
  const char* name;
  int (*run)(const std::vector<std::string>& args);
  const char* summary;
};

const Verb kVerbs[] = {
    {"train", gpt_rank::cli::RunTrain, "train a GPT (--config job.json [--set K=V ...])"},
    {"plan", gpt_rank::cli::RunPlan, "validate a config; parameter count and memory plan"},
    {"preprocess", gpt_rank::cli::RunPreprocess, "loose JSON -> Megatron indexed dataset"},
    {"data-info", gpt_rank::cli::RunDataInfo, "what an indexed dataset holds"},
    {"generate", gpt_rank::cli::RunGenerate, "sample text from a checkpoint"},
    {"export-hf", gpt_rank::cli::RunExportHf, "checkpoint -> Hugging Face GPT-2 weights"},
    {"import-hf", gpt_rank::cli::RunImportHf, "Hugging Face GPT-2 weights -> checkpoint"},
};

void PrintUsage(std::ostream& out) {
  out << "usage: gpt-rank VERB [options]   (gpt-rank VERB --help for a verb's options)\n\n"
         "verbs:\n";
  for (const Verb& v : kVerbs) out << "  " << v.name << std::string(12 - std::strlen(v.name), ' ')
                                   << v.summary << "\n";
  out << "\nExit codes: 0 done, 1 failed, 2 bad usage or config.\n";
}

}  // namespace

int main(int argc, char** argv) {
  // A closed progress pipe must give EPIPE (reported once), not kill the rank.
  std::signal(SIGPIPE, SIG_IGN);
  coord::SetLogTag("gpt-rank");
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    PrintUsage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (const Verb& v : kVerbs) {
    if (args[0] == v.name) return v.run(args);
  }
  std::cerr << "gpt-rank: unknown verb '" << args[0] << "'\n\n";
  PrintUsage(std::cerr);
  return 2;
}
