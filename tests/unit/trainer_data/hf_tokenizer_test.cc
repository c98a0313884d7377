// The Hugging Face tokenizer on small files the tests write (no download): the
// cl100k-style pre-tokenizer, merges as strings or pairs, added tokens before BPE
// with their flags, NFC, round trips of arbitrary bytes, the slow files, the factory's
// type rules, and every refusal naming what it refuses. The comparison with the
// real Qwen tokenizer is hf_reference_test.cc.
#include "trainer/data/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tiny_vocab.h"
#include "trainer/data/added_tokens.h"
#include "trainer/data/cl100k_pretokenizer.h"
#include "trainer/data/tokenizer.h"

namespace trainer::data {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;
using json = nlohmann::json;
using testing::MakeTinyVocab;
using testing::TinyVocab;

const char kQwen2Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> Pieces(const std::string& text, int max_digits) {
  std::vector<std::string> out;
  for (const Piece& p : PreTokenizeCl100k(text, max_digits)) {
    out.push_back(text.substr(p.offset, p.length));
  }
  return out;
}

using V = std::vector<std::string>;

// Hand-checked against node's regex engine (the reference runs in hf_reference_test).
TEST(Cl100kPreTokenizerTest, QwenAndLlama3Pieces) {
  EXPECT_EQ(Pieces("Hello world 123", 1), (V{"Hello", " world", " ", "1", "2", "3"}));
  EXPECT_EQ(Pieces("Hello world 123", 3), (V{"Hello", " world", " ", "123"}));
  EXPECT_EQ(Pieces("12345", 3), (V{"123", "45"}));
  EXPECT_EQ(Pieces("I'M fine, you'RE", 1), (V{"I", "'M", " fine", ",", " you", "'RE"}));
  EXPECT_EQ(Pieces("a  \n\n  b", 1), (V{"a", "  \n\n", " ", " b"}));
  EXPECT_EQ(Pieces("x!!\n\ny", 1), (V{"x", "!!\n\n", "y"}));
  EXPECT_EQ(Pieces("x !!\n", 1), (V{"x", " !!\n"}));
  EXPECT_EQ(Pieces("\t\tx", 1), (V{"\t", "\tx"}));
  EXPECT_EQ(Pieces("$hello", 1), (V{"$hello"}));
  EXPECT_EQ(Pieces("", 1), V{});
  // Bad bytes are "other" characters of one byte; the pieces still tile the text.
  const std::string bad("a\xff\xfe b\xc3", 6);
  size_t at = 0;
  for (const Piece& p : PreTokenizeQwen2(bad)) {
    EXPECT_EQ(p.offset, at);
    at += p.length;
  }
  EXPECT_EQ(at, bad.size());
}

// A Qwen2-shaped tokenizer.json over the tiny vocab (256 bytes + "hello", " wor").
json TinyTokenizerJson(bool merges_as_pairs) {
  const TinyVocab tiny = MakeTinyVocab();
  json vocab = json::parse(tiny.vocab_json);
  vocab.erase("<|endoftext|>");  // an added token here, as in Qwen's file
  json merges = json::array();
  size_t pos = tiny.merges_txt.find('\n') + 1;
  while (pos < tiny.merges_txt.size()) {
    const size_t nl = tiny.merges_txt.find('\n', pos);
    const std::string line = tiny.merges_txt.substr(pos, nl - pos);
    pos = nl + 1;
    const size_t sp = line.find(' ');
    merges.push_back(merges_as_pairs ? json::array({line.substr(0, sp), line.substr(sp + 1)})
                                     : json(line));
  }
  auto added = [](int id, const char* content, bool special) {
    return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", special}};
  };
  return json{{"version", "1.0"},
              {"added_tokens",
               json::array({added(263, "<|endoftext|>", true), added(264, "<|im_start|>", true),
                            added(265, "<|im_end|>", true), added(266, "<|im", false)})},
              {"normalizer", {{"type", "NFC"}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers", json::array({{{"type", "Split"},
                                                {"pattern", {{"Regex", kQwen2Regex}}},
                                                {"behavior", "Isolated"},
                                                {"invert", false}},
                                               {{"type", "ByteLevel"},
                                                {"add_prefix_space", false},
                                                {"trim_offsets", false},
                                                {"use_regex", false}}})}}},
              {"post_processor", {{"type", "ByteLevel"}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}}}};
}

