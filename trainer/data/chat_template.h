// Chat templates: a conversation (ChatMessage list) rendered to token ids as the
// model's Hugging Face chat template does, with a per-token "trained" mask for
// supervised fine-tuning. One family today, ChatML (Qwen 2 / 2.5 / 3):
//   <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n
//   <|im_start|>assistant\n{a}<|im_end|>\n ...
// Trained: an assistant turn's content and its <|im_end|>; masked: system and user
// turns, every role header and the "\n" after <|im_end|> (ms-swift's split: the
// newline opens the next prompt). Pieces are tokenized one by one, as ms-swift's
// template encoder does, so a piece boundary is never inside a token.
// Templates are a table by name; "auto" reads tokenizer_config.json's chat_template
// and accepts only what it recognises (ChatML, with the default system prompt the
// template hard-codes), refusing anything else by name instead of guessing.
// Immutable after creation; Render needs the caller's tokenizer (not thread-safe).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// A rendered conversation: ids (N,) and trained (N,), 1 where the token is an
// assistant token (loss on it), 0 elsewhere.
struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;
};

class ChatTemplate {
 public:
  // A template of the table: "chatml" (no default system prompt: Qwen3), "qwen"
  // (Qwen2: "You are a helpful assistant."), "qwen2_5" (Qwen2.5: "You are Qwen,
  // created by Alibaba Cloud. You are a helpful assistant."). Unknown names are
  // InvalidArgument listing the known ones.
  static coord::StatusOr<ChatTemplate> ByName(const std::string& name);
  // The template a tokenizer_config.json's "chat_template" string is: ChatML when it
  // contains <|im_start|>, with the system text its first literal
  // '<|im_start|>system\n...<|im_end|>' holds as the default. Other templates
  // (Llama 3's <|start_header_id|>, Mistral's [INST] ...) are refused by name.
  static coord::StatusOr<ChatTemplate> FromJinja(const std::string& jinja);
  // name "auto" or "": tokenizer_config.json beside `tokenizer_path` (a tokenizer.json
  // or the model directory), else ByName(name). `default_system`, when set,
  // replaces the template's default system prompt ("" = none).
  static coord::StatusOr<ChatTemplate> Resolve(const std::string& name,
                                               const std::string& tokenizer_path,
                                               const std::optional<std::string>& default_system);

  const std::string& name() const { return name_; }
  // Prepended as the system turn when a conversation has none ("" = none).
  const std::string& default_system() const { return default_system_; }
  void set_default_system(std::string s) { default_system_ = std::move(s); }
  // The token that ends a turn (generation stops there).
  const char* end_token() const { return "<|im_end|>"; }

  // Token ids and mask of `messages` (roles system / user / assistant; a system turn
  // anywhere, the default one first when there is none), then, with
  // add_generation_prompt, "<|im_start|>assistant\n" (masked) for the model to
  // continue. InvalidArgument on an unknown role (messages[i].role named) or a
  // tokenizer without the template's special tokens.
  coord::StatusOr<ChatTokens> Render(const std::vector<ChatMessage>& messages, Tokenizer* tokenizer,
                                     bool add_generation_prompt) const;
  // The same conversation as text (what HF's apply_chat_template(tokenize=False) gives).
  std::string RenderText(const std::vector<ChatMessage>& messages,
                         bool add_generation_prompt) const;

 private:
  ChatTemplate(std::string name, std::string default_system)
      : name_(std::move(name)), default_system_(std::move(default_system)) {}

  std::string name_;
  std::string default_system_;
};

}  // namespace trainer::data
