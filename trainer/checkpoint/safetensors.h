// safetensors files (8-byte little-endian header length, JSON header with dtype /
// shape / data_offsets per tensor, then raw little-endian data) and Hugging Face
// GPT-2 import/export (model.safetensors + config.json, GPT2LMHeadModel names and
// Conv1D layouts), so a run can start from or hand off to the HF ecosystem.
// Files are written to a temporary name, fsynced and renamed (coord::WriteFileAtomic).
#pragma once

#include <cstdint>
#include <map>
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

// A parsed safetensors file held in memory. Every header entry is validated on
// Read (dtype known, offsets inside the file and matching shape * dtype size).
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
  // after checking its shape is `expected_shape`. Errors name the file and tensor.
  coord::Status ReadF32(const std::string& name, const std::vector<int64_t>& expected_shape,
                        float* out) const;

 private:
  std::string path_;
  std::string data_;  // the data section (everything after the header)
  std::map<std::string, TensorInfo> tensors_;
};

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