class HfTokenizerTest : public ::testing::Test {
 protected:
  std::string Write(const json& j, const std::string& name = "tokenizer.json") {
    const std::string path = dir_.File(name);
    WriteTextFile(path, j.dump(1));
    return path;
  }
  std::unique_ptr<HfBpeTokenizer> Load(const json& j) {
    auto tok = HfBpeTokenizer::LoadTokenizerJson(Write(j));
    EXPECT_TRUE(tok.ok()) << tok.status().ToString();
    return tok.ok() ? std::move(*tok) : nullptr;
  }
  // The error message of loading j, "" if it loads.
  std::string Error(const json& j) {
    auto tok = HfBpeTokenizer::LoadTokenizerJson(Write(j));
    EXPECT_FALSE(tok.ok()) << j.dump().substr(0, 200) << " was accepted";
    return tok.ok() ? "" : tok.status().message();
  }
  TempDir dir_;
};

TEST_F(HfTokenizerTest, MergesAsStringsOrPairsEncodeAlike) {
  auto strings = Load(TinyTokenizerJson(false));
  auto pairs = Load(TinyTokenizerJson(true));
  ASSERT_TRUE(strings && pairs);
  const std::vector<int32_t> ids = strings->Encode("hello world");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(strings->TokenBytes(ids[0]), "hello");
  EXPECT_EQ(strings->TokenBytes(ids[1]), " wor");
  EXPECT_EQ(ids[2], 'l');
  EXPECT_EQ(ids[3], 'd');
  EXPECT_EQ(pairs->Encode("hello world"), ids);
  EXPECT_EQ(strings->vocab_size(), 267);
  EXPECT_EQ(strings->eod_id(), 263);
  // Digits one at a time: no merge across them even if one existed.
  EXPECT_EQ(strings->Encode("2024"), (std::vector<int32_t>{'2', '0', '2', '4'}));
}

TEST_F(HfTokenizerTest, AddedTokensComeBeforeBpeLongestFirst) {
  auto tok = Load(TinyTokenizerJson(false));
  ASSERT_TRUE(tok);
  const int32_t hello = tok->TokenId("hello");
  ASSERT_GE(hello, 256);
  // "<|im_start|>" wins over its prefix "<|im" where both match; "<|im" alone elsewhere.
  EXPECT_EQ(tok->Encode("<|im_start|>hello<|im"), (std::vector<int32_t>{264, hello, 266}));
  EXPECT_EQ(tok->Encode("x<|endoftext|><|im_end|>y"), (std::vector<int32_t>{'x', 263, 265, 'y'}));
  // Not an added token: plain bytes.
  EXPECT_EQ(tok->Encode("<|i"), (std::vector<int32_t>{'<', '|', 'i'}));
  auto back = tok->Decode(tok->Encode("a<|im_start|>user\nhello<|im_end|>\n"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "a<|im_start|>user\nhello<|im_end|>\n");
  EXPECT_EQ(tok->TokenId("<|im_end|>"), 265);
  EXPECT_EQ(tok->TokenId("no such token"), -1);
  EXPECT_TRUE(tok->added_tokens().FindId(263)->special);
  EXPECT_FALSE(tok->added_tokens().FindId(266)->special);
}

TEST(AddedTokensTest, StripAndSingleWordFlags) {
  AddedTokens t;
  AddedToken l{1, "<L>", true, /*lstrip=*/true, false, false, false};
  AddedToken r{2, "<R>", true, false, /*rstrip=*/true, false, false};
  AddedToken w{3, "<W>", true, false, false, /*single_word=*/true, false};
  ASSERT_TRUE(t.Add(l) && t.Add(r) && t.Add(w));
  EXPECT_FALSE(t.Add(l));  // the same content twice
  auto shown = [](const std::string& text, const AddedTokens& tokens) {
    std::string s;
    for (const auto& seg : tokens.Split(text)) {
      s += seg.token_id >= 0 ? "#" + std::to_string(seg.token_id)
                             : "[" + text.substr(seg.offset, seg.length) + "]";
    }
    return s;
  };
  EXPECT_EQ(shown("a \t<L>  b", t), "[a]#1[  b]");             // lstrip takes " \t"
  EXPECT_EQ(shown("a  <R> \n b", t), "[a  ]#2[b]");            // rstrip takes " \n "
  EXPECT_EQ(shown("\xE3\x80\x80<L>", t), "#1");                // U+3000 is whitespace too
  EXPECT_EQ(shown("x<W>y <W> _<W>", t), "[x<W>y ]#3[ _<W>]");  // only between non-words
  EXPECT_EQ(shown("", t), "");
}

TEST_F(HfTokenizerTest, NfcBeforePreTokenizing) {
  auto tok = Load(TinyTokenizerJson(false));
  ASSERT_TRUE(tok);
  EXPECT_TRUE(tok->nfc());
  EXPECT_EQ(tok->Encode("e\xCC\x81"), tok->Encode("\xC3\xA9"));  // e + U+0301 == é
  auto back =
      tok->Decode(tok->Encode("caf"
                              "e\xCC\x81"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "caf\xC3\xA9");
  json raw = TinyTokenizerJson(false);
  raw["normalizer"] = nullptr;
  auto plain = Load(raw);
  ASSERT_TRUE(plain);
  EXPECT_NE(plain->Encode("e\xCC\x81"), plain->Encode("\xC3\xA9"));
  // Ill-formed UTF-8 passes NFC untouched, so arbitrary bytes round-trip.
  for (const std::string& s : {std::string("a\xff\x00z", 4), std::string("\xc3(e\xCC", 5),
                               std::string("x<|im_end|>\xe2\x82")}) {
    auto b = tok->Decode(tok->Encode(s));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*b, s);
  }
  auto bad = tok->Decode({5, 99999});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("99999"), std::string::npos);
}

