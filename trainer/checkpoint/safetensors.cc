// safetensors reader/writer and the HF GPT-2 mapping (see safetensors.h).
#include "trainer/checkpoint/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "trainer/model/gpt_params.h"

namespace trainer {

namespace {

using coord::InvalidArgument;
using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit (100 MB)

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

int DtypeBytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: renormalise
    exp = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void AppendLe64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

coord::Status WriteSafetensors(const std::string& path,
                               const std::vector<SafetensorsEntry>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const SafetensorsEntry& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    if (numel != static_cast<int64_t>(t.data.size())) {
      return InvalidArgument(path + ": tensor " + t.name + " has shape " + ShapeString(t.shape) +
                             " but " + std::to_string(t.data.size()) + " values");
    }
    if (header.contains(t.name)) return InvalidArgument(path + ": duplicate tensor " + t.name);
    const size_t bytes = t.data.size() * sizeof(float);
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  while (header_text.size() % 8 != 0) header_text.push_back(' ');  // align data to 8 bytes
  std::string file;
  file.reserve(8 + header_text.size() + offset);
  AppendLe64(&file, header_text.size());
  file += header_text;
  for (const SafetensorsEntry& t : tensors) {
    // fp32 little-endian: this host's layout (x86-64 / aarch64 are little-endian).
    file.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  }
  return coord::WriteFileAtomic(path, file);
}

coord::StatusOr<SafetensorsFile> SafetensorsFile::Read(const std::string& path) {
  auto contents = coord::ReadFile(path);
  if (!contents.ok()) return contents.status();
  const std::string& raw = *contents;
  if (raw.size() < 8) {
    return InvalidArgument(path + ": not a safetensors file (" + std::to_string(raw.size()) +
                           " bytes, need at least the 8-byte header length)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(raw[i]);
  if (header_len > kMaxHeaderBytes || header_len > raw.size() - 8) {
    return InvalidArgument(path + ": header length " + std::to_string(header_len) +
                           " does not fit in the file (" + std::to_string(raw.size()) + " bytes)");
  }
  json header = json::parse(raw.begin() + 8, raw.begin() + 8 + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return InvalidArgument(path + ": header is not a JSON object");
  }
  SafetensorsFile file;
  file.path_ = path;
  file.data_ = raw.substr(8 + header_len);
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const json& e = it.value();
    const std::string where = path + ": tensor " + it.key();
    if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
        !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2) {
      return InvalidArgument(where + ": needs dtype, shape and data_offsets [begin, end]");
    }
    TensorInfo info;
    info.dtype = e["dtype"].get<std::string>();
    int64_t numel = 1;
    for (const json& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return InvalidArgument(where + ": shape must hold non-negative integers");
      }
      info.shape.push_back(d.get<int64_t>());
      numel *= info.shape.back();
    }
    const json& off = e["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return InvalidArgument(where + ": data_offsets must be non-negative integers");
    }
    info.begin = off[0].get<size_t>();
    info.end = off[1].get<size_t>();
    const int dtype_bytes = DtypeBytes(info.dtype);
    if (dtype_bytes == 0) return InvalidArgument(where + ": unknown dtype " + info.dtype);
    if (info.end < info.begin || info.end > file.data_.size()) {
      return InvalidArgument(where + ": data_offsets [" + std::to_string(info.begin) + ", " +
                             std::to_string(info.end) + ") outside the data section (" +
                             std::to_string(file.data_.size()) + " bytes); file truncated?");
    }
    if (info.end - info.begin != static_cast<size_t>(numel) * dtype_bytes) {
      return InvalidArgument(where + ": " + std::to_string(info.end - info.begin) +
                             " bytes for shape " + ShapeString(info.shape) + " of " + info.dtype);
    }
    file.tensors_[it.key()] = std::move(info);
  }
  return file;
}

coord::Status SafetensorsFile::ReadF32(const std::string& name,
                                       const std::vector<int64_t>& expected_shape,
                                       float* out) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return coord::NotFound(path_ + ": no tensor " + name);
  const TensorInfo& info = it->second;
  if (info.shape != expected_shape) {
    return InvalidArgument(path_ + ": tensor " + name + ": expected shape " +
                           ShapeString(expected_shape) + ", got " + ShapeString(info.shape));
  }
  const char* src = data_.data() + info.begin;
  const size_t n = (info.end - info.begin) / DtypeBytes(info.dtype);
  if (info.dtype == "F32") {
    std::memcpy(out, src, n * sizeof(float));
  } else if (info.dtype == "F16" || info.dtype == "BF16") {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      if (info.dtype == "F16") {
        out[i] = HalfToFloat(h);
      } else {
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
    }
  } else {
    return InvalidArgument(path_ + ": tensor " + name + ": dtype " + info.dtype +
                           " is not a float type (need F32, F16 or BF16)");
  }
  return coord::Status::Ok();
}

