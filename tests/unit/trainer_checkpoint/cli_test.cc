// generate / export-hf / import-hf verbs: usage errors exit 2 with a clear message,
// export-hf -> import-hf is a bitwise round trip, generate prints text for a seed, the
// KV cache gives the text the window re-run gives, generation_config.json's eos ids stop
// it, and requests beyond the context are refused; --chat / --messages render the chat
// template and stop at <|im_end|>.
#include <gtest/gtest.h>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/trainer_data/tiny_chat_tokenizer.h"
#include "tests/unit/trainer_data/tiny_vocab.h"
#include "trainer/checkpoint/megatron_checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/model/gpt.h"

namespace gpt_rank::cli {
namespace {

using coord::testing::TempDir;
using coord::testing::WriteTextFile;

// Runs a verb, capturing stderr into *err.
int RunVerb(int (*verb)(const std::vector<std::string>&), std::vector<std::string> args,
            std::string* err, std::string* out = nullptr) {
  ::testing::internal::CaptureStderr();
  if (out != nullptr) ::testing::internal::CaptureStdout();
  const int rc = verb(args);
  if (out != nullptr) *out = ::testing::internal::GetCapturedStdout();
  *err = ::testing::internal::GetCapturedStderr();
  return rc;
}

// A job config + a checkpoint of a tiny model with the 264-token test vocab.
struct TinyRun {
  TempDir dir;
  std::string job;
  std::vector<float> params;  // (n,)
  TinyRun() {
    const auto vocab = trainer::data::testing::MakeTinyVocab();
    WriteTextFile(dir.File("vocab.json"), vocab.vocab_json);
    WriteTextFile(dir.File("merges.txt"), vocab.merges_txt);
    job = R"({"model": {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
      "seq_length": 16, "max_position_embeddings": 16},
      "data": {"vocab_file": ")" +
          dir.File("vocab.json") + R"(", "merge_file": ")" + dir.File("merges.txt") +
          R"("}, "training": {"seed": 9}})";
    WriteTextFile(dir.File("job.json"), job);
    trainer::GptConfig c;
    c.num_layers = 2, c.hidden_size = 32, c.num_attention_heads = 4;
    c.seq_length = c.max_position_embeddings = 16;
    c.vocab_size = 264;  // padded to 384
    auto model = trainer::GptModel::Create(c, 1, 16);
    (*model)->InitMegatron(3);
    params.assign((*model)->param_data(), (*model)->param_data() + (*model)->num_params());
    // HF has no padded rows: zero them so the round trip can be compared bitwise.
    std::fill(params.begin() + 264 * 32, params.begin() + 384 * 32, 0.0f);
    trainer::TrainState state;
    state.iteration = 7;
    state.config_json = job;
    std::vector<float> mv(params.size(), 0.5f);
    EXPECT_TRUE(trainer::SaveCheckpoint(dir.File("save"), state,
                                        {params.data(), mv.data(), mv.data(), params.size()})
                    .ok());
  }
};

TEST(CliTest, UsageErrorsExit2) {
  TempDir empty;
  std::string err;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate"}, &err), 2);
  EXPECT_NE(err.find("--load is required"), std::string::npos) << err;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--load", empty.path()}, &err), 2);
  EXPECT_NE(err.find("no checkpoint in " + empty.path()), std::string::npos) << err;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--load", empty.File("nope")}, &err), 2);
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--bogus"}, &err), 2);
  EXPECT_EQ(RunVerb(RunExportHf, {"export-hf", "--load", empty.path()}, &err), 2);
  EXPECT_NE(err.find("--out is required"), std::string::npos) << err;
  EXPECT_EQ(RunVerb(RunImportHf, {"import-hf", "--hf", empty.path()}, &err), 2);
  EXPECT_EQ(RunVerb(RunImportHf,
                    {"import-hf", "--hf", empty.path(), "--config", empty.File("j.json"), "--save",
                     empty.File("s")},
                    &err),
            2);
  std::string out;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--help"}, &err, &out), 0);
  EXPECT_NE(out.find("--temperature"), std::string::npos);
}

