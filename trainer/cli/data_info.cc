// `gpt-rank data-info --data-path PREFIX [--docs A:B] [--json]`: what an indexed
// dataset holds (dtype, counts) and the ids and decoded text of chosen documents.
// Decoding uses --vocab-file/--merge-file, by default the demo data's GPT-2 files.
#include <iostream>

#include "common/fs.h"
#include "trainer/cli/commands.h"
#include "trainer/data/dataset_info.h"
#include "trainer/train/cli_args.h"
#include "trainer/train/trainer_config.h"

namespace gpt_rank::cli {

namespace po = boost::program_options;

int RunDataInfo(const std::vector<std::string>& args) {
  const train::VerbInfo verb = {"data-info",
                                "data-info --data-path PREFIX [--docs A:B] [--json] "
                                "[--vocab-file V --merge-file M]",
                                "describe an indexed dataset (PREFIX.bin/.idx)"};
  const std::string gpt2 = train::ExpandEnv("${COORD_DATA_DIR:-${HOME}/.cache/coord}/gpt2/");
  std::string prefix, docs, vocab, merges;
  po::options_description options("options");
  options.add_options()("data-path", po::value(&prefix)->required(), "dataset prefix")(
      "docs", po::value(&docs)->default_value(""), "documents to show: A:B ([A, B)) or A")(
      "json", po::bool_switch(), "print JSON")(
      "vocab-file", po::value(&vocab)->default_value(gpt2 + "encoder.json"),
      "GPT-2 vocab.json, to decode the documents")(
      "merge-file", po::value(&merges)->default_value(gpt2 + "vocab.bpe"), "GPT-2 merges.txt");
  po::variables_map vm;
  int code = train::kExitOk;
  if (!train::ParseVerbArgs(args, verb, options, {}, &vm, &code)) return code;
  train::SetRankLogTag();
  auto range = trainer::data::ParseDocumentRange(docs);
  if (!range.ok()) {
    std::cerr << "gpt-rank data-info: --docs: " << range.status().message() << "\n";
    return train::kExitUsage;
  }
  std::unique_ptr<trainer::data::Gpt2Tokenizer> tokenizer;
  if (range->end > range->first) {
    auto tok = trainer::data::Gpt2Tokenizer::Load(vocab, merges);
    if (tok.ok()) {
      tokenizer = std::move(*tok);
    } else if (!vm["vocab-file"].defaulted()) {
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
