// Autoregressive sampling: greedy (temperature 0), or temperature + top-k + top-p
// (nucleus) sampling from a seeded generator, so a (checkpoint, prompt, seed) triple
// always gives the same text. Padded vocabulary ids (>= V) are never produced.
//
// Two engines, the same sampling: GenerateWithCache runs a KvDecoder (kv_decoder.h:
// the prompt once, then one token per step over cached keys and values; what `gpt-rank
// generate` uses), GenerateTokens re-runs GptModel::Forward over the window every token
// (O(T^2) per token; the reference the cache is tested and benchmarked against).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt.h"

namespace trainer {

struct SampleOptions {
  int max_tokens = 64;           // tokens to generate (> 0)
  float temperature = 1.0f;      // 0: greedy argmax; else softmax(logits / temperature)
  int top_k = 0;                 // 0: the whole vocabulary; else the k most likely ids
  float top_p = 1.0f;            // (0, 1]: keep the most likely ids until their mass reaches top_p
  uint64_t seed = 1234;          // sampling stream (ignored when greedy)
  int stop_token = -1;           // stop after emitting this id (e.g. <|endoftext|>); -1: never
  std::vector<int> stop_tokens;  // more ids that stop likewise (<|im_end|>, HF's eos ids)
};

// Checks the options' ranges (the messages name the option).
coord::Status ValidateSampleOptions(const SampleOptions& options);

// One next-token choice from a probability row. probs is (Vp,), only [0, V) is
// considered. u01 is a uniform draw in [0, 1) (unused when greedy). Ties go to the
// lowest id, so the choice is deterministic. Order as Hugging Face's warpers:
// temperature, then top-k, then top-p on the tempered distribution.
int SampleFromProbs(const float* probs, int V, const SampleOptions& options, double u01);

// Generates up to options.max_tokens ids after `prompt` (non-empty, ids in [0, V)).
// The model must have been created with max_batch >= 1; the context given to it is the
// last min(len, max_seq) tokens, where max_seq is the model's max_position_embeddings
// capped by its allocation. Returns only the new ids (a stop id included).
coord::StatusOr<std::vector<int32_t>> GenerateTokens(GptModel* model,
                                                     const std::vector<int32_t>& prompt,
                                                     const SampleOptions& options, int max_seq);

// Why a generation ended.
enum class StopReason { kMaxTokens, kStopToken, kContextFull };
const char* StopReasonName(StopReason reason);

struct Generation {
  std::vector<int32_t> tokens;  // the new ids (a stop id included)
  StopReason stop = StopReason::kMaxTokens;
  int prompt_tokens = 0;
  double prefill_seconds = 0.0;  // the prompt's forward (and the first token's choice)
  int decode_tokens = 0;         // one-token forwards after the prefill
  double decode_seconds = 0.0;
};

// The KV-cache engine. params: the whole model's flat buffer (GptParamLayout(config)).
// The cache holds min(prompt + max_tokens - 1, max_position_embeddings) positions; a
// prompt longer than the context, or max_tokens beyond it, is refused (nothing
// allocated); a generation that fills the context stops there (kContextFull).
// Same seed and options give GenerateTokens' draws: greedy picks the same ids.
coord::StatusOr<Generation> GenerateWithCache(const GptConfig& config, const float* params,
                                              size_t num_params, const std::vector<int32_t>& prompt,
                                              const SampleOptions& options);

}  // namespace trainer
