// safetensors files (8-byte little-endian header length, JSON header with dtype /
// shape / data_offsets per tensor, then raw little-endian data) and Hugging Face
// GPT-2 import/export (model.safetensors + config.json, GPT2LMHeadModel names and
// Conv1D layouts), so a run can start from or hand off to the HF ecosystem. The
// Llama / Qwen2 family's mapping and sharded checkpoints: hf_llama.h, hf_checkpoint.h.
// Files are read by memory-mapping them (a tensor's pages are read when it is copied
// out and dropped after), and written one tensor at a time to a temporary name,
// fsynced and renamed: a 7B checkpoint never sits whole in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/model/gpt_config.h"

namespace trainer {

// One fp32 tensor to write; data.size() == product(shape).
struct SafetensorsEntry {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

coord::Status WriteSafetensors(const std::string& path,
                               const std::vector<SafetensorsEntry>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

// The float types a checkpoint is written in; values are rounded to nearest even from
// fp32 (exact for values that came from that type).
enum class SafetensorsDtype { kF32, kBF16, kF16 };
const char* SafetensorsDtypeName(SafetensorsDtype d);  // "F32", "BF16", "F16"
// "fp32" / "bf16" / "fp16" (also HF's torch_dtype spellings "float32", "bfloat16", "float16").
coord::StatusOr<SafetensorsDtype> ParseSafetensorsDtype(const std::string& name);
size_t SafetensorsDtypeBytes(SafetensorsDtype d);

// A tensor of a streamed file: its name and shape; fill(k, out) writes tensor k's
// values as fp32 into out (numel floats) when the writer reaches it.
struct SafetensorsSpec {
  std::string name;
  std::vector<int64_t> shape;
};
using SafetensorsFill = std::function<coord::Status(size_t k, float* out)>;
// Writes path tensor by tensor (the largest tensor's fp32 values are the only buffer),
// to a temporary name, fsynced and renamed.
coord::Status WriteSafetensorsStreaming(const std::string& path,
                                        const std::vector<SafetensorsSpec>& tensors,
                                        SafetensorsDtype dtype, const SafetensorsFill& fill,
                                        const std::map<std::string, std::string>& metadata = {});

// A parsed safetensors file, memory-mapped (read-only). Every header entry is
// validated on Read (dtype known, offsets inside the file and matching shape * dtype
// size); tensor data is only touched by ReadF32.
class SafetensorsFile {
 public:
  struct TensorInfo {
    std::string dtype;  // "F32", "F16", "BF16", ...
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  // byte range inside the data section
  };

  static coord::StatusOr<SafetensorsFile> Read(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  // Copies `name` into out (numel floats) as fp32 (F32 as is; F16 and BF16 widened),
  // after checking its shape is `expected_shape`, then drops its pages from memory.
  // Errors name the file, the tensor and both shapes.
  coord::Status ReadF32(const std::string& name, const std::vector<int64_t>& expected_shape,
                        float* out) const;
  // The shape check of ReadF32 alone (nothing read).
  coord::Status CheckShape(const std::string& name,
                           const std::vector<int64_t>& expected_shape) const;

 private:
  class Mapping;  // the mmap of the whole file; unmapped with the last copy
  std::string path_;
  std::shared_ptr<const Mapping> map_;
  const char* data_ = nullptr;  // the data section (everything after the header)
  size_t data_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

// "(2, 3)".
std::string ShapeString(const std::vector<int64_t>& shape);

// --- Hugging Face GPT-2 --------------------------------------------------------
// Our layout -> HF GPT2LMHeadModel ("transformer." prefix on export; import accepts
// names with or without it, as HF's own gpt2 checkpoint has none):
//   wte (Vp,C)       -> transformer.wte.weight (V,C), rows >= V (padding) dropped
//   wpe (maxT,C)     -> transformer.wpe.weight
//   qkvw (3C,C)      -> transformer.h.{i}.attn.c_attn.weight (C,3C)  Conv1D: transposed
//   attprojw (C,C)   -> transformer.h.{i}.attn.c_proj.weight (C,C)   transposed
//   fcw (4C,C)       -> transformer.h.{i}.mlp.c_fc.weight (C,4C)     transposed
//   fcprojw (C,4C)   -> transformer.h.{i}.mlp.c_proj.weight (4C,C)   transposed
//   biases, ln_1, ln_2, ln_f as they are; lm_head is tied to wte (not written).

// Writes dir/model.safetensors and dir/config.json; params is the flat buffer.
coord::Status ExportHfGpt2(const std::string& dir, const GptConfig& config, const float* params);
// Reads dir/config.json into a GptConfig (non-HF fields keep their defaults; dropouts
// from resid_pdrop / attn_pdrop). Refuses activations other than gelu_new and n_inner != 4C.
coord::StatusOr<GptConfig> ReadHfGpt2Config(const std::string& dir);
// Loads dir/model.safetensors into the flat buffer of `config` (padded wte rows zeroed).
coord::Status ImportHfGpt2(const std::string& dir, const GptConfig& config, float* params);

}  // namespace trainer
