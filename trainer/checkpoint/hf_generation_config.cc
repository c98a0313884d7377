// generation_config.json's stop ids (see hf_generation_config.h).
#include "trainer/checkpoint/hf_generation_config.h"

#include <cstdint>

#include "common/fs.h"
#include "common/json_file.h"

namespace trainer {

coord::StatusOr<std::vector<int>> ReadHfEosTokenIds(const std::string& path) {
  ASSIGN_OR_RETURN(const nlohmann::json j, coord::LoadJsonFile(path));
  if (!j.is_object()) return coord::InvalidArgument(path + ": expected a JSON object");
  std::vector<int> ids;
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return ids;
  const nlohmann::json& e = j["eos_token_id"];
  const nlohmann::json list = e.is_array() ? e : nlohmann::json::array({e});
  for (const nlohmann::json& id : list) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return coord::InvalidArgument(path +
                                    ": eos_token_id must be a token id or a list of "
                                    "them, got " +
                                    e.dump());
    }
    ids.push_back(static_cast<int>(id.get<int64_t>()));
  }
  return ids;
}

std::string GenerationConfigBeside(const std::string& tokenizer_model) {
  if (tokenizer_model.empty()) return "";
  const std::string dir =
      coord::IsDirectory(tokenizer_model) ? tokenizer_model : coord::Dirname(tokenizer_model);
  const std::string path = coord::JoinPath(dir, "generation_config.json");
  return coord::PathExists(path) ? path : "";
}

}  // namespace trainer
