// Autoregressive sampling from a GptModel: greedy (temperature 0), or temperature +
// top-k sampling from a seeded generator, so a (checkpoint, prompt, seed) triple always
// gives the same text. Padded vocabulary ids (>= V) are never produced.
//
// Uses GptModel::Forward's probabilities (no KV cache: each new token re-runs the
// window, O(T^2) per token; fine for the demo and for checking a checkpoint).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt.h"

namespace trainer {

struct SampleOptions {
  int max_tokens = 64;       // tokens to generate (> 0)
  float temperature = 1.0f;  // 0: greedy argmax; else softmax(logits / temperature)
  int top_k = 0;             // 0: the whole vocabulary; else the k most likely ids
  uint64_t seed = 1234;      // sampling stream (ignored when greedy)
  int stop_token = -1;       // stop after emitting this id (e.g. <|endoftext|>); -1: never
};

// One next-token choice from a probability row. probs is (Vp,), only [0, V) is
// considered. u01 is a uniform draw in [0, 1) (unused when greedy). Ties go to the
// lowest id, so the choice is deterministic.
int SampleFromProbs(const float* probs, int V, const SampleOptions& options, double u01);

// Generates up to options.max_tokens ids after `prompt` (non-empty, ids in [0, V)).
// The model must have been created with max_batch >= 1; the context given to it is the
// last min(len, max_seq) tokens, where max_seq is the model's max_position_embeddings
// capped by its allocation. Returns only the new ids.
coord::StatusOr<std::vector<int32_t>> GenerateTokens(GptModel* model,
                                                     const std::vector<int32_t>& prompt,
                                                     const SampleOptions& options, int max_seq);

}  // namespace trainer
