// `gpt-rank preprocess`: Megatron's tools/preprocess_data.py for loose JSON
// (--dataset-impl mmap, one sequence per document): writes
// {output_prefix}_{json_key}_document.{bin,idx}, as Megatron names them, with the
// tokenizer Megatron's flags name (GPT-2 files, or a Hugging Face tokenizer.json).
#include <iostream>

#include "common/logging.h"
#include "trainer/cli/commands.h"
#include "trainer/data/preprocess.h"
#include "trainer/data/tokenizer.h"
#include "trainer/train/cli_args.h"

namespace gpt_rank::cli {

namespace po = boost::program_options;

int RunPreprocess(const std::vector<std::string>& args) {
  const train::VerbInfo verb = {
      "preprocess",
      "preprocess --input data.json --output-prefix P (--vocab-file V --merge-file M | "
      "--tokenizer-type HuggingFaceTokenizer --tokenizer-model T) [--append-eod] "
      "[--json-key text] [--skip-bad-lines] [--workers N]",
      "tokenize loose JSON into Megatron's indexed dataset (P_text_document.bin/.idx)"};
  trainer::data::PreprocessOptions o;
  trainer::data::TokenizerSpec spec;
  int workers = 1;
  po::options_description options("options");
  options.add_options()("input", po::value(&o.input)->required(),
                        "loose JSON, one {\"text\": ...} per line")(
      "output-prefix", po::value(&o.output_prefix)->required(), "output prefix")(
      "vocab-file", po::value(&spec.vocab_file), "GPT-2 vocab.json (GPT2BPETokenizer)")(
      "merge-file", po::value(&spec.merge_file), "GPT-2 merges.txt (GPT2BPETokenizer)")(
      "tokenizer-type", po::value(&spec.type),
      "GPT2BPETokenizer or HuggingFaceTokenizer (default: from the files given)")(
      "tokenizer-model", po::value(&spec.model),
      "HuggingFaceTokenizer: tokenizer.json, or the model directory holding it")(
      "append-eod", po::bool_switch(), "end each document with <|endoftext|>")(
      "json-key", po::value(&o.json_key)->default_value("text"), "the field holding the text")(
      "skip-bad-lines", po::bool_switch(&o.skip_bad_lines),
      "skip (and count) lines that are not JSON objects with the key; default: fail")(
      "workers", po::value(&workers)->default_value(1),
      "accepted for Megatron compatibility; tokenizing is single-threaded")(
      "dataset-impl", po::value<std::string>(), "accepted: mmap only");
  po::variables_map vm;
  int code = train::kExitOk;
  if (!train::ParseVerbArgs(args, verb, options, {}, &vm, &code)) return code;
  train::SetRankLogTag();
  o.append_eod = vm["append-eod"].as<bool>();
  if (auto type = trainer::data::ResolveTokenizerType(spec); !type.ok()) {
    std::cerr << "gpt-rank preprocess: " << type.status().message() << "\n";
    return train::kExitUsage;
  }
  if (vm.count("dataset-impl") && vm["dataset-impl"].as<std::string>() != "mmap") {
    std::cerr << "gpt-rank preprocess: --dataset-impl: only mmap is supported\n";
    return train::kExitUsage;
  }
  if (workers > 1) {
    LOG_INFO << "--workers " << workers << ": tokenizing on one thread";
  }
  auto tok = trainer::data::LoadTokenizer(spec);
  if (!tok.ok()) return train::ReportSetupError(tok.status());
  LOG_INFO << "tokenizer: " << (*tok)->Describe();
  o.output_prefix = trainer::data::MegatronOutputPrefix(o.output_prefix, o.json_key);
  auto stats = trainer::data::PreprocessLooseJson(o, tok->get());
  if (!stats.ok()) return train::ReportSetupError(stats.status());
  std::cout << "wrote " << o.output_prefix << ".bin/.idx: " << stats->documents << " documents, "
            << stats->tokens << " tokens (" << trainer::data::DTypeName(stats->dtype) << "), "
            << stats->empty_documents << " empty documents left out, " << stats->skipped_lines
            << " bad lines skipped\n";
  return train::kExitOk;
}

}  // namespace gpt_rank::cli
