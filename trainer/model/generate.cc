// Sampling loop and next-token choice (see generate.h).
#include "trainer/model/generate.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace trainer {

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
  if (prompt.empty()) return coord::InvalidArgument("generate: empty prompt");
  if (options.max_tokens <= 0) return coord::InvalidArgument("generate: max_tokens must be > 0");
  if (options.temperature < 0.0f || !std::isfinite(options.temperature)) {
    return coord::InvalidArgument("generate: temperature must be >= 0");
  }
  if (options.top_k < 0) return coord::InvalidArgument("generate: top_k must be >= 0");
  if (max_seq <= 0 || max_seq > cfg.max_position_embeddings) {
    return coord::InvalidArgument("generate: max_seq out of range: " + std::to_string(max_seq));
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= V) {
      return coord::InvalidArgument("generate: prompt token " + std::to_string(id) +
                                    " outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  // mt19937_64's output sequence is fixed by the standard; the [0, 1) mapping below is
  // ours (std::uniform_real_distribution is not portable across standard libraries).
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
    const double u01 = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
    const int next = SampleFromProbs(last, V, options, u01);
    tokens.push_back(next);
    generated.push_back(next);
    if (next == options.stop_token) break;
  }
  return generated;
}

}  // namespace trainer
