// Hugging Face checkpoint directories, whole or sharded (see hf_checkpoint.h).
#include "trainer/checkpoint/hf_checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_file.h"

namespace trainer {

namespace {

using nlohmann::json;

size_t Numel(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

coord::StatusOr<HfCheckpoint> HfCheckpoint::Open(const std::string& dir) {
  HfCheckpoint ckpt;
  ckpt.dir_ = dir;
  const std::string index_path = coord::JoinPath(dir, kHfIndexFile);
  const std::string single = coord::JoinPath(dir, kHfSingleFile);
  if (!coord::PathExists(index_path)) {
    if (!coord::PathExists(single)) {
      return coord::NotFound(dir + ": no " + kHfSingleFile + " and no " + kHfIndexFile);
    }
    ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Read(single));
    for (const auto& [name, info] : file.tensors()) ckpt.where_[name] = 0;
    ckpt.shards_.push_back(std::move(file));
    return ckpt;
  }
  ASSIGN_OR_RETURN(const json index, coord::LoadJsonFile(index_path));
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return coord::InvalidArgument(index_path + ": expected an object with a \"weight_map\" object");
  }
  std::map<std::string, size_t> shard_of_file;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string()) {
      return coord::InvalidArgument(index_path + ": " +
                                    coord::JsonChildPath("weight_map", it.key()) +
                                    ": expected a shard file name, got " + it.value().type_name());
    }
    const std::string file = it.value().get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
      return coord::InvalidArgument(index_path + ": " +
                                    coord::JsonChildPath("weight_map", it.key()) + ": \"" + file +
                                    "\" is not a file name in the checkpoint directory");
    }
    auto found = shard_of_file.find(file);
    if (found == shard_of_file.end()) {
      const std::string path = coord::JoinPath(dir, file);
      if (!coord::PathExists(path)) {
        return coord::NotFound(index_path + " lists shard " + file + " (for " + it.key() +
                               ") but " + path + " does not exist");
      }
      ASSIGN_OR_RETURN(SafetensorsFile shard, SafetensorsFile::Read(path));
      found = shard_of_file.emplace(file, ckpt.shards_.size()).first;
      ckpt.shards_.push_back(std::move(shard));
    }
    if (!ckpt.shards_[found->second].Has(it.key())) {
      return coord::InvalidArgument(index_path + " puts " + it.key() + " in " + file +
                                    ", which has no such tensor");
    }
    ckpt.where_[it.key()] = found->second;
  }
  return ckpt;
}

std::vector<std::string> HfCheckpoint::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, shard] : where_) out.push_back(name);
  return out;
}

coord::Status HfCheckpoint::CheckShape(const std::string& name,
                                       const std::vector<int64_t>& shape) const {
  auto it = where_.find(name);
  if (it == where_.end()) return coord::NotFound(dir_ + ": missing tensor " + name);
  return shards_[it->second].CheckShape(name, shape);
}

coord::Status HfCheckpoint::ReadF32(const std::string& name, const std::vector<int64_t>& shape,
                                    float* out) const {
  auto it = where_.find(name);
  if (it == where_.end()) return coord::NotFound(dir_ + ": missing tensor " + name);
  return shards_[it->second].ReadF32(name, shape, out);
}

std::string HfCheckpoint::Dtype(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return "";
  return shards_[it->second].tensors().at(name).dtype;
}

std::vector<int64_t> HfCheckpoint::Shape(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return {};
  return shards_[it->second].tensors().at(name).shape;
}

coord::Status WriteHfShards(const std::string& dir, const std::vector<SafetensorsSpec>& tensors,
                            SafetensorsDtype dtype, const SafetensorsFill& fill,
                            uint64_t max_shard_bytes) {
  RETURN_IF_ERROR(coord::MakeDirs(dir));
  // Greedy, in order, as transformers' split_torch_state_dict_into_shards.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t bytes = 0, total = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const uint64_t b = Numel(tensors[k].shape) * SafetensorsDtypeBytes(dtype);
    if (!shards.back().empty() && bytes + b > max_shard_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(k);
    bytes += b;
    total += b;
  }
  const size_t n = shards.size();
  json weight_map = json::object();
  for (size_t s = 0; s < n; ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, n);
    const std::string file = n == 1 ? kHfSingleFile : name;
    std::vector<SafetensorsSpec> specs;
    for (size_t k : shards[s]) {
      specs.push_back(tensors[k]);
      weight_map[tensors[k].name] = file;
    }
    RETURN_IF_ERROR(WriteSafetensorsStreaming(
        coord::JoinPath(dir, file), specs, dtype,
        [&](size_t j, float* out) { return fill(shards[s][j], out); }, {{"format", "pt"}}));
  }
  // A stale index of an earlier export would point at shards that are not there now.
  const std::string index_path = coord::JoinPath(dir, kHfIndexFile);
  if (n == 1) {
    if (coord::PathExists(index_path) && std::remove(index_path.c_str()) != 0) {
      return coord::ErrnoStatus("remove " + index_path, errno);
    }
    return coord::Status::Ok();
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  return coord::WriteFileAtomic(index_path, index.dump(2) + "\n");
}

}  // namespace trainer
