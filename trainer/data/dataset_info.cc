// DescribeDataset for `gpt-rank data-info` (see dataset_info.h).
#include "trainer/data/dataset_info.h"

#include <cstdlib>
#include <sstream>

#include "trainer/data/gpt2_pretokenizer.h"

namespace trainer::data {

using coord::InvalidArgument;
using coord::StatusOr;

static bool ParseIndex(const std::string& s, int64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) {
    return false;
  }
  *out = std::strtoll(s.c_str(), nullptr, 10);
  return true;
}

StatusOr<DocumentRange> ParseDocumentRange(const std::string& text) {
  DocumentRange r;
  if (text.empty()) return r;
  const size_t colon = text.find(':');
  const std::string a = text.substr(0, colon);
  const std::string b = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (!ParseIndex(a, &r.first) || (colon != std::string::npos && !ParseIndex(b, &r.end))) {
    return InvalidArgument("document range \"" + text + "\": expected A:B or A (A, B >= 0)");
  }
  if (colon == std::string::npos) r.end = r.first + 1;
  if (r.end < r.first) {
    return InvalidArgument("document range \"" + text + "\": end is before start");
  }
  return r;
}

StatusOr<DatasetDescription> DescribeDataset(const std::string& prefix, const DocumentRange& docs,
                                             const Tokenizer* tokenizer) {
  ASSIGN_OR_RETURN(auto data, IndexedDataset::Open(prefix));
  DatasetDescription d;
  d.prefix = prefix;
  d.dtype = data->dtype();
  d.sequences = data->num_sequences();
  d.documents = data->num_documents();
  d.tokens = data->num_tokens();
  if (docs.first < 0 || docs.end > d.documents || docs.first > docs.end) {
    return coord::Status(coord::StatusCode::kOutOfRange,
                         prefix + ": documents [" + std::to_string(docs.first) + ", " +
                             std::to_string(docs.end) + ") requested, the dataset has " +
                             std::to_string(d.documents) + " (0 to " +
                             std::to_string(d.documents - 1) + ")");
  }
  for (int64_t id = docs.first; id < docs.end; ++id) {
    DocumentInfo info;
    info.id = id;
    info.first_sequence = data->doc_idx(id);
    info.end_sequence = data->doc_idx(id + 1);
    for (int64_t s = info.first_sequence; s < info.end_sequence; ++s) {
      RETURN_IF_ERROR(data->Get(s, 0, -1, &info.tokens));
    }
    if (tokenizer != nullptr) {
      auto bytes = tokenizer->Decode(info.tokens);
      if (!bytes.ok())
        return bytes.status().WithContext(prefix + ": document " + std::to_string(id));
      info.text = SanitizeUtf8(*bytes);
    }
    d.chosen.push_back(std::move(info));
  }
  return d;
}

nlohmann::json DescriptionToJson(const DatasetDescription& d) {
  nlohmann::json j = {{"prefix", d.prefix},       {"dtype", DTypeName(d.dtype)},
                      {"sequences", d.sequences}, {"documents", d.documents},
                      {"tokens", d.tokens},       {"chosen", nlohmann::json::array()}};
  for (const DocumentInfo& doc : d.chosen) {
    j["chosen"].push_back({{"id", doc.id},
                           {"sequences", {doc.first_sequence, doc.end_sequence}},
                           {"num_tokens", doc.tokens.size()},
                           {"tokens", doc.tokens},
                           {"text", doc.text}});
  }
  return j;
}

std::string DescriptionToText(const DatasetDescription& d) {
  std::ostringstream out;
  out << d.prefix << ": dtype " << DTypeName(d.dtype) << ", " << d.documents << " documents, "
      << d.sequences << " sequences, " << d.tokens << " tokens\n";
  for (const DocumentInfo& doc : d.chosen) {
    out << "document " << doc.id << " (" << doc.tokens.size() << " tokens):\n  ids:";
    for (int32_t t : doc.tokens) out << ' ' << t;
    out << "\n  text: " << nlohmann::json(doc.text).dump() << "\n";
  }
  return out.str();
}

}  // namespace trainer::data
