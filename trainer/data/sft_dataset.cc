// Chat datasets (sft_dataset.h): the four line formats, rendering, truncation, the
// skip-or-fail rule and the held-out split.
#include "trainer/data/sft_dataset.h"

#include <algorithm>
#include <fstream>
#include <numeric>

#include "common/json_file.h"
#include "trainer/data/numpy_random.h"

namespace trainer::data {
namespace {

using json = nlohmann::json;

coord::Status Bad(const std::string& path, const std::string& why) {
  return coord::InvalidArgument(path + ": " + why);
}

// j[key] as a string; InvalidArgument naming `path`.key otherwise.
coord::StatusOr<std::string> StringAt(const json& j, const char* key, const std::string& path) {
  const std::string where = path.empty() ? key : path + "." + key;
  if (!j.contains(key)) return Bad(where, "missing");
  if (!j[key].is_string()) return Bad(where, "not a string");
  return j[key].get<std::string>();
}

// An optional string key: "" when absent or null.
coord::StatusOr<std::string> OptionalString(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::string();
  return StringAt(j, key, "");
}

coord::StatusOr<std::vector<ChatMessage>> FromMessages(const json& j) {
  const json& m = j["messages"];
  if (!m.is_array()) return Bad("messages", "not an array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m[i].is_object()) return Bad(at, "not an object");
    ASSIGN_OR_RETURN(std::string role, StringAt(m[i], "role", at));
    ASSIGN_OR_RETURN(std::string content, StringAt(m[i], "content", at));
    if (role != "system" && role != "user" && role != "assistant") {
      return Bad(at + ".role", "unknown role \"" + role + "\" (system, user or assistant)");
    }
    out.push_back({std::move(role), std::move(content)});
  }
  return out;
}

coord::StatusOr<std::vector<ChatMessage>> FromConversations(const json& j,
                                                            const std::string& system) {
  const json& c = j["conversations"];
  if (!c.is_array()) return Bad("conversations", "not an array");
  std::vector<ChatMessage> out;
  if (!system.empty()) out.push_back({"system", system});
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string at = "conversations[" + std::to_string(i) + "]";
    if (!c[i].is_object()) return Bad(at, "not an object");
    ASSIGN_OR_RETURN(const std::string from, StringAt(c[i], "from", at));
    ASSIGN_OR_RETURN(std::string value, StringAt(c[i], "value", at));
    std::string role;
    if (from == "human" || from == "user") {
      role = "user";
    } else if (from == "gpt" || from == "assistant") {
      role = "assistant";
    } else if (from == "system") {
      role = "system";
    } else {
      return Bad(at + ".from", "unknown role \"" + from + "\" (system, human or gpt)");
    }
    out.push_back({std::move(role), std::move(value)});
  }
  return out;
}

coord::StatusOr<std::vector<ChatMessage>> FromQuery(const json& j, const std::string& system) {
  std::vector<ChatMessage> out;
  if (!system.empty()) out.push_back({"system", system});
  if (j.contains("history") && !j["history"].is_null()) {
    const json& h = j["history"];
    if (!h.is_array()) return Bad("history", "not an array");
    for (size_t i = 0; i < h.size(); ++i) {
      const std::string at = "history[" + std::to_string(i) + "]";
      if (!h[i].is_array() || h[i].size() != 2 || !h[i][0].is_string() || !h[i][1].is_string()) {
        return Bad(at, "not a [query, response] pair of strings");
      }
      out.push_back({"user", h[i][0].get<std::string>()});
      out.push_back({"assistant", h[i][1].get<std::string>()});
    }
  }
  ASSIGN_OR_RETURN(std::string query, StringAt(j, "query", ""));
  out.push_back({"user", std::move(query)});
  if (j.contains("response")) {
    ASSIGN_OR_RETURN(std::string response, StringAt(j, "response", ""));
    out.push_back({"assistant", std::move(response)});
  }
  return out;
}

coord::StatusOr<std::vector<ChatMessage>> FromAlpaca(const json& j, const std::string& system) {
  std::vector<ChatMessage> out;
  if (!system.empty()) out.push_back({"system", system});
  ASSIGN_OR_RETURN(std::string query, StringAt(j, "instruction", ""));
  ASSIGN_OR_RETURN(const std::string input, OptionalString(j, "input"));
  if (!input.empty()) query += "\n" + input;
  out.push_back({"user", std::move(query)});
  if (j.contains("output")) {
    ASSIGN_OR_RETURN(std::string output, StringAt(j, "output", ""));
    out.push_back({"assistant", std::move(output)});
  }
  return out;
}

// One JSONL line through the shared parser (nesting bounded, 1e400 and invalid UTF-8
// refused with their column); the reason, like the others, leaves file:line to the
// caller: "not valid JSON at column 2: object key - invalid literal; ...".
coord::StatusOr<json> ParseLine(const std::string& raw) {
  coord::StatusOr<json> j = coord::ParseJson(raw, "");
  if (j.ok()) return j;
  // ParseJson says ":1:COLUMN: invalid JSON: what" (one line), or ": invalid JSON: what".
  std::string what = j.status().message();
  std::string column;
  const size_t end = what.rfind(":1:", 0) == 0 ? what.find(':', 3) : std::string::npos;
  if (end != std::string::npos) {
    column = " at column " + what.substr(3, end - 3);
    what = what.substr(end);
  }
  const std::string kTag = ": invalid JSON: ";
  if (what.rfind(kTag, 0) == 0) what = what.substr(kTag.size());
  return coord::InvalidArgument("not valid JSON" + column + ": " + what);
}

// A sample held to max_length by the rule; false when it must be dropped (delete).
bool Truncate(SftSample* s, const SftLoadOptions& o, bool* cut) {
  *cut = false;
  const auto n = static_cast<int64_t>(s->ids.size());
  if (o.max_length <= 0 || n <= o.max_length) return true;
  if (o.truncation == Truncation::kDelete) return false;
  *cut = true;
  if (o.truncation == Truncation::kRight) {
    s->ids.resize(static_cast<size_t>(o.max_length));
    s->trained.resize(static_cast<size_t>(o.max_length));
  } else {
    const auto drop = static_cast<std::ptrdiff_t>(n - o.max_length);
    s->ids.erase(s->ids.begin(), s->ids.begin() + drop);
    s->trained.erase(s->trained.begin(), s->trained.begin() + drop);
  }
  return true;
}

}  // namespace

