// KV-cache attention (see attention_decode.h). The loops mirror attention_forward's:
// float dot product in i order, scale after, max-subtracted exp, one reciprocal.
#include "trainer/kernels/cpu/attention_decode.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "trainer/kernels/cpu/reduce.h"

namespace kernels::cpu {

void kv_cache_append(float* k_cache, float* v_cache, const float* qkv, int n, int pos0, int S,
                     const QkvLayout& layout) {
  const int HS = layout.HS, row = layout.row();
  for (int i = 0; i < n; ++i) {
    const float* src = qkv + static_cast<size_t>(i) * row;  // token pos0 + i
    for (int g = 0; g < layout.KV; ++g) {
      const size_t dst = (static_cast<size_t>(g) * S + pos0 + i) * HS;
      std::memcpy(k_cache + dst, src + layout.k(g), HS * sizeof(float));
      std::memcpy(v_cache + dst, src + layout.v(g), HS * sizeof(float));
    }
  }
}

void attention_decode_forward(float* out, const float* qkv, const float* k_cache,
                              const float* v_cache, int n, int pos0, int S,
                              const QkvLayout& layout) {
  const int NH = layout.NH, HS = layout.HS, row = layout.row();
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  // A decode step early in the sequence is a few thousand flops: not worth a fork/join
  // (which on a loaded machine waits for a descheduled thread).
  const long long work = 2LL * n * NH * (pos0 + n) * HS;
#pragma omp parallel for collapse(2) schedule(static) if (work >= kParallelMinWork)
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < NH; ++h) {
      const int t = pos0 + i;  // this token's position: it sees cache rows 0..t
      const float* q = qkv + static_cast<size_t>(i) * row + layout.q(h);  // (HS,)
      const size_t head = static_cast<size_t>(layout.group(h)) * S * HS;  // its KV head
      const float* kh = k_cache + head;                                   // (S, HS)
      const float* vh = v_cache + head;                                   // (S, HS)
      std::vector<float> att(static_cast<size_t>(t) + 1);                 // (t+1,)
      float maxval = -INFINITY;
      for (int t2 = 0; t2 <= t; ++t2) {
        const float* k = kh + static_cast<size_t>(t2) * HS;
        float s = 0.0f;
        for (int j = 0; j < HS; ++j) s += q[j] * k[j];
        s *= scale;
        att[t2] = s;
        maxval = s > maxval ? s : maxval;
      }
      float sum = 0.0f;
      for (int t2 = 0; t2 <= t; ++t2) {
        const float e = std::exp(att[t2] - maxval);
        att[t2] = e;
        sum += e;
      }
      const float inv_sum = 1.0f / sum;
      for (int t2 = 0; t2 <= t; ++t2) att[t2] *= inv_sum;
      float* y = out + static_cast<size_t>(i) * NH * HS + static_cast<size_t>(h) * HS;  // (HS,)
      for (int j = 0; j < HS; ++j) y[j] = 0.0f;
      for (int t2 = 0; t2 <= t; ++t2) {
        const float w = att[t2];
        const float* v = vh + static_cast<size_t>(t2) * HS;
        for (int j = 0; j < HS; ++j) y[j] += w * v[j];
      }
    }
  }
}

}  // namespace kernels::cpu
