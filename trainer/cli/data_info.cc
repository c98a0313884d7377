// `gpt-rank data-info --data-path PREFIX [--docs A:B] [--json]`: what an indexed
// dataset holds (dtype, counts) and the ids and decoded text of chosen documents.
// Decoding uses --vocab-file/--merge-file (by default the demo data's GPT-2 files)
// or a Hugging Face --tokenizer-model.
#include <iostream>

#include "common/fs.h"
#include "trainer/cli/commands.h"
#include "trainer/data/dataset_info.h"
#include "trainer/data/tokenizer.h"
#include "trainer/train/cli_args.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::cli {

namespace po = boost::program_options;

int RunDataInfo(const std::vector<std::string>& args) {
  const train::VerbInfo verb = {"data-info",
                                "data-info --data-path PREFIX [--docs A:B] [--json] "
                                "[--vocab-file V --merge-file M | --tokenizer-model T]",
                                "describe an indexed dataset (PREFIX.bin/.idx)"};
  const std::string gpt2 = train::ExpandEnv("${COORD_DATA_DIR:-${HOME}/.cache/coord}/gpt2/");
  std::string prefix, docs;
  trainer::data::TokenizerSpec spec;
  po::options_description options("options");
  options.add_options()("data-path", po::value(&prefix)->required(), "dataset prefix")(
      "docs", po::value(&docs)->default_value(""), "documents to show: A:B ([A, B)) or A")(
      "json", po::bool_switch(), "print JSON")(
      "vocab-file", po::value(&spec.vocab_file)->default_value(gpt2 + "encoder.json"),
      "GPT-2 vocab.json, to decode the documents")(
      "merge-file", po::value(&spec.merge_file)->default_value(gpt2 + "vocab.bpe"),
      "GPT-2 merges.txt")("tokenizer-type", po::value(&spec.type),
                          "GPT2BPETokenizer or HuggingFaceTokenizer (default: from the files)")(
      "tokenizer-model", po::value(&spec.model),
      "HuggingFaceTokenizer: tokenizer.json, or the model directory holding it");
  po::variables_map vm;
  int code = train::kExitOk;
  if (!train::ParseVerbArgs(args, verb, options, {}, &vm, &code)) return code;
  train::SetRankLogTag();
  auto range = trainer::data::ParseDocumentRange(docs);
  if (!range.ok()) {
    std::cerr << "gpt-rank data-info: --docs: " << range.status().message() << "\n";
    return train::kExitUsage;
  }
  // The demo's GPT-2 files are only the default when no other tokenizer is named.
  const bool defaulted = vm["vocab-file"].defaulted() && vm["merge-file"].defaulted();
  if (defaulted && (!spec.model.empty() || spec.type == "HuggingFaceTokenizer")) {
    spec.vocab_file.clear();
    spec.merge_file.clear();
  }
  if (auto type = trainer::data::ResolveTokenizerType(spec); !type.ok()) {
    std::cerr << "gpt-rank data-info: " << type.status().message() << "\n";
    return train::kExitUsage;
  }
  std::unique_ptr<trainer::data::Tokenizer> tokenizer;
  if (range->end > range->first) {
    auto tok = trainer::data::LoadTokenizer(spec);
    if (tok.ok()) {
      tokenizer = std::move(*tok);
    } else if (!defaulted || !spec.model.empty()) {
      return train::ReportSetupError(tok.status());
    } else {
      std::cerr << "gpt-rank data-info: no tokenizer (" << tok.status().message()
                << "): token ids only\n";
    }
  }
  auto d = trainer::data::DescribeDataset(prefix, *range, tokenizer.get());
  if (!d.ok()) return train::ReportSetupError(d.status());
  if (vm["json"].as<bool>()) {
    std::cout << trainer::data::DescriptionToJson(*d).dump(2) << "\n";
  } else {
    std::cout << trainer::data::DescriptionToText(*d);
  }
  return train::kExitOk;
}

}  // namespace gpt_rank::cli
