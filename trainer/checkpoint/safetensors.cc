// safetensors reader/writer and the HF GPT-2 mapping (see safetensors.h).
#include "trainer/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"
#include "trainer/kernels/cpu/adamw_simd.h"
#include "trainer/model/gpt_params.h"

namespace trainer {

namespace {

using coord::InvalidArgument;
using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit (100 MB)

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

// A file written through a temporary name: Commit fsyncs and renames it into place;
// destroyed uncommitted, it removes the temporary.
class AtomicFile {
 public:
  static coord::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path) {
    auto f = std::unique_ptr<AtomicFile>(new AtomicFile(path));
    unlink(f->tmp_.c_str());
    f->fd_ = open(f->tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd_ < 0) return coord::ErrnoStatus("create " + f->tmp_, errno);
    return f;
  }
  ~AtomicFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(tmp_.c_str());
  }
  coord::Status Write(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return coord::ErrnoStatus("write " + tmp_, errno);
      data += w;
      n -= static_cast<size_t>(w);
    }
    return coord::Status::Ok();
  }
  coord::Status Commit() {
    if (fsync(fd_) != 0) return coord::ErrnoStatus("fsync " + tmp_, errno);
    close(fd_);
    fd_ = -1;
    if (rename(tmp_.c_str(), path_.c_str()) != 0)
      return coord::ErrnoStatus("rename " + tmp_, errno);
    committed_ = true;
    const int dfd = open(coord::Dirname(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    return coord::Status::Ok();
  }

 private:
  explicit AtomicFile(std::string path)
      : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(getpid())) {}
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

const char* SafetensorsDtypeName(SafetensorsDtype d) {
  switch (d) {
    case SafetensorsDtype::kF32:
      return "F32";
    case SafetensorsDtype::kBF16:
      return "BF16";
    case SafetensorsDtype::kF16:
      return "F16";
  }
  return "F32";
}

size_t SafetensorsDtypeBytes(SafetensorsDtype d) { return d == SafetensorsDtype::kF32 ? 4 : 2; }

coord::StatusOr<SafetensorsDtype> ParseSafetensorsDtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "F32") return SafetensorsDtype::kF32;
  if (name == "bf16" || name == "bfloat16" || name == "BF16") return SafetensorsDtype::kBF16;
  if (name == "fp16" || name == "float16" || name == "F16") return SafetensorsDtype::kF16;
  return InvalidArgument("dtype: expected fp32, bf16 or fp16, got \"" + name + "\"");
}

coord::Status WriteSafetensorsStreaming(const std::string& path,
                                        const std::vector<SafetensorsSpec>& tensors,
                                        SafetensorsDtype dtype, const SafetensorsFill& fill,
                                        const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  const size_t elem = SafetensorsDtypeBytes(dtype);
  size_t offset = 0, largest = 0;
  for (const SafetensorsSpec& t : tensors) {
    size_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return InvalidArgument(path + ": tensor " + t.name + ": negative dimension");
      numel *= static_cast<size_t>(d);
    }
    if (header.contains(t.name)) return InvalidArgument(path + ": duplicate tensor " + t.name);
    header[t.name] = {{"dtype", SafetensorsDtypeName(dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + numel * elem}}};
    offset += numel * elem;
    largest = std::max(largest, numel);
  }
  std::string head = header.dump();
  while (head.size() % 8 != 0) head.push_back(' ');  // align data to 8 bytes
  std::string prefix;
  AppendLe64(&prefix, head.size());
  prefix += head;
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path));
  RETURN_IF_ERROR(file->Write(prefix.data(), prefix.size()));
  std::vector<float> values(largest);
  std::vector<uint16_t> half(dtype == SafetensorsDtype::kF32 ? 0 : largest);
  for (size_t k = 0; k < tensors.size(); ++k) {
    size_t numel = 1;
    for (int64_t d : tensors[k].shape) numel *= static_cast<size_t>(d);
    RETURN_IF_ERROR(fill(k, values.data()));
    // Little-endian: this host's layout (x86-64 / aarch64 are little-endian).
    if (dtype == SafetensorsDtype::kF32) {
      RETURN_IF_ERROR(
          file->Write(reinterpret_cast<const char*>(values.data()), numel * sizeof(float)));
      continue;
    }
    for (size_t i = 0; i < numel; ++i) {
      half[i] = dtype == SafetensorsDtype::kBF16 ? kernels::cpu::float_to_bf16_bits(values[i])
                                                 : kernels::cpu::float_to_fp16_bits(values[i]);
    }
    RETURN_IF_ERROR(file->Write(reinterpret_cast<const char*>(half.data()), numel * 2));
  }
  return file->Commit();
}

