// safetensors files and the Hugging Face GPT-2 mapping: round trip through export and
// import (Conv1D transposes, padded vocab rows), HF's own unprefixed names, F16/BF16
// reads, and clear errors (file, tensor, expected vs got) on malformed files.
#include "trainer/checkpoint/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "tests/support/temp_dir.h"
#include "trainer/model/gpt.h"

namespace trainer {
namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  static GptConfig Tiny() {
    GptConfig c;
    c.num_layers = 2;
    c.hidden_size = 16;
    c.num_attention_heads = 2;
    c.seq_length = c.max_position_embeddings = 8;
    c.vocab_size = 50;
    c.make_vocab_size_divisible_by = 32;  // Vp = 64
    return c;
  }
  void WriteRaw(const std::string& name, const std::string& header, const std::string& data) {
    std::string file(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    ASSERT_TRUE(coord::WriteFileAtomic(dir_ + "/" + name, file + header + data).ok());
  }
  std::string ReadError(const std::string& name) {
    auto f = SafetensorsFile::Read(dir_ + "/" + name);
    return f.ok() ? "" : f.status().message();
  }

  coord::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(SafetensorsTest, ExportImportRoundTripWithHfLayouts) {
  GptConfig c = Tiny();
  auto model = GptModel::Create(c, 1, 8);
  ASSERT_TRUE(model.ok());
  (*model)->InitMegatron(3);
  ASSERT_TRUE(ExportHfGpt2(dir_, c, (*model)->param_data()).ok());

  auto file = SafetensorsFile::Read(dir_ + "/model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->tensors().size(), 2u + 12 * 2 + 2);
  const auto& qkv = file->tensors().at("transformer.h.1.attn.c_attn.weight");
  EXPECT_EQ(qkv.shape, (std::vector<int64_t>{16, 48}));  // Conv1D (C, 3C)
  EXPECT_EQ(file->tensors().at("transformer.wte.weight").shape, (std::vector<int64_t>{50, 16}));
  EXPECT_EQ(file->tensors().at("transformer.h.0.mlp.c_proj.weight").shape,
            (std::vector<int64_t>{64, 16}));
  // c_attn.weight[i][o] == our qkvw[o][i].
  std::vector<float> hf(16 * 48);
  ASSERT_TRUE(file->ReadF32("transformer.h.1.attn.c_attn.weight", {16, 48}, hf.data()).ok());
  const float* ours = (*model)->params().layers[1].qkvw;
  EXPECT_EQ(hf[3 * 48 + 40], ours[40 * 16 + 3]);

  auto cfg = ReadHfGpt2Config(dir_);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->num_layers, 2);
  EXPECT_EQ(cfg->vocab_size, 50);
  EXPECT_EQ(cfg->max_position_embeddings, 8);

  auto back = GptModel::Create(c, 1, 8);
  ASSERT_TRUE(ImportHfGpt2(dir_, c, (*back)->param_data()).ok());
  const size_t unpadded_wte = 50 * 16;
  for (size_t i = 0; i < (*model)->num_params(); ++i) {
    const bool padded_row = i >= unpadded_wte && i < 64 * 16;
    ASSERT_EQ((*back)->param_data()[i], padded_row ? 0.0f : (*model)->param_data()[i]) << i;
  }
}

TEST_F(SafetensorsTest, ImportAcceptsHfNamesWithoutPrefixAndHalfPrecision) {
  GptConfig c = Tiny();
  c.num_layers = 1;
  GptParamLayout layout(c);
  // An HF-style file: no "transformer." prefix, BF16 / F16 data (1.5 in both).
  nlohmann::json header;
  std::string data;
  const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"wte.weight", {50, 16}},
      {"wpe.weight", {8, 16}},
      {"h.0.ln_1.weight", {16}},
      {"h.0.ln_1.bias", {16}},
      {"h.0.attn.c_attn.weight", {16, 48}},
      {"h.0.attn.c_attn.bias", {48}},
      {"h.0.attn.c_proj.weight", {16, 16}},
      {"h.0.attn.c_proj.bias", {16}},
      {"h.0.ln_2.weight", {16}},
      {"h.0.ln_2.bias", {16}},
      {"h.0.mlp.c_fc.weight", {16, 64}},
      {"h.0.mlp.c_fc.bias", {64}},
      {"h.0.mlp.c_proj.weight", {64, 16}},
      {"h.0.mlp.c_proj.bias", {16}},
      {"ln_f.weight", {16}},
      {"ln_f.bias", {16}}};
  for (size_t k = 0; k < shapes.size(); ++k) {
    size_t n = 1;
    for (int64_t d : shapes[k].second) n *= d;
    const bool bf16 = k % 2 == 0;
    const uint16_t one_and_half = bf16 ? 0x3FC0 : 0x3E00;
    header[shapes[k].first] = {{"dtype", bf16 ? "BF16" : "F16"},
                               {"shape", shapes[k].second},
                               {"data_offsets", {data.size(), data.size() + 2 * n}}};
    for (size_t i = 0; i < n; ++i) data.append(reinterpret_cast<const char*>(&one_and_half), 2);
  }
  WriteRaw("model.safetensors", header.dump(), data);
  std::vector<float> params(layout.num_params(), -1.0f);
  coord::Status s = ImportHfGpt2(dir_, c, params.data());
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (size_t i = 0; i < params.size(); ++i) {
    const bool padded_row = i >= 50 * 16 && i < 64 * 16;
    ASSERT_EQ(params[i], padded_row ? 0.0f : 1.5f) << i;
  }
}