TEST(CliTest, ExportImportRoundTripIsBitwise) {
  TinyRun run;
  std::string err;
  ASSERT_EQ(
      RunVerb(RunExportHf,
              {"export-hf", "--load", run.dir.File("save"), "--out", run.dir.File("hf")}, &err),
      0)
      << err;
  ASSERT_EQ(RunVerb(RunImportHf,
                    {"import-hf", "--hf", run.dir.File("hf"), "--config", run.dir.File("job.json"),
                     "--save", run.dir.File("imported")},
                    &err),
            0)
      << err;
  auto loaded = trainer::LoadLatestCheckpoint(run.dir.File("imported"), run.params.size());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->state.iteration, 0);
  EXPECT_EQ(loaded->state.seed, 9u);
  EXPECT_EQ(loaded->state.config_json, run.job);
  EXPECT_EQ(0, std::memcmp(loaded->params.data(), run.params.data(), run.params.size() * 4));
  for (float x : loaded->adam_m) ASSERT_EQ(x, 0.0f);

  // A job whose architecture differs from the HF weights is refused, exit 2.
  WriteTextFile(run.dir.File("job3.json"), R"({"model": {"num_layers": 3, "hidden_size": 32,
      "num_attention_heads": 4, "seq_length": 16, "max_position_embeddings": 16}})");
  EXPECT_EQ(RunVerb(RunImportHf,
                    {"import-hf", "--hf", run.dir.File("hf"), "--config", run.dir.File("job3.json"),
                     "--save", run.dir.File("x")},
                    &err),
            2);
  EXPECT_NE(err.find("model.num_layers is 3"), std::string::npos) << err;
}

TEST(CliTest, GenerateIsDeterministic) {
  TinyRun run;
  std::string err, out1, out2;
  const std::string save = run.dir.File("save");
  const std::vector<std::string> args = {"generate", "--load",       save, "--prompt",
                                         "hello",    "--max-tokens", "8",  "--seed",
                                         "5",        "--top-k",      "20"};
  ASSERT_EQ(RunVerb(RunGenerate, args, &err, &out1), 0) << err;
  ASSERT_EQ(RunVerb(RunGenerate, args, &err, &out2), 0) << err;
  EXPECT_EQ(out1, out2);
  EXPECT_EQ(out1.rfind("hello", 0), 0u) << out1;
  EXPECT_NE(err.find("iteration 7"), std::string::npos) << err;
}

TEST(CliTest, GenerateWithAndWithoutKvCacheAgree) {
  TinyRun run;
  std::string err, cached, uncached;
  const std::vector<std::string> args = {"generate",      "--load",       run.dir.File("save"),
                                         "--prompt",      "hello",        "--max-tokens",
                                         "8",             "--temperature", "0"};
  ASSERT_EQ(RunVerb(RunGenerate, args, &err, &cached), 0) << err;
  EXPECT_NE(err.find("prefill: "), std::string::npos) << err;
  EXPECT_NE(err.find("tokens/s); decode: "), std::string::npos) << err;
  std::vector<std::string> slow = args;
  slow.push_back("--no-kv-cache");
  ASSERT_EQ(RunVerb(RunGenerate, slow, &err, &uncached), 0) << err;
  EXPECT_NE(err.find("generate (no KV cache): "), std::string::npos) << err;
  EXPECT_EQ(cached, uncached);
  EXPECT_GT(cached.size(), std::string("hello\n").size()) << cached;

  // Make the first new token an eos id: nothing but the prompt is left. Its id is
  // found by trying each as the eos id with one new token (the text may not re-encode
  // to that one id).
  std::vector<std::string> one = args;
  one[6] = "1";  // --max-tokens 1
  one.insert(one.end(), {"--generation-config", run.dir.File("generation_config.json")});
  int stop_id = -1;
  for (int id = 0; id < 264 && stop_id < 0; ++id) {
    WriteTextFile(run.dir.File("generation_config.json"),
                  R"({"bos_token_id": 1, "eos_token_id": [)" + std::to_string(id) + "]}");
    std::string out;
    ASSERT_EQ(RunVerb(RunGenerate, one, &err, &out), 0) << err;
    if (out == "hello\n") stop_id = id;
  }
  ASSERT_GE(stop_id, 0) << "no eos id stopped the first token";
  std::vector<std::string> with = args;
  with.insert(with.end(), {"--generation-config", run.dir.File("generation_config.json")});
  std::string out;
  ASSERT_EQ(RunVerb(RunGenerate, with, &err, &out), 0) << err;
  EXPECT_EQ(out, "hello\n");
  EXPECT_NE(err.find("stopped: stop token"), std::string::npos) << err;
}

