// Chat templates (trainer/data/chat_template.h) on the tiny Qwen-shaped tokenizer:
// the ChatML rendering and its trained mask token by token, the default system
// prompt, the generation prompt, choosing the template from a tokenizer_config.json
// (Qwen2 / Qwen2.5 Jinja sources) and the refusals (unknown name, role, template).
#include "trainer/data/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tiny_chat_tokenizer.h"
#include "trainer/data/hf_tokenizer.h"

namespace trainer::data {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using testing::kTinyImEnd;
using testing::kTinyImStart;

constexpr int32_t kHello = 259, kWor = 262, kNewline = '\n';  // tiny_vocab.h's ids

// Qwen2.5-7B-Instruct's chat_template, the parts that matter (JSON-decoded: "\n"
// inside the Jinja strings is a backslash and an n).
const char kQwen25Jinja[] =
    R"({%- if tools %}{{- '<|im_start|>system\n' }}{%- if messages[0]['role'] == 'system' %})"
    R"({{- messages[0]['content'] }}{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You )"
    R"(are a helpful assistant.' }}{%- endif %}{%- else %}{%- if messages[0]['role'] == 'system' )"
    R"(%}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %})"
    R"({{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful )"
    R"(assistant.<|im_end|>\n' }}{%- endif %}{%- endif %})";
const char kQwen2Jinja[] =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %})"
    R"({{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %})"
    R"({{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}})"
    R"({% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";
const char kLlama3Jinja[] =
    R"({{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }})";

// The tiny vocab spells text without merges byte by byte (id = byte).
std::vector<int32_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

class ChatTemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = dir_.File("tokenizer.json");
    WriteTextFile(path, testing::TinyChatTokenizerJson().dump());
    auto tok = HfBpeTokenizer::LoadTokenizerJson(path);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tok_ = std::move(*tok);
  }
  // Appends a piece to the expected ids and mask.
  void Expect(const std::vector<int32_t>& ids, bool trained) {
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    trained_.insert(trained_.end(), ids.size(), trained ? 1 : 0);
  }
  void ExpectTurn(const std::string& role, const std::vector<int32_t>& content) {
    const bool assistant = role == "assistant";
    Expect({kTinyImStart}, false);
    Expect(Bytes(role + "\n"), false);
    Expect(content, assistant);
    Expect({kTinyImEnd}, assistant);
    Expect({kNewline}, false);
  }
  TempDir dir_;
  std::unique_ptr<HfBpeTokenizer> tok_;
  std::vector<int32_t> ids_;
  std::vector<uint8_t> trained_;
};