TEST_F(SafetensorsTest, MalformedFilesGiveClearErrors) {
  ASSERT_TRUE(coord::WriteFileAtomic(dir_ + "/short", "abc").ok());
  EXPECT_NE(ReadError("short").find("short: not a safetensors file"), std::string::npos);
  std::string f(8, '\xff');
  ASSERT_TRUE(coord::WriteFileAtomic(dir_ + "/hugelen", f).ok());
  EXPECT_NE(ReadError("hugelen").find("does not fit"), std::string::npos);
  WriteRaw("notjson", "{nope", "");
  EXPECT_NE(ReadError("notjson").find("not a JSON object"), std::string::npos);
  WriteRaw("truncated", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
           std::string(8, '\0'));
  EXPECT_NE(ReadError("truncated").find("tensor a: data_offsets [0, 16) outside"),
            std::string::npos)
      << ReadError("truncated");
  WriteRaw("badsize", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})",
           std::string(16, '\0'));
  EXPECT_NE(ReadError("badsize").find("16 bytes for shape (3) of F32"), std::string::npos);
  WriteRaw("baddtype", R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})",
           std::string(1, '\0'));
  EXPECT_NE(ReadError("baddtype").find("unknown dtype Q4"), std::string::npos);
  // An element count past int64 (tests/fuzz/safetensors_fuzz.cc): the multiplication was
  // undefined and wrapped to 0 here, which matched the empty data_offsets.
  WriteRaw("overflow",
           R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})", "");
  EXPECT_NE(ReadError("overflow").find("tensor a: 0 bytes for shape (4294967296, 4294967296, 4)"),
            std::string::npos)
      << ReadError("overflow");

  // Wrong shape on import names the file, the tensor, and both shapes.
  GptConfig c = Tiny();
  std::vector<float> params(GptParamLayout(c).num_params());
  ASSERT_TRUE(ExportHfGpt2(dir_ + "/m", c, params.data()).ok());
  c.hidden_size = 32;
  coord::Status s =
      ImportHfGpt2(dir_ + "/m", c, std::vector<float>(GptParamLayout(c).num_params()).data());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.safetensors: tensor transformer.wte.weight: expected shape "
                             "(50, 32), got (50, 16)"),
            std::string::npos)
      << s.message();
  c = Tiny();
  c.num_layers = 3;
  s = ImportHfGpt2(dir_ + "/m", c, std::vector<float>(GptParamLayout(c).num_params()).data());
  EXPECT_NE(s.message().find("missing tensor transformer.h.2.ln_1.weight"), std::string::npos)
      << s.message();
  EXPECT_FALSE(ImportHfGpt2(dir_ + "/nothing", Tiny(), params.data()).ok());
}

}  // namespace
}  // namespace trainer
