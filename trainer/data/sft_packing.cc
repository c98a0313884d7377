// Rows of supervised fine-tuning samples (sft_packing.h): padding and best-fit
// decreasing packing.
#include "trainer/data/sft_packing.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace trainer::data {
namespace {

// Appends sample s at position *at of row r (the sample's n - 1 positions).
void Place(const SftSample& s, int segment, int64_t r, int* at, SftRows* out) {
  const size_t base = static_cast<size_t>(r) * out->T;
  const int n = static_cast<int>(s.ids.size());
  for (int i = 0; i + 1 < n; ++i) {
    const size_t k = base + static_cast<size_t>(*at + i);
    out->inputs[k] = s.ids[static_cast<size_t>(i)];
    out->targets[k] = s.ids[static_cast<size_t>(i) + 1];
    out->trained[k] = s.trained[static_cast<size_t>(i) + 1];
    out->positions[k] = i;
    out->segments[k] = segment;
    out->trained_count[static_cast<size_t>(r)] += out->trained[k];
  }
  *at += n - 1;
}

// The rest of row r from position at: padding, one segment, positions from 0.
void Pad(int64_t r, int at, int segment, int32_t pad_id, SftRows* out) {
  const size_t base = static_cast<size_t>(r) * out->T;
  for (int t = at; t < out->T; ++t) {
    const size_t k = base + static_cast<size_t>(t);
    out->inputs[k] = pad_id;
    out->targets[k] = pad_id;
    out->trained[k] = 0;
    out->positions[k] = t - at;
    out->segments[k] = segment;
  }
}

}  // namespace

coord::StatusOr<SftRows> BuildSftRows(const std::vector<SftSample>& samples, int T, int32_t pad_id,
                                      bool pack) {
  if (T < 1) return coord::InvalidArgument("BuildSftRows: T must be positive");
  for (const SftSample& s : samples) {
    if (s.ids.size() < 2 || s.ids.size() > static_cast<size_t>(T) + 1) {
      return coord::InvalidArgument("the sample of line " + std::to_string(s.line) + " has " +
                                    std::to_string(s.ids.size()) + " tokens; a row holds 2 to " +
                                    std::to_string(T + 1) + " (seq_length + 1)");
    }
  }
  // bins[r]: the samples of row r, in placing order.
  std::vector<std::vector<size_t>> bins;
  if (!pack) {
    for (size_t i = 0; i < samples.size(); ++i) bins.push_back({i});
  } else {
    std::vector<size_t> order(samples.size());
    std::iota(order.begin(), order.end(), size_t{0});
    // Longest first; ties in file order (stable), so the rows are deterministic.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return samples[a].ids.size() > samples[b].ids.size();
    });
    std::multimap<int, size_t> room;  // free positions -> row, the tightest fit first
    for (size_t i : order) {
      const int need = static_cast<int>(samples[i].ids.size()) - 1;
      auto it = room.lower_bound(need);
      size_t r;
      int left;
      if (it == room.end()) {
        r = bins.size();
        bins.emplace_back();
        left = T;
      } else {
        r = it->second;
        left = it->first;
        room.erase(it);
      }
      bins[r].push_back(i);
      if (left - need > 0) room.emplace(left - need, r);
    }
  }
  SftRows out;
  out.T = T;
  out.rows = static_cast<int64_t>(bins.size());
  const size_t n = bins.size() * static_cast<size_t>(T);
  out.inputs.assign(n, 0);
  out.targets.assign(n, 0);
  out.trained.assign(n, 0);
  out.positions.assign(n, 0);
  out.segments.assign(n, 0);
  out.trained_count.assign(bins.size(), 0);
  out.filled.assign(bins.size(), 0);
  for (size_t r = 0; r < bins.size(); ++r) {
    int at = 0, segment = 0;
    for (size_t i : bins[r]) Place(samples[i], segment++, static_cast<int64_t>(r), &at, &out);
    out.filled[r] = at;
    Pad(static_cast<int64_t>(r), at, segment, pad_id, &out);
  }
  return out;
}

}  // namespace trainer::data