coord::Status WriteSafetensors(const std::string& path,
                               const std::vector<SafetensorsEntry>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsSpec> specs;
  for (const SafetensorsEntry& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    if (numel != static_cast<int64_t>(t.data.size())) {
      return InvalidArgument(path + ": tensor " + t.name + " has shape " + ShapeString(t.shape) +
                             " but " + std::to_string(t.data.size()) + " values");
    }
    specs.push_back({t.name, t.shape});
  }
  return WriteSafetensorsStreaming(
      path, specs, SafetensorsDtype::kF32,
      [&](size_t k, float* out) {
        std::copy(tensors[k].data.begin(), tensors[k].data.end(), out);
        return coord::Status::Ok();
      },
      metadata);
}

class SafetensorsFile::Mapping {
 public:
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~Mapping() {
    if (addr_ != nullptr) munmap(addr_, size_);
  }
  const char* data() const { return static_cast<const char*>(addr_); }
  size_t size() const { return size_; }
  // Drops the pages of [begin, end) from this process's memory (they are re-read from
  // the file if touched again).
  void Release(size_t begin, size_t end) const {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t b = (begin + page - 1) / page * page, e = end / page * page;
    if (e > b) madvise(static_cast<char*>(addr_) + b, e - b, MADV_DONTNEED);
  }

 private:
  void* addr_;
  size_t size_;
};

coord::StatusOr<SafetensorsFile> SafetensorsFile::Read(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? coord::NotFound(path + ": no such file")
                           : coord::ErrnoStatus("open " + path, errno);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return coord::ErrnoStatus("stat " + path, err);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    close(fd);
    return InvalidArgument(path + ": not a safetensors file (" + std::to_string(size) +
                           " bytes, need at least the 8-byte header length)");
  }
  void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  close(fd);  // the mapping keeps the file
  if (addr == MAP_FAILED) return coord::ErrnoStatus("mmap " + path, map_err);
  auto map = std::make_shared<const Mapping>(addr, size);
  const char* raw = map->data();
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(raw[i]);
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return InvalidArgument(path + ": header length " + std::to_string(header_len) +
                           " does not fit in the file (" + std::to_string(size) + " bytes)");
  }
  json header = json::parse(raw + 8, raw + 8 + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return InvalidArgument(path + ": header is not a JSON object");
  }
  SafetensorsFile file;
  file.path_ = path;
  file.data_ = raw + 8 + header_len;
  file.data_size_ = size - 8 - header_len;
  file.map_ = std::move(map);
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
    // The element count is checked against the file as it is multiplied: a header's
    // shape [2^40, 2^40] overflowed int64 (undefined) and could wrap to a small count.
    int64_t numel = 1;
    bool numel_overflows = false;
    for (const json& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return InvalidArgument(where + ": shape must hold non-negative integers");
      }
      info.shape.push_back(d.get<int64_t>());
      numel_overflows |= __builtin_mul_overflow(numel, info.shape.back(), &numel);
    }
    const json& off = e["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return InvalidArgument(where + ": data_offsets must be non-negative integers");
    }
    info.begin = off[0].get<size_t>();
    info.end = off[1].get<size_t>();
    const int dtype_bytes = DtypeBytes(info.dtype);
    if (dtype_bytes == 0) return InvalidArgument(where + ": unknown dtype " + info.dtype);
    if (info.end < info.begin || info.end > file.data_size_) {
      return InvalidArgument(where + ": data_offsets [" + std::to_string(info.begin) + ", " +
                             std::to_string(info.end) + ") outside the data section (" +
                             std::to_string(file.data_size_) + " bytes); file truncated?");
    }
    if (numel_overflows || static_cast<uint64_t>(numel) > file.data_size_ / dtype_bytes ||
        info.end - info.begin != static_cast<size_t>(numel) * dtype_bytes) {
      return InvalidArgument(where + ": " + std::to_string(info.end - info.begin) +
                             " bytes for shape " + ShapeString(info.shape) + " of " + info.dtype);
    }
    file.tensors_[it.key()] = std::move(info);
  }
  return file;
}