// --- Hugging Face GPT-2 --------------------------------------------------------

namespace {

// Our tensor j of a layer (kLayerSpecs order) -> HF suffix, and whether HF's Conv1D
// stores it transposed.
struct HfLayerName {
  const char* suffix;
  bool transposed;
};
constexpr HfLayerName kHfLayerNames[kNumLayerSlots] = {
    {"ln_1.weight", false},      {"ln_1.bias", false},         {"attn.c_attn.weight", true},
    {"attn.c_attn.bias", false}, {"attn.c_proj.weight", true}, {"attn.c_proj.bias", false},
    {"ln_2.weight", false},      {"ln_2.bias", false},         {"mlp.c_fc.weight", true},
    {"mlp.c_fc.bias", false},    {"mlp.c_proj.weight", true},  {"mlp.c_proj.bias", false},
};

// (rows, cols) -> (cols, rows).
std::vector<float> Transpose(const float* src, int rows, int cols) {
  std::vector<float> out(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c)
      out[static_cast<size_t>(c) * rows + r] = src[static_cast<size_t>(r) * cols + c];
  }
  return out;
}

// HF name and HF shape of each of our tensors, in layout order.
struct HfTensor {
  std::string name;
  std::vector<int64_t> hf_shape;
  bool transposed = false;
};

std::vector<HfTensor> HfTensors(const GptConfig& config, const GptParamLayout& layout) {
  std::vector<HfTensor> out;
  const int64_t C = config.hidden_size;
  out.push_back({"transformer.wte.weight", {config.vocab_size, C}, false});
  out.push_back({"transformer.wpe.weight", {config.max_position_embeddings, C}, false});
  for (int l = 0; l < config.num_layers; ++l) {
    for (int j = 0; j < kNumLayerSlots; ++j) {  // GPT-2 has every slot
      const ParamTensorInfo& t = layout.tensors()[static_cast<size_t>(
          layout.layer_tensor_index(l, static_cast<LayerSlot>(j)))];
      HfTensor h{"transformer.h." + std::to_string(l) + "." + kHfLayerNames[j].suffix,
                 {},
                 kHfLayerNames[j].transposed};
      if (h.transposed) {
        h.hf_shape = {t.shape[1], t.shape[0]};
      } else {
        h.hf_shape.assign(t.shape.begin(), t.shape.end());
      }
      out.push_back(std::move(h));
    }
  }
  out.push_back({"transformer.ln_f.weight", {C}, false});
  out.push_back({"transformer.ln_f.bias", {C}, false});
  return out;
}

}  // namespace

coord::Status ExportHfGpt2(const std::string& dir, const GptConfig& config, const float* params) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  if (!config.is_gpt2()) return InvalidArgument("ExportHfGpt2: not a GPT-2 architecture");
  RETURN_IF_ERROR(coord::MakeDirs(dir));
  GptParamLayout layout(config);
  std::vector<HfTensor> names = HfTensors(config, layout);
  std::vector<SafetensorsEntry> entries;
  for (size_t k = 0; k < names.size(); ++k) {
    const ParamTensorInfo& t = layout.tensors()[k];
    const float* src = params + t.offset;
    SafetensorsEntry e{names[k].name, names[k].hf_shape, {}};
    if (names[k].transposed) {
      e.data = Transpose(src, t.shape[0], t.shape[1]);
    } else {
      size_t n = 1;
      for (int64_t d : e.shape) n *= static_cast<size_t>(d);  // wte: V of Vp rows
      e.data.assign(src, src + n);
    }
    entries.push_back(std::move(e));
  }
  RETURN_IF_ERROR(
      WriteSafetensors(coord::JoinPath(dir, "model.safetensors"), entries, {{"format", "pt"}}));
  json cfg = {{"architectures", {"GPT2LMHeadModel"}},
              {"model_type", "gpt2"},
              {"vocab_size", config.vocab_size},
              {"n_positions", config.max_position_embeddings},
              {"n_ctx", config.max_position_embeddings},
              {"n_embd", config.hidden_size},
              {"n_layer", config.num_layers},
              {"n_head", config.num_attention_heads},
              {"n_inner", nullptr},
              {"activation_function", "gelu_new"},
              {"resid_pdrop", config.hidden_dropout},
              {"embd_pdrop", config.hidden_dropout},
              {"attn_pdrop", config.attention_dropout},
              {"layer_norm_epsilon", config.layernorm_epsilon},
              {"initializer_range", config.init_method_std},
              {"tie_word_embeddings", true},
              {"bos_token_id", 50256},
              {"eos_token_id", 50256},
              {"torch_dtype", "float32"}};
  return coord::WriteFileAtomic(coord::JoinPath(dir, "config.json"), cfg.dump(2) + "\n");
}