// GPT-2's own tokenizer.json form (ByteLevel with use_regex, no normalizer) encodes as
// Gpt2Tokenizer does from vocab.json + merges.txt. Two merges across pieces show which
// regex split the text: "d" + "!" (no regex keeps them together) and "'" + "M" (only
// Qwen2's caseless contractions do).
TEST_F(HfTokenizerTest, ByteLevelRegexIsGpt2s) {
  json j = TinyTokenizerJson(false);
  j["normalizer"] = nullptr;
  j["model"]["vocab"]["d!"] = 300;
  j["model"]["vocab"]["'M"] = 301;
  j["model"]["merges"].push_back("d !");
  j["model"]["merges"].push_back("' M");
  auto qwen = Load(j);
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  auto hf = Load(j);
  ASSERT_TRUE(hf && qwen);
  EXPECT_EQ(hf->pre_tokenizer_name(), "GPT-2");
  json vocab = j["model"]["vocab"];
  vocab["<|endoftext|>"] = 263;
  std::string merges = "#version: 0.2\n";
  for (const json& m : j["model"]["merges"]) merges += m.get<std::string>() + "\n";
  WriteTextFile(dir_.File("vocab.json"), vocab.dump());
  WriteTextFile(dir_.File("merges.txt"), merges);
  auto gpt2 =
      LoadTokenizer({"GPT2BPETokenizer", dir_.File("vocab.json"), dir_.File("merges.txt"), ""});
  ASSERT_TRUE(gpt2.ok()) << gpt2.status().ToString();
  for (const std::string& text :
       {std::string("hello world! 12345 I'M he's"), std::string("  \n\n  hello\tworld! "),
        std::string("caf\xC3\xA9 \xF0\x9F\x98\x80")}) {
    EXPECT_EQ(hf->Encode(text), (*gpt2)->Encode(text)) << text;
  }
  EXPECT_EQ(hf->Encode("d!"), (std::vector<int32_t>{'d', '!'}));
  EXPECT_EQ(hf->Encode("I'M"), (std::vector<int32_t>{'I', '\'', 'M'}));
  EXPECT_EQ(qwen->Encode("I'M"), (std::vector<int32_t>{'I', 301}));
}

TEST_F(HfTokenizerTest, OtherModelTypesAreRefusedByName) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    json j = TinyTokenizerJson(false);
    j["model"]["type"] = type;
    const std::string e = Error(j);
    EXPECT_NE(e.find("model.type: \"" + std::string(type) + "\" is not supported"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("tokenizer.json"), std::string::npos) << e;
  }
}

