// generate_bench: tokens/s of generation with the KV cache (GenerateWithCache) and
// without it (GenerateTokens: the whole window re-run every token), on one random
// model held in memory (no checkpoint, no tokenizer: the cost is the model's). Greedy,
// no stop token, so both engines produce exactly --new-tokens ids; whether the two
// produced the same ids is reported too. One JSON line per engine on stdout; the
// driver bench/generate_bench.py repeats runs and prints the table.
//
//   generate_bench --family qwen2 --layers 4 --hidden 256 --heads 8 --kv-heads 2
//                  --ffn 704 --vocab 50257 --prompt 32 --new-tokens 256 --engines cache,nocache
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "trainer/model/generate.h"

namespace {

struct Args {
  std::string family = "qwen2", engines = "cache,nocache";
  int layers = 4, hidden = 256, heads = 8, kv_heads = 2, ffn = 704, vocab = 50257;
  int prompt = 32, new_tokens = 256;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    int* ints[] = {&a->layers, &a->hidden, &a->heads,  &a->kv_heads,
                   &a->ffn,    &a->vocab,  &a->prompt, &a->new_tokens};
    const char* names[] = {"--layers", "--hidden", "--heads",  "--kv-heads",
                           "--ffn",    "--vocab",  "--prompt", "--new-tokens"};
    bool found = false;
    for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); ++j) {
      if (k == names[j]) {
        *ints[j] = std::atoi(v.c_str());
        found = true;
      }
    }
    if (k == "--family") {
      a->family = v;
    } else if (k == "--engines") {
      a->engines = v;
    } else if (!found) {
      std::fprintf(stderr, "generate_bench: unknown option %s\n", k.c_str());
      return false;
    }
  }
  return a->family == "qwen2" || a->family == "gpt2";
}

trainer::GptConfig Config(const Args& a) {
  trainer::GptConfig c;
  c.num_layers = a.layers;
  c.hidden_size = a.hidden;
  c.num_attention_heads = a.heads;
  c.vocab_size = a.vocab;
  c.seq_length = c.max_position_embeddings = a.prompt + a.new_tokens;
  c.hidden_dropout = c.attention_dropout = 0.0f;
  if (a.family == "qwen2") {  // as bench/llama_bench.py's tiny Qwen2 shape
    c.normalization = trainer::Normalization::kRMSNorm;
    c.layernorm_epsilon = 1e-6f;
    c.position_embedding_type = trainer::PositionEmbedding::kRope;
    c.rotary_base = 1e6f;
    c.swiglu = true;
    c.ffn_hidden_size = a.ffn;
    c.group_query_attention = true;
    c.num_query_groups = a.kv_heads;
    c.add_bias_linear = false;
    c.add_qkv_bias = true;
  }
  return c;
}

// Whether the comma-separated list names `engine`.
bool Wants(const std::string& list, const std::string& engine) {
  return ("," + list + ",").find("," + engine + ",") != std::string::npos;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) return 2;
  const trainer::GptConfig config = Config(a);
  auto model = trainer::GptModel::Create(config, 1, config.max_position_embeddings);
  if (!model.ok()) {
    std::fprintf(stderr, "generate_bench: %s\n", model.status().message().c_str());
    return 2;
  }
  (*model)->InitMegatron(1234);
  std::mt19937 gen(7);
  std::vector<int32_t> prompt(static_cast<size_t>(a.prompt));
  for (int32_t& id : prompt) id = static_cast<int32_t>(gen() % static_cast<unsigned>(a.vocab));
  trainer::SampleOptions o;
  o.max_tokens = a.new_tokens;
  o.temperature = 0.0f;

  std::vector<int32_t> cached, uncached;
  if (Wants(a.engines, "cache")) {
    const double t0 = Now();
    auto g = trainer::GenerateWithCache(config, (*model)->param_data(), (*model)->num_params(),
                                        prompt, o);
    const double s = Now() - t0;
    if (!g.ok()) {
      std::fprintf(stderr, "generate_bench: %s\n", g.status().message().c_str());
      return 1;
    }
    cached = g->tokens;
    std::printf(
        "{\"engine\": \"cache\", \"new_tokens\": %zu, \"seconds\": %.6f, "
        "\"prefill_seconds\": %.6f, \"decode_tokens\": %d, \"decode_seconds\": %.6f}\n",
        g->tokens.size(), s, g->prefill_seconds, g->decode_tokens, g->decode_seconds);
    std::fflush(stdout);
  }
  if (Wants(a.engines, "nocache")) {
    const double t0 = Now();
    auto ids = trainer::GenerateTokens(model->get(), prompt, o, config.max_position_embeddings);
    const double s = Now() - t0;
    if (!ids.ok()) {
      std::fprintf(stderr, "generate_bench: %s\n", ids.status().message().c_str());
      return 1;
    }
    uncached = *ids;
    std::printf("{\"engine\": \"nocache\", \"new_tokens\": %zu, \"seconds\": %.6f}\n", ids->size(),
                s);
  }
  if (!cached.empty() && !uncached.empty()) {
    size_t same = 0;
    while (same < cached.size() && same < uncached.size() && cached[same] == uncached[same]) ++same;
    std::printf("{\"engine\": \"compare\", \"same_tokens\": %s, \"common_prefix\": %zu}\n",
                cached == uncached ? "true" : "false", same);
  }
  return 0;
}