coord::StatusOr<std::vector<ChatMessage>> ParseConversation(const json& line) {
  if (!line.is_object()) return coord::InvalidArgument("the line is not a JSON object");
  if (line.contains("messages")) return FromMessages(line);
  ASSIGN_OR_RETURN(const std::string system, OptionalString(line, "system"));
  if (line.contains("conversations")) return FromConversations(line, system);
  if (line.contains("query")) return FromQuery(line, system);
  if (line.contains("instruction")) return FromAlpaca(line, system);
  return coord::InvalidArgument(
      "not a conversation: no messages, conversations, query or instruction key");
}

coord::StatusOr<Truncation> ParseTruncation(const std::string& name) {
  if (name == "delete") return Truncation::kDelete;
  if (name == "left") return Truncation::kLeft;
  if (name == "right") return Truncation::kRight;
  return coord::InvalidArgument("unknown truncation_strategy \"" + name +
                                "\" (delete, left or right)");
}

coord::StatusOr<SftData> LoadSftJsonl(const std::string& path, const ChatTemplate& chat_template,
                                      Tokenizer* tokenizer, const SftLoadOptions& options) {
  std::ifstream in(path);
  if (!in) return coord::NotFound(path + ": cannot open");
  SftData data;
  std::string text;
  int64_t line = 0;
  // The sample of one line, or why the line is not one.
  auto sample_of = [&](const std::string& raw) -> coord::StatusOr<SftSample> {
    ASSIGN_OR_RETURN(const json j, ParseLine(raw));
    ASSIGN_OR_RETURN(const std::vector<ChatMessage> chat, ParseConversation(j));
    if (std::none_of(chat.begin(), chat.end(),
                     [](const ChatMessage& m) { return m.role == "assistant"; })) {
      return coord::InvalidArgument("no assistant turn");
    }
    ASSIGN_OR_RETURN(ChatTokens t, chat_template.Render(chat, tokenizer, false));
    SftSample s{std::move(t.ids), std::move(t.trained), line};
    const size_t n = s.ids.size();
    bool cut = false;
    if (!Truncate(&s, options, &cut)) {
      return coord::InvalidArgument(std::to_string(n) + " tokens, longer than max_length " +
                                    std::to_string(options.max_length) +
                                    " (truncation_strategy delete)");
    }
    // The first token is never a target, so only trained[1..] counts.
    if (std::count(s.trained.begin() + 1, s.trained.end(), 1) == 0) {
      return coord::InvalidArgument("no assistant token left after truncation to " +
                                    std::to_string(options.max_length));
    }
    if (cut) ++data.truncated;
    return s;
  };
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++data.lines;
    auto s = sample_of(text);
    if (s.ok()) {
      data.samples.push_back(std::move(*s));
      continue;
    }
    if (options.strict) {
      return coord::InvalidArgument(path + ":" + std::to_string(line) + ": " +
                                    s.status().message());
    }
    data.skipped.push_back({line, s.status().message()});
  }
  return data;
}

void SplitSftSamples(std::vector<SftSample> all, double ratio, uint32_t seed,
                     std::vector<SftSample>* train, std::vector<SftSample>* valid) {
  train->clear();
  valid->clear();
  const size_t n = all.size();
  size_t n_valid = static_cast<size_t>(ratio * static_cast<double>(n));
  if (ratio > 0.0 && n_valid == 0 && n >= 2) n_valid = 1;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  NumpyRandomState rng(seed);
  rng.Shuffle(order.data(), order.size());
  std::vector<uint8_t> held(n, 0);
  for (size_t i = 0; i < n_valid; ++i) held[order[i]] = 1;
  for (size_t i = 0; i < n; ++i) (held[i] ? valid : train)->push_back(std::move(all[i]));
}

}  // namespace trainer::data
