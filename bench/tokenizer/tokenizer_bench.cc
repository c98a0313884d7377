// tokenizer_bench: encode throughput of gpt-rank's tokenizers (trainer/data/tokenizer.h)
// on a loose-JSON corpus, one thread; driven by bench/tokenizer_bench.py, which runs
// the npm reference (tokenizer_bench.js, transformers.js under node) beside it.
//
//   tokenizer_bench --input brown.jsonl [--passes 3]
//                   (--tokenizer-model tokenizer.json|DIR | --vocab-file V --merge-file M)
//
// Loads the tokenizer (timed), reads every document's "text", then encodes them all
// `passes` times with the same tokenizer: pass 1 starts with an empty BPE cache, the
// later ones find every piece in it (as in a long preprocess run). Prints one JSON
// line: {"load_s", "documents", "bytes", "tokens", "checksum", "pass_s": [...]}, the
// checksum (h = (31 h + id) mod 2^31-1 over all ids in order) being what the
// reference must print too. Exit status 1 with a message on stderr on any error.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "trainer/data/loose_json.h"
#include "trainer/data/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "tokenizer_bench: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string input;
  int passes = 3;
  trainer::data::TokenizerSpec spec;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Fail(flag + ": missing value");
    const std::string value = argv[++i];
    if (flag == "--input") {
      input = value;
    } else if (flag == "--passes") {
      passes = std::atoi(value.c_str());
    } else if (flag == "--tokenizer-model") {
      spec.model = value;
    } else if (flag == "--vocab-file") {
      spec.vocab_file = value;
    } else if (flag == "--merge-file") {
      spec.merge_file = value;
    } else {
      return Fail("unknown flag " + flag);
    }
  }
  if (input.empty() || passes < 1) return Fail("--input FILE and --passes >= 1 are required");

  const Clock::time_point t0 = Clock::now();
  auto tok = trainer::data::LoadTokenizer(spec);
  if (!tok.ok()) return Fail(tok.status().ToString());
  const double load_s = Seconds(t0, Clock::now());

  std::vector<std::string> texts;
  auto reader = trainer::data::LooseJsonReader::Open(input, {});
  if (!reader.ok()) return Fail(reader.status().ToString());
  std::string text;
  size_t bytes = 0;
  while (true) {
    auto more = (*reader)->Next(&text);
    if (!more.ok()) return Fail(more.status().ToString());
    if (!*more) break;
    bytes += text.size();
    texts.push_back(text);
  }

  std::vector<double> pass_s;
  size_t tokens = 0;
  int64_t checksum = 0;
  for (int p = 0; p < passes; ++p) {
    size_t n = 0;
    int64_t h = 0;
    const Clock::time_point start = Clock::now();
    for (const std::string& t : texts) {
      const std::vector<int32_t> ids = (*tok)->Encode(t);
      n += ids.size();
      for (int32_t id : ids) h = (h * 31 + id) % 2147483647;
    }
    pass_s.push_back(Seconds(start, Clock::now()));
    tokens = n;
    checksum = h;
  }
  std::printf(
      "{\"tokenizer\": \"%s\", \"load_s\": %.4f, \"documents\": %zu, \"bytes\": %zu, "
      "\"tokens\": %zu, \"checksum\": %lld, \"pass_s\": [",
      (*tok)->Describe().c_str(), load_s, texts.size(), bytes, tokens,
      static_cast<long long>(checksum));
  for (size_t i = 0; i < pass_s.size(); ++i) std::printf("%s%.4f", i ? ", " : "", pass_s[i]);
  std::printf("]}\n");
  return 0;
}