coord::Status SafetensorsFile::CheckShape(const std::string& name,
                                          const std::vector<int64_t>& expected_shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return coord::NotFound(path_ + ": no tensor " + name);
  if (it->second.shape != expected_shape) {
    return InvalidArgument(path_ + ": tensor " + name + ": expected shape " +
                           ShapeString(expected_shape) + ", got " + ShapeString(it->second.shape));
  }
  return coord::Status::Ok();
}

coord::Status SafetensorsFile::ReadF32(const std::string& name,
                                       const std::vector<int64_t>& expected_shape,
                                       float* out) const {
  RETURN_IF_ERROR(CheckShape(name, expected_shape));
  const TensorInfo& info = tensors_.at(name);
  const char* src = data_ + info.begin;
  const size_t n = (info.end - info.begin) / DtypeBytes(info.dtype);
  if (info.dtype == "F32") {
    std::memcpy(out, src, n * sizeof(float));
  } else if (info.dtype == "F16" || info.dtype == "BF16") {
    const bool f16 = info.dtype == "F16";
#pragma omp parallel for schedule(static) if (n >= (1u << 20))
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      if (f16) {
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
  const size_t header_bytes = static_cast<size_t>(data_ - map_->data());
  map_->Release(header_bytes + info.begin, header_bytes + info.end);
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

namespace {
coord::StatusOr<GptConfig> Gpt2ConfigFromJson(const std::string& path, const json& j);
}  // namespace

coord::StatusOr<GptConfig> ReadHfGpt2Config(const std::string& dir) {
  const std::string path = coord::JoinPath(dir, "config.json");
  auto text = coord::ReadFile(path);
  if (!text.ok()) return text.status();
  // The shared parser bounds the nesting and says where the syntax breaks.
  auto parsed = coord::ParseJson(*text, path);
  if (!parsed.ok() || !parsed->is_object()) {
    return InvalidArgument(path + ": not a JSON object" +
                           (parsed.ok() ? "" : " (" + parsed.status().message() + ")"));
  }
  const json& j = *parsed;
  try {
    return Gpt2ConfigFromJson(path, j);
  } catch (const json::exception& e) {  // a value of the wrong type ("n_inner": "x")
    return InvalidArgument(path + ": " + e.what());
  }
}

namespace {

coord::StatusOr<GptConfig> Gpt2ConfigFromJson(const std::string& path, const json& j) {
  GptConfig c;
  // Sizes are multiplied later (4 * n_embd, layer sizes): at most 2^30, as for Llama.
  auto get_int = [&](const char* key, int* out) -> coord::Status {
    if (!j.contains(key)) return InvalidArgument(path + ": " + key + ": expected an integer");
    if (!j[key].is_number_integer() || j[key].get<int64_t>() > (1ll << 30) ||
        j[key].get<int64_t>() < -(1ll << 30)) {
      return InvalidArgument(path + ": " + key + ": expected an integer, got " + j[key].dump());
    }
    *out = j[key].get<int>();
    return coord::Status::Ok();
  };
  auto get_float = [&](const char* key, float* out) -> coord::Status {
    if (!j.contains(key)) return coord::Status::Ok();
    const double d = coord::JsonGet<double>(j[key]);
    if (!(std::fabs(d) <= 1e30)) {
      return InvalidArgument(path + ": " + key + ": " + j[key].dump() + " is out of range");
    }
    *out = static_cast<float>(d);
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
      coord::JsonGet<int64_t>(j["n_inner"]) != 4 * int64_t{c.hidden_size}) {
    return InvalidArgument(path + ": n_inner must be null or 4 * n_embd");
  }
  RETURN_IF_ERROR(get_float("resid_pdrop", &c.hidden_dropout));
  RETURN_IF_ERROR(get_float("attn_pdrop", &c.attention_dropout));
  RETURN_IF_ERROR(get_float("layer_norm_epsilon", &c.layernorm_epsilon));
  RETURN_IF_ERROR(get_float("initializer_range", &c.init_method_std));
  RETURN_IF_ERROR(ValidateGptConfig(c).WithContext(path));
  return c;
}

}  // namespace

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