TEST_F(HfTokenizerTest, BadFilesNameTheProblem) {
  const std::string bad_json = dir_.File("bad.json");
  WriteTextFile(bad_json, "{\n  \"model\": {\n    \"vocab\": {,}\n");
  auto st = HfBpeTokenizer::LoadTokenizerJson(bad_json).status();
  EXPECT_EQ(st.code(), coord::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("bad.json:3:"), std::string::npos) << st.message();
  st = HfBpeTokenizer::LoadTokenizerJson(dir_.File("nope.json")).status();
  EXPECT_EQ(st.code(), coord::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("nope.json"), std::string::npos) << st.message();

  // Each edit of a good file, and the words its error must contain.
  struct Case {
    const char* what;
    void (*edit)(json*);
    const char* expected;
  };
  const Case cases[] = {
      {"no merges", [](json* j) { (*j)["model"].erase("merges"); }, "model.merges: missing"},
      {"merges not a list", [](json* j) { (*j)["model"]["merges"] = "h e"; },
       "model.merges: expected an array"},
      {"merge of one symbol", [](json* j) { (*j)["model"]["merges"][1] = "he"; },
       "model.merges[1]: expected \"first second\""},
      {"merge of three",
       [](json* j) {
         (*j)["model"]["merges"][1] = json::array({"a", "b", "c"});
       },
       "model.merges[1]: expected"},
      {"merge outside the vocab", [](json* j) { (*j)["model"]["merges"][0] = "q z"; },
       "model.merges[0]: merge \"q z\" uses or makes a token that is not in model.vocab"},
      {"no vocab", [](json* j) { (*j)["model"].erase("vocab"); }, "model.vocab: missing"},
      {"vocab without byte 0", [](json* j) { (*j)["model"]["vocab"].erase("Ā"); },
       "no token for byte 0"},
      {"no model", [](json* j) { j->erase("model"); }, "expected a Hugging Face tokenizer.json"},
      {"NFKC",
       [](json* j) {
         (*j)["normalizer"] = {{"type", "NFKC"}};
       },
       "normalizer: normalizer \"NFKC\" is not supported"},
      {"unknown regex",
       [](json* j) { (*j)["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+|\\s+"; },
       "Split regex \"\\\\w+|\\\\s+\" is not supported"},
      {"Metaspace",
       [](json* j) {
         (*j)["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}};
       },
       "pre-tokenizer \"Metaspace\" is not supported"},
      {"add_prefix_space",
       [](json* j) { (*j)["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; },
       "add_prefix_space true is not supported"},
      {"no ByteLevel", [](json* j) { (*j)["pre_tokenizer"]["pretokenizers"].erase(1); },
       "expected a regex split and ByteLevel"},
      {"Removed split",
       [](json* j) { (*j)["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
       "Split behavior \"Removed\" is not supported"},
      {"WordPiece decoder",
       [](json* j) {
         (*j)["decoder"] = {{"type", "WordPiece"}};
       },
       "decoder: {\"type\":\"WordPiece\"} is not supported"},
      {"byte fallback", [](json* j) { (*j)["model"]["byte_fallback"] = true; },
       "model.byte_fallback: true is not supported"},
      {"dropout", [](json* j) { (*j)["model"]["dropout"] = 0.1; }, "model.dropout"},
      {"added token without content", [](json* j) { (*j)["added_tokens"][2].erase("content"); },
       "added_tokens[2].content: missing"},
  };
  for (const Case& c : cases) {
    json j = TinyTokenizerJson(false);
    c.edit(&j);
    const std::string e = Error(j);
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.what << ": " << e;
  }
}

TEST(ResolveTokenizerTypeTest, MegatronNamesAndPaths) {
  auto type = [](TokenizerSpec s) {
    auto t = ResolveTokenizerType(s);
    return t.ok() ? *t : "error: " + t.status().message();
  };
  EXPECT_EQ(type({"", "v.json", "m.txt", ""}), "GPT2BPETokenizer");
  EXPECT_EQ(type({"GPT2BPETokenizer", "v.json", "m.txt", ""}), "GPT2BPETokenizer");
  EXPECT_EQ(type({"", "", "", "qwen/tokenizer.json"}), "HuggingFaceTokenizer");
  EXPECT_EQ(type({"HuggingFaceTokenizer", "", "", "qwen"}), "HuggingFaceTokenizer");
  EXPECT_NE(type({"", "v.json", "m.txt", "t.json"}).find("not both"), std::string::npos);
  EXPECT_NE(type({"", "", "", ""}).find("vocab_file: required"), std::string::npos);
  EXPECT_NE(type({"", "v.json", "", ""}).find("merge_file: required"), std::string::npos);
  EXPECT_NE(type({"HuggingFaceTokenizer", "", "", ""}).find("tokenizer_model: required"),
            std::string::npos);
  EXPECT_NE(type({"HuggingFaceTokenizer", "v.json", "m.txt", "t"}).find("for GPT2BPETokenizer"),
            std::string::npos);
  EXPECT_NE(type({"GPT2BPETokenizer", "", "", "t.json"}).find("for HuggingFaceTokenizer"),
            std::string::npos);
  EXPECT_NE(type({"SentencePieceTokenizer", "", "", "x.model"})
                .find("tokenizer_type \"SentencePieceTokenizer\" is not supported"),
            std::string::npos);
  EXPECT_NE(type({"GPT2BPE", "v", "m", ""}).find("unknown tokenizer_type \"GPT2BPE\""),
            std::string::npos);
}

// A model directory as Megatron's --tokenizer-model names it: tokenizer.json when it
// has one, else the slow files, which give the same ids.
TEST_F(HfTokenizerTest, ModelDirectoryFastOrSlowFiles) {
  const std::string fast_dir = dir_.File("fast"), slow_dir = dir_.File("slow");
  ASSERT_TRUE(coord::MakeDirs(fast_dir).ok() && coord::MakeDirs(slow_dir).ok());
  WriteTextFile(fast_dir + "/tokenizer.json", TinyTokenizerJson(false).dump());
  const TinyVocab tiny = MakeTinyVocab();
  json vocab = json::parse(tiny.vocab_json);
  vocab.erase("<|endoftext|>");
  WriteTextFile(slow_dir + "/vocab.json", vocab.dump());
  WriteTextFile(slow_dir + "/merges.txt", tiny.merges_txt);
  json added = json::object();
  const char* contents[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im"};
  for (int i = 0; i < 4; ++i) {
    added[std::to_string(263 + i)] = {{"content", contents[i]}, {"special", i < 3}};
  }
  json config = {{"tokenizer_class", "Qwen2Tokenizer"},
                 {"added_tokens_decoder", added},
                 {"eos_token", "<|im_end|>"}};
  WriteTextFile(slow_dir + "/tokenizer_config.json", config.dump());

  auto fast = LoadTokenizer({"HuggingFaceTokenizer", "", "", fast_dir});
  auto slow = LoadTokenizer({"", "", "", slow_dir});
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  const std::string text = "<|im_start|>hello 2024 e\xCC\x81<|im_end|><|endoftext|>";
  EXPECT_EQ((*fast)->Encode(text), (*slow)->Encode(text));
  EXPECT_EQ((*slow)->vocab_size(), 267);
  EXPECT_EQ((*slow)->eod_id(), 263);
  EXPECT_NE((*slow)->Describe().find("Qwen2 pre-tokenizer, NFC"), std::string::npos)
      << (*slow)->Describe();

  config["tokenizer_class"] = "LlamaTokenizer";
  WriteTextFile(slow_dir + "/tokenizer_config.json", config.dump());
  auto llama = LoadTokenizer({"", "", "", slow_dir});
  ASSERT_FALSE(llama.ok());
  EXPECT_NE(llama.status().message().find("tokenizer_class \"LlamaTokenizer\" is not supported"),
            std::string::npos)
      << llama.status().message();
  auto empty = LoadTokenizer({"", "", "", dir_.path()});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no tokenizer.json"), std::string::npos);
}

// Without <|endoftext|>, tokenizer_config.json's eos_token beside the file is the
// document separator (Llama 3's <|end_of_text|>).
TEST_F(HfTokenizerTest, EodFromTokenizerConfigWithoutEndOfText) {
  json j = TinyTokenizerJson(false);
  j["added_tokens"][0]["content"] = "<|end_of_text|>";
  Write(json{{"eos_token", {{"content", "<|end_of_text|>"}}}}, "tokenizer_config.json");
  auto tok = Load(j);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->eod_id(), 263);
  WriteTextFile(dir_.File("tokenizer_config.json"), "{}");
  tok = Load(j);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->eod_id(), -1);
}

}  // namespace
}  // namespace trainer::data
