// GPT_RANK_INJECT_* parsing (fault_injection.h).
#include "trainer/train/fault_injection.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/logging.h"

namespace gpt_rank::train {
namespace {

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

coord::StatusOr<std::vector<int64_t>> Overflows(const char* v) {
  std::vector<int64_t> out;
  if (v == nullptr) return out;
  for (const std::string& item : SplitCommas(v)) {
    char* end = nullptr;
    const long long it = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || it < 1) {
      return coord::InvalidArgument(
          "GPT_RANK_INJECT_OVERFLOW: expected iterations like \"3,7\", "
          "got \"" + std::string(v) + "\"");
    }
    out.push_back(it);
  }
  return out;
}

// "A:B" with A >= 0 and B >= 1; {-1, -1} when unset.
coord::StatusOr<std::pair<int, int64_t>> Pair(const char* name, const char* v,
                                              const char* form) {
  if (v == nullptr) return std::pair<int, int64_t>{-1, -1};
  int a = -1;
  long long b = -1;
  char extra = 0;
  if (std::sscanf(v, "%d:%lld%c", &a, &b, &extra) != 2 || a < 0 || b < 1) {
    return coord::InvalidArgument(std::string(name) + ": expected " + form + ", got \"" + v +
                                  "\"");
  }
  return std::pair<int, int64_t>{a, b};
}

coord::StatusOr<std::vector<InjectedDelay>> Delays(const char* v) {
  std::vector<InjectedDelay> out;
  if (v == nullptr) return out;
  for (const std::string& item : SplitCommas(v)) {
    InjectedDelay d;
    long long ms = -1, from = 1;
    int used = 0, used_from = 0;
    const bool base = std::sscanf(item.c_str(), "%d:%lld%n", &d.rank, &ms, &used) == 2;
    const char* rest = item.c_str() + used;
    const bool tail = *rest == '\0' ||
                      (std::sscanf(rest, "@%lld%n", &from, &used_from) == 1 &&
                       rest[used_from] == '\0');
    if (!base || !tail || d.rank < 0 || ms < 0 || from < 1) {
      return coord::InvalidArgument(
          "GPT_RANK_INJECT_DELAY_MS: expected RANK:MS[@FROM_ITERATION] like \"1:50\" or "
          "\"1:50@20,3:10\", got \"" + std::string(v) + "\"");
    }
    d.ms = ms;
    d.from_iteration = from;
    out.push_back(d);
  }
  return out;
}

}  // namespace

int64_t FaultInjection::DelayMs(int rank, int64_t it) const {
  int64_t ms = 0;
  for (const InjectedDelay& d : delays) {
    if (d.rank == rank && it >= d.from_iteration) ms += d.ms;
  }
  return ms;
}

void FaultInjection::MaybeDelay(int rank, int64_t it) {
  const int64_t ms = DelayMs(rank, it);
  if (ms <= 0) return;
  if (!delay_announced_) {
    delay_announced_ = true;
    LOG_WARN << "GPT_RANK_INJECT_DELAY_MS: rank " << rank << " computes " << ms
             << " ms longer per iteration from iteration " << it;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

coord::StatusOr<FaultInjection> FaultInjectionFromEnv() {
  FaultInjection f;
  ASSIGN_OR_RETURN(f.overflow_at, Overflows(Env("GPT_RANK_INJECT_OVERFLOW")));
  ASSIGN_OR_RETURN(f.stop, Pair("GPT_RANK_INJECT_STOP", Env("GPT_RANK_INJECT_STOP"),
                                "STAGE:ITERATION like \"2:3\""));
  ASSIGN_OR_RETURN(f.delays, Delays(Env("GPT_RANK_INJECT_DELAY_MS")));
  ASSIGN_OR_RETURN(f.hang, Pair("GPT_RANK_INJECT_HANG", Env("GPT_RANK_INJECT_HANG"),
                                "RANK:ITERATION like \"2:5\""));
  return f;
}

}  // namespace gpt_rank::train