TEST_F(ChatTemplateTest, MultiTurnMaskIsExactlyTheAssistantSpans) {
  auto t = ChatTemplate::ByName("chatml");
  ASSERT_TRUE(t.ok());
  t->set_default_system("sys");
  const std::vector<ChatMessage> chat = {
      {"user", "hi"}, {"assistant", "hello"}, {"user", "ok"}, {"assistant", "hello wor"}};
  auto r = t->Render(chat, tok_.get(), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectTurn("system", Bytes("sys"));
  ExpectTurn("user", Bytes("hi"));
  ExpectTurn("assistant", {kHello});
  ExpectTurn("user", Bytes("ok"));
  ExpectTurn("assistant", {kHello, kWor});
  ASSERT_EQ(r->ids.size(), r->trained.size());
  EXPECT_EQ(r->ids, ids_);
  for (size_t i = 0; i < ids_.size(); ++i) {
    EXPECT_EQ(r->trained[i], trained_[i]) << "token " << i << " (id " << r->ids[i] << ")";
  }
  // The ids decode to the text HF's template renders.
  auto text = tok_->Decode(r->ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, t->RenderText(chat, false));
  EXPECT_EQ(*text,
            "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nok<|im_end|>\n"
            "<|im_start|>assistant\nhello wor<|im_end|>\n");
}

TEST_F(ChatTemplateTest, OwnSystemTurnReplacesTheDefaultAndGenerationPromptIsMasked) {
  auto t = ChatTemplate::ByName("qwen2_5");
  ASSERT_TRUE(t.ok());
  auto r = t->Render({{"system", "be brief"}, {"user", "hi"}}, tok_.get(), true);
  ASSERT_TRUE(r.ok());
  ExpectTurn("system", Bytes("be brief"));
  ExpectTurn("user", Bytes("hi"));
  Expect({kTinyImStart}, false);
  Expect(Bytes("assistant\n"), false);
  EXPECT_EQ(r->ids, ids_);
  EXPECT_EQ(r->trained, trained_);
  // Without a system turn Qwen2.5's default comes first.
  EXPECT_EQ(t->RenderText({{"user", "hi"}}, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  // chatml (Qwen3) has no default.
  EXPECT_EQ(ChatTemplate::ByName("chatml")->RenderText({{"user", "hi"}}, false),
            "<|im_start|>user\nhi<|im_end|>\n");
}

TEST_F(ChatTemplateTest, ChosenFromTokenizerConfig) {
  auto from = [&](const std::string& jinja) {
    WriteTextFile(dir_.File("tokenizer_config.json"),
                  nlohmann::json{{"chat_template", jinja}}.dump());
    return ChatTemplate::Resolve("auto", dir_.File("tokenizer.json"), std::nullopt);
  };
  auto q25 = from(kQwen25Jinja);
  ASSERT_TRUE(q25.ok()) << q25.status().ToString();
  EXPECT_EQ(q25->default_system(),
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  auto q2 = from(kQwen2Jinja);
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->default_system(), "You are a helpful assistant.");
  auto llama = from(kLlama3Jinja);
  ASSERT_FALSE(llama.ok());
  EXPECT_NE(llama.status().message().find("Llama 3"), std::string::npos)
      << llama.status().message();
  EXPECT_NE(llama.status().message().find("tokenizer_config.json"), std::string::npos);
  auto qwen3 = from(std::string(kQwen2Jinja) + "{{- '<think>\\n\\n</think>\\n\\n' }}");
  ASSERT_FALSE(qwen3.ok());
  EXPECT_NE(qwen3.status().message().find("<think>"), std::string::npos);
  // A configured default wins, "" meaning none; the directory works as well.
  auto own = ChatTemplate::Resolve("", dir_.path(), std::string(""));
  ASSERT_FALSE(own.ok());  // still Llama's file
  WriteTextFile(dir_.File("tokenizer_config.json"), nlohmann::json{{"x", 1}}.dump());
  auto none = ChatTemplate::Resolve("auto", dir_.path(), std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no chat_template"), std::string::npos);
  auto named = ChatTemplate::Resolve("qwen", dir_.path(), std::string(""));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->default_system(), "");
}

TEST_F(ChatTemplateTest, Refusals) {
  auto unknown = ChatTemplate::ByName("llama3");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("\"llama3\""), std::string::npos);
  EXPECT_NE(unknown.status().message().find("qwen2_5"), std::string::npos);
  auto t = ChatTemplate::ByName("chatml");
  auto role = t->Render({{"user", "hi"}, {"tool", "x"}}, tok_.get(), false);
  ASSERT_FALSE(role.ok());
  EXPECT_NE(role.status().message().find("messages[1].role"), std::string::npos);
  EXPECT_NE(role.status().message().find("\"tool\""), std::string::npos);
  // A tokenizer without <|im_start|> cannot render ChatML.
  nlohmann::json j = testing::TinyChatTokenizerJson();
  j["added_tokens"] = nlohmann::json::array();
  WriteTextFile(dir_.File("plain.json"), j.dump());
  auto plain = HfBpeTokenizer::LoadTokenizerJson(dir_.File("plain.json"));
  ASSERT_TRUE(plain.ok());
  auto r = t->Render({{"user", "hi"}}, plain->get(), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("<|im_start|>"), std::string::npos);
}

}  // namespace
}  // namespace trainer::data