TEST(CliTest, GenerateRefusesRequestsBeyondTheContext) {
  TinyRun run;  // context: 16 positions
  std::string err;
  const std::string save = run.dir.File("save");
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--load", save, "--max-tokens", "17"}, &err), 2);
  EXPECT_NE(err.find("max_tokens 17 exceeds the model's context of 16"), std::string::npos)
      << err;
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "hello ";
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--load", save, "--prompt", long_prompt}, &err), 2);
  EXPECT_NE(err.find("longer than the model's context of 16"), std::string::npos) << err;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--load", save, "--top-p", "0"}, &err), 2);
  EXPECT_NE(err.find("top_p must be in (0, 1]"), std::string::npos) << err;
  WriteTextFile(run.dir.File("gen.json"), R"({"eos_token_id": "x"})");
  EXPECT_EQ(RunVerb(RunGenerate,
                    {"generate", "--load", save, "--generation-config", run.dir.File("gen.json")},
                    &err),
            2);
  EXPECT_NE(err.find("eos_token_id must be a token id"), std::string::npos) << err;
  // The default --max-tokens (64) is capped by the context, not refused.
  std::string out;
  EXPECT_EQ(RunVerb(RunGenerate, {"generate", "--load", save, "--prompt", "hi"}, &err, &out), 0)
      << err;
}

