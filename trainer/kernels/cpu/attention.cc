// Causal attention forward/backward (see attention.h). Tight loops over the
// causal triangle only (lo <= t2 <= t, lo the first key of the token's segment), rows
// of q/k/v contiguous in HS, one (b,h) per task.
#include "trainer/kernels/cpu/attention.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "trainer/kernels/cpu/dropout.h"

namespace kernels::cpu {

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH,
                       float p, const trainer::RngStream& rng, int head_offset, int kv_heads,
                       const int* kv_begin) {
  const QkvLayout l = QkvLayout::Make(C, NH, kv_heads);
  const int C3 = l.row(), HS = l.HS;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const float* base = qkv + static_cast<size_t>(b) * T * C3;  // token (b,0)
      const int qo = l.q(h), ko = l.k(l.group(h)), vo = l.v(l.group(h));
      const trainer::RngStream sample_rng = trainer::SampleStream(rng, b);
      for (int t = 0; t < T; ++t) {
        const float* q = base + static_cast<size_t>(t) * C3 + qo;  // (HS,)
        size_t row_index = ((static_cast<size_t>(b) * NH + h) * T + t) * T;
        const size_t sample_row = (static_cast<size_t>(head_offset + h) * T + t) * T;  // in sample b
        float* att_row = att + row_index;                                // (T,)
        const int lo = kv_begin != nullptr ? kv_begin[static_cast<size_t>(b) * T + t] : 0;
        for (int t2 = 0; t2 < lo; ++t2) att_row[t2] = 0.0f;
        float maxval = -INFINITY;
        for (int t2 = lo; t2 <= t; ++t2) {
          const float* k = base + static_cast<size_t>(t2) * C3 + ko;
          float s = 0.0f;
          for (int i = 0; i < HS; ++i) s += q[i] * k[i];
          s *= scale;
          att_row[t2] = s;
          maxval = s > maxval ? s : maxval;
        }
        float sum = 0.0f;
        for (int t2 = lo; t2 <= t; ++t2) {
          float e = std::exp(att_row[t2] - maxval);
          att_row[t2] = e;
          sum += e;
        }
        const float inv_sum = 1.0f / sum;
        for (int t2 = lo; t2 <= t; ++t2) att_row[t2] *= inv_sum;
        for (int t2 = t + 1; t2 < T; ++t2) att_row[t2] = 0.0f;
        float* y = out + (static_cast<size_t>(b) * T + t) * C + h * HS;  // (HS,)
        for (int i = 0; i < HS; ++i) y[i] = 0.0f;
        for (int t2 = lo; t2 <= t; ++t2) {
          float w = att_row[t2];
          if (p > 0.0f) {
            w = dropout_keep(sample_rng, sample_row + t2, p) ? w * keep_scale : 0.0f;
          }
          const float* v = base + static_cast<size_t>(t2) * C3 + vo;
          for (int i = 0; i < HS; ++i) y[i] += w * v[i];
        }
      }
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B,
                        int T, int C, int NH, float p, const trainer::RngStream& rng,
                        int head_offset, int kv_heads, const int* kv_begin) {
  const QkvLayout l = QkvLayout::Make(C, NH, kv_heads);
  const int C3 = l.row(), HS = l.HS, R = l.per_group();
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b) {
    for (int g = 0; g < l.KV; ++g) {
      std::vector<float> datt(T);  // (T,) gradient of one row of probabilities
      const float* base = qkv + static_cast<size_t>(b) * T * C3;
      float* dbase = dqkv + static_cast<size_t>(b) * T * C3;
      const int ko = l.k(g), vo = l.v(g);
      const trainer::RngStream sample_rng = trainer::SampleStream(rng, b);
      for (int h = g * R; h < (g + 1) * R; ++h) {  // the group's query heads, in order
        const int qo = l.q(h);
        for (int t = 0; t < T; ++t) {
          size_t row_index = ((static_cast<size_t>(b) * NH + h) * T + t) * T;
          const size_t sample_row = (static_cast<size_t>(head_offset + h) * T + t) * T;
          const float* att_row = att + row_index;  // (T,)
          const float* dy = dout + (static_cast<size_t>(b) * T + t) * C + h * HS;
          const int lo = kv_begin != nullptr ? kv_begin[static_cast<size_t>(b) * T + t] : 0;
          // y = sum_t2 drop(att[t2]) v[t2]: gradients to the probabilities and to
          // v.
          for (int t2 = lo; t2 <= t; ++t2) {
            const float* v = base + static_cast<size_t>(t2) * C3 + vo;
            float* dv = dbase + static_cast<size_t>(t2) * C3 + vo;
            float mask_scale = 1.0f;
            if (p > 0.0f)
              mask_scale = dropout_keep(sample_rng, sample_row + t2, p) ? keep_scale : 0.0f;
            float w = att_row[t2] * mask_scale;
            float d = 0.0f;
            for (int i = 0; i < HS; ++i) {
              d += dy[i] * v[i];
              dv[i] += w * dy[i];
            }
            datt[t2] = d * mask_scale;
          }
          // softmax backward: dpre[t2] = att[t2] * (datt[t2] - sum_j att[j]
          // datt[j]).
          float dot = 0.0f;
          for (int t2 = lo; t2 <= t; ++t2) dot += att_row[t2] * datt[t2];
          const float* q = base + static_cast<size_t>(t) * C3 + qo;
          float* dq = dbase + static_cast<size_t>(t) * C3 + qo;
          for (int t2 = lo; t2 <= t; ++t2) {
            float dpre = att_row[t2] * (datt[t2] - dot) * scale;
            const float* k = base + static_cast<size_t>(t2) * C3 + ko;
            float* dk = dbase + static_cast<size_t>(t2) * C3 + ko;
            for (int i = 0; i < HS; ++i) {
              dq[i] += dpre * k[i];
              dk[i] += dpre * q[i];
            }
          }
        }
      }
    }
  }
}

}  // namespace kernels::cpu
