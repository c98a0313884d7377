// Chat templates (chat_template.h): the table of named ChatML variants, recognising a
// tokenizer_config.json's Jinja template, and rendering a conversation piece by piece.
#include "trainer/data/chat_template.h"

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"

namespace trainer::data {
namespace {

// --- the table ---------------------------------------------------------------

struct NamedTemplate {
  const char* name;
  const char* default_system;
};
constexpr NamedTemplate kTemplates[] = {
    {.name = "chatml", .default_system = ""},
    {.name = "qwen", .default_system = "You are a helpful assistant."},
    {.name = "qwen2_5",
     .default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."},
};

std::string KnownNames() {
  std::string out;
  for (const NamedTemplate& t : kTemplates) out += std::string(out.empty() ? "" : ", ") + t.name;
  return out + " or auto";
}

// Markers of templates we do not render, to refuse them by name.
struct ForeignMarker {
  const char* marker;
  const char* family;
};
constexpr ForeignMarker kForeign[] = {
    {"<|start_header_id|>", "Llama 3"},
    {"[INST]", "Llama 2 / Mistral"},
    {"<start_of_turn>", "Gemma"},
    {"<|user|>", "Zephyr / Phi-3"},
};

// The literal system text of the first '<|im_start|>system\n...<|im_end|>' in the
// Jinja source whose body is plain text (no quote, brace or '+': not an expression),
// "" if none. The newline is "\n" escaped inside a Jinja string, or a real one.
std::string DefaultSystemIn(const std::string& jinja) {
  const std::string head = "<|im_start|>system";
  for (size_t at = jinja.find(head); at != std::string::npos; at = jinja.find(head, at + 1)) {
    size_t body = at + head.size();
    if (jinja.compare(body, 2, "\\n") == 0) {
      body += 2;
    } else if (jinja.compare(body, 1, "\n") == 0) {
      body += 1;
    } else {
      continue;
    }
    const size_t end = jinja.find("<|im_end|>", body);
    if (end == std::string::npos) break;
    const std::string text = jinja.substr(body, end - body);
    if (!text.empty() && text.find_first_of("'\"{}+") == std::string::npos) return text;
  }
  return "";
}

bool KnownRole(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant";
}

// The conversation with the default system turn first where it applies (HF: when
// messages[0] is not a system turn).
std::vector<ChatMessage> WithSystem(const std::vector<ChatMessage>& messages,
                                    const std::string& default_system) {
  if (default_system.empty() || (!messages.empty() && messages[0].role == "system")) {
    return messages;
  }
  std::vector<ChatMessage> out;
  out.reserve(messages.size() + 1);
  out.push_back({"system", default_system});
  out.insert(out.end(), messages.begin(), messages.end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Choosing the template

coord::StatusOr<ChatTemplate> ChatTemplate::ByName(const std::string& name) {
  for (const NamedTemplate& t : kTemplates) {
    if (name == t.name) return ChatTemplate(t.name, t.default_system);
  }
  return coord::InvalidArgument("unknown chat template \"" + name + "\" (known: " + KnownNames() +
                                ")");
}

coord::StatusOr<ChatTemplate> ChatTemplate::FromJinja(const std::string& jinja) {
  if (jinja.find("<|im_start|>") == std::string::npos) {
    for (const ForeignMarker& f : kForeign) {
      if (jinja.find(f.marker) != std::string::npos) {
        return coord::InvalidArgument(std::string("chat_template is a ") + f.family +
                                      " template (" + f.marker +
                                      "); only ChatML is supported (set data.chat_template)");
      }
    }
    return coord::InvalidArgument(
        "chat_template is not ChatML (no <|im_start|>) and not a template gpt-rank knows; "
        "name one with data.chat_template (" +
        KnownNames() + ")");
  }
  // Qwen3's template adds an empty <think></think> block to the last assistant turn,
  // which this renderer does not: refuse rather than train on a different text.
  if (jinja.find("<think>") != std::string::npos) {
    return coord::InvalidArgument(
        "chat_template is ChatML with <think> blocks (Qwen3), which gpt-rank does not render; "
        "set data.chat_template \"chatml\" to train plain ChatML turns");
  }
  return ChatTemplate("chatml (from tokenizer_config.json)", DefaultSystemIn(jinja));
}

coord::StatusOr<ChatTemplate> ChatTemplate::Resolve(
    const std::string& name, const std::string& tokenizer_path,
    const std::optional<std::string>& default_system) {
  auto resolved = [&]() -> coord::StatusOr<ChatTemplate> {
    if (!name.empty() && name != "auto") return ByName(name);
    // The tokenizer is a tokenizer.json or the directory holding one.
    std::string dir = tokenizer_path;
    if (!coord::IsDirectory(dir)) dir = dir.substr(0, dir.find_last_of('/') + 1);
    const std::string path = coord::JoinPath(dir.empty() ? "." : dir, "tokenizer_config.json");
    if (!coord::PathExists(path)) {
      return coord::NotFound("chat template auto: no " + path + " beside the tokenizer; name one " +
                             "with data.chat_template (" + KnownNames() + ")");
    }
    ASSIGN_OR_RETURN(const nlohmann::json j, coord::LoadJsonFile(path));
    if (!j.is_object() || !j.contains("chat_template") || !j["chat_template"].is_string()) {
      return coord::InvalidArgument(path + ": no chat_template string; name one with " +
                                    "data.chat_template (" + KnownNames() + ")");
    }
    auto t = FromJinja(j["chat_template"].get<std::string>());
    if (!t.ok()) return t.status().WithContext(path);
    return t;
  }();
  if (!resolved.ok()) return resolved.status();
  if (default_system.has_value()) resolved->set_default_system(*default_system);
  return resolved;
}

// ---------------------------------------------------------------------------
// Rendering

std::string ChatTemplate::RenderText(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt) const {
  std::string out;
  for (const ChatMessage& m : WithSystem(messages, default_system_)) {
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

coord::StatusOr<ChatTokens> ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                                 Tokenizer* tokenizer,
                                                 bool add_generation_prompt) const {
  const int32_t im_start = tokenizer->TokenId("<|im_start|>");
  const int32_t im_end = tokenizer->TokenId("<|im_end|>");
  if (im_start < 0 || im_end < 0) {
    return coord::InvalidArgument("chat template " + name_ +
                                  " needs <|im_start|> and <|im_end|>, " + "which the tokenizer (" +
                                  tokenizer->Describe() + ") does not have");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!KnownRole(messages[i].role)) {
      return coord::InvalidArgument("messages[" + std::to_string(i) + "].role: unknown role \"" +
                                    messages[i].role + "\" (system, user or assistant)");
    }
  }
  ChatTokens out;
  auto append = [&](const std::vector<int32_t>& ids, bool trained) {
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.trained.insert(out.trained.end(), ids.size(), trained ? 1 : 0);
  };
  const std::vector<int32_t> newline = tokenizer->Encode("\n");
  for (const ChatMessage& m : WithSystem(messages, default_system_)) {
    const bool assistant = m.role == "assistant";
    append({im_start}, false);
    append(tokenizer->Encode(m.role + "\n"), false);
    append(tokenizer->Encode(m.content), assistant);
    append({im_end}, assistant);
    append(newline, false);
  }
  if (add_generation_prompt) {
    append({im_start}, false);
    append(tokenizer->Encode("assistant\n"), false);
  }
  return out;
}

}  // namespace trainer::data
