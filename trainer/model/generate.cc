// Sampling loops and next-token choice (see generate.h).
#include "trainer/model/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>

#include "trainer/model/kv_decoder.h"

namespace trainer {

namespace {

// One uniform [0, 1) draw per step, greedy or not, so both engines consume the stream
// alike. mt19937_64's output sequence is fixed by the standard; the [0, 1) mapping is
// ours (std::uniform_real_distribution is not portable across standard libraries).
double NextU01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

bool IsStop(const SampleOptions& o, int id) {
  return id == o.stop_token ||
         std::find(o.stop_tokens.begin(), o.stop_tokens.end(), id) != o.stop_tokens.end();
}

coord::Status CheckPrompt(const std::vector<int32_t>& prompt, int V) {
  if (prompt.empty()) return coord::InvalidArgument("generate: empty prompt");
  for (int32_t id : prompt) {
    if (id < 0 || id >= V) {
      return coord::InvalidArgument("generate: prompt token " + std::to_string(id) +
                                    " outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  return coord::Status::Ok();
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

coord::Status ValidateSampleOptions(const SampleOptions& o) {
  if (o.max_tokens <= 0) return coord::InvalidArgument("generate: max_tokens must be > 0");
  if (o.temperature < 0.0f || !std::isfinite(o.temperature)) {
    return coord::InvalidArgument("generate: temperature must be >= 0");
  }
  if (o.top_k < 0) return coord::InvalidArgument("generate: top_k must be >= 0");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    return coord::InvalidArgument("generate: top_p must be in (0, 1]");
  }
  return coord::Status::Ok();
}

int SampleFromProbs(const float* probs, int V, const SampleOptions& options, double u01) {
  // Candidate ids, most likely first, ties by id (stable): greedy is candidates[0].
  std::vector<int> ids(static_cast<size_t>(V));
  for (int i = 0; i < V; ++i) ids[static_cast<size_t>(i)] = i;
  const auto more_likely = [probs](int a, int b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  };
  const bool greedy = options.temperature <= 0.0f || options.top_k == 1;
  size_t k = (options.top_k > 0 && options.top_k < V) ? static_cast<size_t>(options.top_k)
                                                      : static_cast<size_t>(V);
  if (greedy) k = 1;
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    more_likely);
  if (greedy) return ids[0];
  // softmax(logits / T) == normalize(p^(1/T)): logits differ from log p by a constant.
  // Computed in double relative to the top candidate so p^(1/T) cannot overflow.
  const double inv_t = 1.0 / options.temperature;
  const double log_top = std::log(static_cast<double>(probs[ids[0]]));
  std::vector<double> w(k);
  double total = 0.0;
  for (size_t i = 0; i < k; ++i) {
    const double p = probs[ids[i]];
    w[i] = p > 0.0 ? std::exp((std::log(p) - log_top) * inv_t) : 0.0;  // zero stays zero
    total += w[i];
  }
  if (options.top_p < 1.0f) {
    // Nucleus: the shortest most-likely-first prefix whose mass reaches top_p (HF keeps
    // a token while the mass before it is below top_p; the top one always).
    double mass = 0.0, kept = 0.0;
    size_t keep = 0;
    while (keep < k && (keep == 0 || mass < options.top_p * total)) {
      mass += w[keep];
      kept += w[keep];
      ++keep;
    }
    k = keep;
    total = kept;
  }
  double target = u01 * total, acc = 0.0;
  for (size_t i = 0; i < k; ++i) {
    acc += w[i];
    if (target < acc && w[i] > 0.0) return ids[i];
  }
  for (size_t i = k; i-- > 0;) {  // rounding left target at the very end
    if (w[i] > 0.0) return ids[i];
  }
  return ids[0];
}

coord::StatusOr<std::vector<int32_t>> GenerateTokens(GptModel* model,
                                                     const std::vector<int32_t>& prompt,
                                                     const SampleOptions& options, int max_seq) {
  const GptConfig& cfg = model->config();
  const int V = cfg.vocab_size, Vp = cfg.padded_vocab_size();
  RETURN_IF_ERROR(CheckPrompt(prompt, V));
  RETURN_IF_ERROR(ValidateSampleOptions(options));
  if (max_seq <= 0 || max_seq > cfg.max_position_embeddings) {
    return coord::InvalidArgument("generate: max_seq out of range: " + std::to_string(max_seq));
  }
  std::mt19937_64 rng(options.seed);
  std::vector<int32_t> tokens(prompt);  // prompt + generated so far
  std::vector<int32_t> generated;
  std::vector<int> window, targets;  // (1, T)
  const StepOptions eval{/*training=*/false, /*rng_step=*/0};
  for (int step = 0; step < options.max_tokens; ++step) {
    const size_t T = std::min(tokens.size(), static_cast<size_t>(max_seq));
    window.assign(tokens.end() - static_cast<std::ptrdiff_t>(T), tokens.end());
    targets.assign(T, 0);  // the loss is unused; any valid id will do
    auto loss = model->Forward(window.data(), targets.data(), 1, static_cast<int>(T), eval);
    if (!loss.ok()) return loss.status();
    const float* last = model->probs() + (T - 1) * static_cast<size_t>(Vp);  // (Vp,)
    const int next = SampleFromProbs(last, V, options, NextU01(rng));
    tokens.push_back(next);
    generated.push_back(next);
    if (IsStop(options, next)) break;
  }
  return generated;
}

const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kMaxTokens:
      return "max tokens";
    case StopReason::kStopToken:
      return "stop token";
    case StopReason::kContextFull:
      return "context full";
  }
  return "?";
}

coord::StatusOr<Generation> GenerateWithCache(const GptConfig& config, const float* params,
                                              size_t num_params, const std::vector<int32_t>& prompt,
                                              const SampleOptions& options) {
  RETURN_IF_ERROR(CheckPrompt(prompt, config.vocab_size));
  RETURN_IF_ERROR(ValidateSampleOptions(options));
  const int context = config.max_position_embeddings;
  const int P = static_cast<int>(std::min<size_t>(prompt.size(), static_cast<size_t>(INT32_MAX)));
  if (P > context) {
    return coord::InvalidArgument("generate: the prompt has " + std::to_string(prompt.size()) +
                                  " tokens, longer than the model's context of " +
                                  std::to_string(context));
  }
  if (options.max_tokens > context) {
    return coord::InvalidArgument("generate: max_tokens " + std::to_string(options.max_tokens) +
                                  " exceeds the model's context of " + std::to_string(context));
  }
  // The last new token is never fed back, so the cache needs P + max_tokens - 1 rows
  // (in 64 bits: both are at most the context here).
  const int capacity =
      static_cast<int>(std::min<int64_t>(int64_t{P} + options.max_tokens - 1, context));
  ASSIGN_OR_RETURN(std::unique_ptr<KvDecoder> decoder,
                   KvDecoder::Create(config, params, num_params, capacity));
  Generation out;
  out.prompt_tokens = P;
  std::mt19937_64 rng(options.seed);
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const float* probs, decoder->Forward(prompt.data(), P));
  int next = SampleFromProbs(probs, config.vocab_size, options, NextU01(rng));
  out.prefill_seconds = Seconds(start);
  out.tokens.push_back(next);
  start = std::chrono::steady_clock::now();
  while (true) {
    if (IsStop(options, next)) {
      out.stop = StopReason::kStopToken;
      break;
    }
    if (static_cast<int>(out.tokens.size()) >= options.max_tokens) break;
    if (decoder->length() >= decoder->capacity()) {
      out.stop = StopReason::kContextFull;
      break;
    }
    ASSIGN_OR_RETURN(probs, decoder->Forward(&next, 1));
    next = SampleFromProbs(probs, config.vocab_size, options, NextU01(rng));
    out.tokens.push_back(next);
    ++out.decode_tokens;
  }
  out.decode_seconds = Seconds(start);
  return out;
}

}  // namespace trainer