coord::StatusOr<GptConfig> ReadHfGpt2Config(const std::string& dir) {
  const std::string path = coord::JoinPath(dir, "config.json");
  auto text = coord::ReadFile(path);
  if (!text.ok()) return text.status();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path + ": not a JSON object");
  GptConfig c;
  auto get_int = [&](const char* key, int* out) -> coord::Status {
    if (!j.contains(key) || !j[key].is_number_integer()) {
      return InvalidArgument(path + ": " + key + ": expected an integer");
    }
    *out = j[key].get<int>();
    return coord::Status::Ok();
  };
  RETURN_IF_ERROR(get_int("n_layer", &c.num_layers));
  RETURN_IF_ERROR(get_int("n_embd", &c.hidden_size));
  RETURN_IF_ERROR(get_int("n_head", &c.num_attention_heads));
  RETURN_IF_ERROR(get_int("n_positions", &c.max_position_embeddings));
  RETURN_IF_ERROR(get_int("vocab_size", &c.vocab_size));
  c.seq_length = c.max_position_embeddings;
  std::string act = j.value("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    return InvalidArgument(path + ": activation_function \"" + act +
                           "\" is not supported (GPT-2 uses gelu_new, the tanh GELU)");
  }
  if (j.contains("n_inner") && !j["n_inner"].is_null() &&
      j["n_inner"].get<int>() != 4 * c.hidden_size) {
    return InvalidArgument(path + ": n_inner must be null or 4 * n_embd");
  }
  c.hidden_dropout = j.value("resid_pdrop", c.hidden_dropout);
  c.attention_dropout = j.value("attn_pdrop", c.attention_dropout);
  c.layernorm_epsilon = j.value("layer_norm_epsilon", c.layernorm_epsilon);
  c.init_method_std = j.value("initializer_range", c.init_method_std);
  RETURN_IF_ERROR(ValidateGptConfig(c).WithContext(path));
  return c;
}

coord::Status ImportHfGpt2(const std::string& dir, const GptConfig& config, float* params) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  if (!config.is_gpt2()) return InvalidArgument("ImportHfGpt2: not a GPT-2 architecture");
  auto file = SafetensorsFile::Read(coord::JoinPath(dir, "model.safetensors"));
  if (!file.ok()) return file.status();
  GptParamLayout layout(config);
  std::vector<HfTensor> names = HfTensors(config, layout);
  for (size_t k = 0; k < names.size(); ++k) {
    const ParamTensorInfo& t = layout.tensors()[k];
    std::string name = names[k].name;
    if (!file->Has(name)) name = name.substr(std::strlen("transformer."));  // HF's own files
    if (!file->Has(name)) {
      return coord::NotFound(file->path() + ": missing tensor " + names[k].name);
    }
    float* dst = params + t.offset;
    if (!names[k].transposed) {
      RETURN_IF_ERROR(file->ReadF32(name, names[k].hf_shape, dst));
      continue;
    }
    std::vector<float> hf(t.numel);
    RETURN_IF_ERROR(file->ReadF32(name, names[k].hf_shape, hf.data()));
    std::vector<float> ours = Transpose(hf.data(), t.shape[1], t.shape[0]);
    std::memcpy(dst, ours.data(), t.numel * sizeof(float));
  }
  // Padded vocabulary rows V..Vp-1 never appear in the loss; keep them at zero.
  const size_t C = config.hidden_size;
  std::memset(
      params + static_cast<size_t>(config.vocab_size) * C, 0,
      static_cast<size_t>(config.padded_vocab_size() - config.vocab_size) * C * sizeof(float));
  return coord::Status::Ok();
}

}  // namespace trainer
