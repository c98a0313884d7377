// A Hugging Face checkpoint directory's safetensors, whole or sharded: model.safetensors,
// or model.safetensors.index.json ({"weight_map": {tensor: shard file}}) and the shards
// it names. Open checks the index, that every listed shard exists and that each
// tensor is in the shard the index says (headers only: the shards are memory-mapped and
// a tensor's data is read only when it is copied out), so a bad directory is refused
// before anything is loaded. Writing splits tensors into shards of a maximum size as
// HF's save_pretrained does (model-00001-of-00003.safetensors + the index; one shard
// is plain model.safetensors).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/checkpoint/safetensors.h"

namespace trainer {

inline constexpr char kHfSingleFile[] = "model.safetensors";
inline constexpr char kHfIndexFile[] = "model.safetensors.index.json";

class HfCheckpoint {
 public:
  // NotFound when dir has neither file, or a shard of the index is missing (named, with
  // the index); InvalidArgument for a malformed index or shard.
  static coord::StatusOr<HfCheckpoint> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool Has(const std::string& name) const { return where_.count(name) > 0; }
  // Every tensor name, sorted.
  std::vector<std::string> Names() const;
  // As SafetensorsFile's, on whichever shard holds the tensor; errors name the file.
  coord::Status CheckShape(const std::string& name, const std::vector<int64_t>& shape) const;
  coord::Status ReadF32(const std::string& name, const std::vector<int64_t>& shape,
                        float* out) const;
  // The dtype of a tensor as stored ("BF16") and its shape; "" and {} if absent.
  std::string Dtype(const std::string& name) const;
  std::vector<int64_t> Shape(const std::string& name) const;

 private:
  std::string dir_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, size_t> where_;  // tensor -> index in shards_
};

// Writes `tensors` into dir in shards of at most max_shard_bytes each (a tensor larger
// than that gets a shard of its own), with model.safetensors.index.json when there is
// more than one shard. Files are written one tensor at a time (WriteSafetensorsStreaming).
coord::Status WriteHfShards(const std::string& dir, const std::vector<SafetensorsSpec>& tensors,
                            SafetensorsDtype dtype, const SafetensorsFill& fill,
                            uint64_t max_shard_bytes);

}  // namespace trainer
