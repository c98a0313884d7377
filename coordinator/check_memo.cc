#include "coordinator/check_memo.h"

#include <algorithm>

#include <openssl/sha.h>

namespace coord::coordinator {
namespace {

// Length-prefixed, so no two different inputs give the same text.
void Add(std::string* out, const std::string& field) {
  *out += std::to_string(field.size()) + ":" + field;
}

}  // namespace

std::string CheckMemo::Fingerprint(const ClusterCheckRequest& request) {
  std::string text;
  for (const HostEntry& h : request.hosts) Add(&text, CheckNodeName(h));
  Add(&text, request.config_json);
  for (const auto& [k, v] : request.env) {  // std::map: sorted, so order-independent
    Add(&text, k);
    Add(&text, v);
  }
  Add(&text, request.workdir);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

const CheckMemo::Entry* CheckMemo::FreshLocked(const std::string& fingerprint, int64_t now_mono,
                                               int64_t max_age_ms) const {
  auto it = entries_.find(fingerprint);
  if (it == entries_.end()) return nullptr;
  const int64_t age = now_mono - it->second.passed_mono;
  return age >= 0 && age <= max_age_ms ? &it->second : nullptr;
}

bool CheckMemo::Has(const std::string& fingerprint, int64_t now_mono, int64_t max_age_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  return FreshLocked(fingerprint, now_mono, max_age_ms) != nullptr;
}

std::optional<CheckMemo::Hit> CheckMemo::Find(const std::string& fingerprint,
                                              const std::vector<std::string>& agent_ids,
                                              int64_t now_mono, int64_t max_age_ms) {
  if (max_age_ms <= 0) return std::nullopt;
  if (std::any_of(agent_ids.begin(), agent_ids.end(), [](const auto& id) { return id.empty(); })) {
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const Entry* e = FreshLocked(fingerprint, now_mono, max_age_ms);
  if (e == nullptr || e->agent_ids != agent_ids) return std::nullopt;
  return Hit{e->report, now_mono - e->passed_mono};
}

void CheckMemo::Remember(const std::string& fingerprint, std::vector<std::string> agent_ids,
                         int64_t now_mono, env_check::ClusterReport report) {
  if (env_check::ClusterExitCode(report) == 2) return;  // a FAIL is checked again
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() >= kMaxEntries && !entries_.count(fingerprint)) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.second.passed_mono < b.second.passed_mono;
    });
    entries_.erase(oldest);
  }
  entries_[fingerprint] = Entry{std::move(agent_ids), now_mono, std::move(report)};
}

}  // namespace coord::coordinator
