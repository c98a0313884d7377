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
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& id = list[i];
    // Only integers in [0, 2^31): 1e300, -1 and 2^40 are refused, never converted.
    if (!id.is_number_unsigned() || id.get<uint64_t>() > INT32_MAX) {
      return coord::InvalidArgument(
          path + ": " + (e.is_array() ? coord::JsonIndexPath("eos_token_id", i) : "eos_token_id") +
          ": got " + (id.is_number() ? id.dump() : id.type_name()) +
          "; eos_token_id must be a token id (an integer in [0, 2^31)) or a list of them: "
          "fix the file, or pass --generation-config with another");
    }
    ids.push_back(coord::JsonGet<int>(id));
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
