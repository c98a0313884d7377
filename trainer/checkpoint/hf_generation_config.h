// Hugging Face's generation_config.json, for `gpt-rank generate`: the eos_token_id
// that ends a generation (Qwen2.5-Instruct lists two: <|im_end|> 151645 and
// <|endoftext|> 151643). The sampling defaults it may also hold are not applied; the
// command line sets those.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace trainer {

// eos_token_id of the file at path: one id or a list of ids (empty if the key is
// absent or null). Ids must be integers in [0, 2^31); anything else is an error naming
// the file.
coord::StatusOr<std::vector<int>> ReadHfEosTokenIds(const std::string& path);

// The generation_config.json beside a tokenizer given as a tokenizer.json file or as
// its directory (an HF model directory holds both); "" when there is none.
std::string GenerationConfigBeside(const std::string& tokenizer_model);

}  // namespace trainer