// A checkpoint whose job names a Qwen-style tokenizer.json (the tiny vocab + <|endoftext|>
// 263, <|im_start|> 264, <|im_end|> 265). With always_im_end the model's greedy choice
// is always <|im_end|>: the final LayerNorm outputs ones (weight 0, bias 1) and the
// tied embedding row of 265 is all 10s, so its logit (320) dwarfs the others.
struct ChatRun {
  TempDir dir;
  explicit ChatRun(bool always_im_end) {
    WriteTextFile(dir.File("tokenizer.json"),
                  trainer::data::testing::TinyChatTokenizerJson().dump());
    const std::string job = R"({"model": {"num_layers": 2, "hidden_size": 32,
      "num_attention_heads": 4, "seq_length": 64, "max_position_embeddings": 64,
      "vocab_size": 266}, "data": {"tokenizer_model": ")" +
                            dir.File("tokenizer.json") + R"("}})";
    trainer::GptConfig c;
    c.num_layers = 2, c.hidden_size = 32, c.num_attention_heads = 4;
    c.seq_length = c.max_position_embeddings = 64;
    c.vocab_size = 266;
    c.init_method_std = 0.5f;  // peaky: the reply depends on the prompt
    auto model = trainer::GptModel::Create(c, 1, 64);
    (*model)->InitMegatron(3);
    std::vector<float> params((*model)->param_data(),
                              (*model)->param_data() + (*model)->num_params());
    if (always_im_end) {
      const trainer::GptParams v = (*model)->layout().Views(params.data());
      std::fill(v.lnfw, v.lnfw + 32, 0.0f);
      std::fill(v.lnfb, v.lnfb + 32, 1.0f);
      std::fill(v.wte + 265 * 32, v.wte + 266 * 32, 10.0f);
    }
    trainer::TrainState state;
    state.config_json = job;
    std::vector<float> mv(params.size(), 0.0f);
    EXPECT_TRUE(trainer::SaveCheckpoint(dir.File("save"), state,
                                        {params.data(), mv.data(), mv.data(), params.size()})
                    .ok());
  }
  std::vector<std::string> Args(std::vector<std::string> more) const {
    std::vector<std::string> args = {"generate", "--load", dir.File("save"), "--temperature",
                                     "0", "--max-tokens", "6", "--chat-template", "qwen"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
};

TEST(CliTest, ChatRendersTheTemplateAndMessagesFileAgrees) {
  ChatRun run(/*always_im_end=*/false);
  std::string err, chat, messages, uncached;
  ASSERT_EQ(RunVerb(RunGenerate, run.Args({"--chat", "hello"}), &err, &chat), 0) << err;
  EXPECT_EQ(chat.find("hello"), std::string::npos) << "a chat prints the reply only: " << chat;
  ASSERT_EQ(RunVerb(RunGenerate, run.Args({"--chat", "hello", "--no-kv-cache"}), &err, &uncached),
            0)
      << err;
  EXPECT_EQ(chat, uncached);
  WriteTextFile(run.dir.File("chat.json"),
                R"({"messages": [{"role": "user", "content": "hello"}]})");
  ASSERT_EQ(RunVerb(RunGenerate, run.Args({"--messages", run.dir.File("chat.json")}), &err,
                    &messages),
            0)
      << err;
  EXPECT_EQ(messages, chat);
  // Another system prompt is another conversation (the default one is the template's).
  std::string other;
  ASSERT_EQ(RunVerb(RunGenerate, run.Args({"--chat", "hello", "--system", "Be brief."}), &err,
                    &other),
            0)
      << err;
  EXPECT_NE(other, chat);
}

TEST(CliTest, ChatStopsAtImEnd) {
  ChatRun run(/*always_im_end=*/true);
  std::string err, out;
  ASSERT_EQ(RunVerb(RunGenerate, run.Args({"--chat", "hello"}), &err, &out), 0) << err;
  EXPECT_EQ(out, "\n");  // the first reply token was <|im_end|>: an empty reply
  EXPECT_NE(err.find("stopped: stop token"), std::string::npos) << err;
  // Outside a chat <|im_end|> is just a token: all 6 come out.
  ASSERT_EQ(RunVerb(RunGenerate, run.Args({"--prompt", "hello"}), &err, &out), 0) << err;
  EXPECT_NE(err.find("stopped: max tokens"), std::string::npos) << err;
}

TEST(CliTest, ChatBadInput) {
  ChatRun run(/*always_im_end=*/false);
  std::string err;
  WriteTextFile(run.dir.File("robot.json"),
                R"({"messages": [{"role": "robot", "content": "beep"}]})");
  EXPECT_EQ(RunVerb(RunGenerate, run.Args({"--messages", run.dir.File("robot.json")}), &err), 2);
  EXPECT_NE(err.find("messages[0].role: unknown role \"robot\""), std::string::npos) << err;
  WriteTextFile(run.dir.File("bad.json"), R"({"messages": [{"role": "user"}]})");
  EXPECT_EQ(RunVerb(RunGenerate, run.Args({"--messages", run.dir.File("bad.json")}), &err), 2);
  EXPECT_NE(err.find("messages[0] needs string"), std::string::npos) << err;
  EXPECT_EQ(RunVerb(RunGenerate, run.Args({"--messages", run.dir.File("none.json")}), &err), 2);
  EXPECT_EQ(RunVerb(RunGenerate, run.Args({"--chat", "hi", "--prompt", "x"}), &err), 2);
  EXPECT_NE(err.find("give one of --prompt, --chat and --messages"), std::string::npos) << err;
  std::vector<std::string> args = run.Args({"--chat", "hi"});
  args[8] = "llama3";  // --chat-template
  EXPECT_EQ(RunVerb(RunGenerate, args, &err), 2);
  EXPECT_NE(err.find("--chat-template llama3"), std::string::npos) << err;
}

}  // namespace
}  // namespace gpt_rank::cli
