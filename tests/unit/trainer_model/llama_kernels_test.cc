// The Llama/Qwen2 family's CPU kernels against naive double-precision references:
// RMSNorm, RoPE (HF's rotate_half pairing), SwiGLU and grouped-query attention in
// Megatron's grouped QKV layout. Forward values, and backward against central finite
// differences of the double reference; tolerances as kernels_test.cc (fp32 kernels land
// near 1e-7..1e-6, so 1e-5 forward and 1e-4 backward leave headroom without hiding bugs).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/unit/trainer_model/test_util.h"
#include "trainer/kernels/cpu/attention.h"
#include "trainer/kernels/cpu/rmsnorm.h"
#include "trainer/kernels/cpu/rope.h"
#include "trainer/kernels/cpu/swiglu.h"

namespace kernels::cpu {
namespace {

using trainer::RngStream;
using trainer::testing::NumericalGrad;
using trainer::testing::RandomVector;
using trainer::testing::RelErr;
using trainer::testing::ToDouble;

constexpr double kFwdTol = 1e-5;
constexpr double kBwdTol = 1e-4;

double Dot(const std::vector<double>& a, const std::vector<float>& r) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * r[i];
  return s;
}

// --- rmsnorm -----------------------------------------------------------------

std::vector<double> RmsNormRef(const std::vector<double>& x, const double* w, int N, int C,
                               double eps) {
  std::vector<double> y(x.size());
  for (int n = 0; n < N; ++n) {
    double ss = 0;
    for (int i = 0; i < C; ++i) ss += x[n * C + i] * x[n * C + i];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    for (int i = 0; i < C; ++i) y[n * C + i] = x[n * C + i] * r * w[i];
  }
  return y;
}

TEST(RmsNormTest, ForwardAndBackwardMatchDoubleReference) {
  const int N = 7, C = 16;
  const float eps = 1e-6f;
  auto x = RandomVector(N * C, 1), w = RandomVector(C, 2), dout = RandomVector(N * C, 4);
  std::vector<float> y(N * C), rstd(N), dx(N * C, 1.0f), dw(C, 1.0f);
  rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, eps);
  auto wd = ToDouble(w);
  EXPECT_LT(RelErr(y, RmsNormRef(ToDouble(x), wd.data(), N, C, eps)), kFwdTol);

  // Backward accumulates: start at 1 and compare with 1 + gradient.
  rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), N, C);
  std::vector<double> packed = ToDouble(x);
  packed.insert(packed.end(), wd.begin(), wd.end());
  auto g = NumericalGrad(
      [&](const std::vector<double>& p) {
        std::vector<double> xs(p.begin(), p.begin() + N * C);
        return Dot(RmsNormRef(xs, p.data() + N * C, N, C, eps), dout);
      },
      packed);
  for (double& v : g) v += 1.0;
  EXPECT_LT(RelErr(dx, std::vector<double>(g.begin(), g.begin() + N * C)), kBwdTol);
  EXPECT_LT(RelErr(dw, std::vector<double>(g.begin() + N * C, g.end())), kBwdTol);
}

// --- swiglu ------------------------------------------------------------------

std::vector<double> SwigluRef(const std::vector<double>& in, int N, int F) {
  std::vector<double> y(static_cast<size_t>(N) * F);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < F; ++i) {
      const double g = in[n * 2 * F + i], u = in[n * 2 * F + F + i];
      y[n * F + i] = g / (1.0 + std::exp(-g)) * u;
    }
  return y;
}

TEST(SwigluTest, ForwardAndBackwardMatchDoubleReference) {
  const int N = 5, F = 12;
  auto in = RandomVector(N * 2 * F, 7, 4.0f), dout = RandomVector(N * F, 8);
  std::vector<float> y(N * F), din(N * 2 * F, 1.0f);
  swiglu_forward(y.data(), in.data(), N, F);
  EXPECT_LT(RelErr(y, SwigluRef(ToDouble(in), N, F)), kFwdTol);
  swiglu_backward(din.data(), in.data(), dout.data(), N, F);
  auto g = NumericalGrad(
      [&](const std::vector<double>& p) { return Dot(SwigluRef(p, N, F), dout); }, ToDouble(in));
  for (double& v : g) v += 1.0;
  EXPECT_LT(RelErr(din, g), kBwdTol);
}

// --- rope --------------------------------------------------------------------

// HF's apply_rotary_pos_emb on every q and k head of a plain [q | k | v] row layout,
// in double: x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1].
std::vector<double> RopeRef(std::vector<double> qkv, int B, int T, const QkvLayout& l, double base,
                            const std::vector<int>& pos) {
  const int half = l.HS / 2;
  for (int bt = 0; bt < B * T; ++bt) {
    const double p = pos.empty() ? bt % T : pos[bt];
    auto rotate = [&](int off) {
      double* x = qkv.data() + static_cast<size_t>(bt) * l.row() + off;
      std::vector<double> r(x, x + l.HS);
      for (int i = 0; i < half; ++i) {
        const double f = std::pow(base, -2.0 * i / l.HS), c = std::cos(p * f), s = std::sin(p * f);
        x[i] = r[i] * c - r[i + half] * s;
        x[i + half] = r[i + half] * c + r[i] * s;
      }
    };
    for (int h = 0; h < l.NH; ++h) rotate(l.q(h));
    for (int g = 0; g < l.KV; ++g) rotate(l.k(g));
  }
  return qkv;
}

void CheckRope(const QkvLayout& l, const std::vector<int>& pos) {
  const int B = 2, T = 6;
  const float base = 10000.0f;
  const int P = 64;  // table rows: every position used
  std::vector<float> cos(P * l.HS / 2), sin(cos.size());
  rope_table(cos.data(), sin.data(), P, l.HS, base);
  auto x = RandomVector(static_cast<size_t>(B) * T * l.row(), 31);
  std::vector<float> y = x;
  rope_forward(y.data(), cos.data(), sin.data(), B, T, l, pos.empty() ? nullptr : pos.data());
  EXPECT_LT(RelErr(y, RopeRef(ToDouble(x), B, T, l, base, pos)), kFwdTol);
  // v is untouched.
  for (int bt = 0; bt < B * T; ++bt)
    for (int g = 0; g < l.KV; ++g)
      for (int i = 0; i < l.HS; ++i) {
        const size_t at = static_cast<size_t>(bt) * l.row() + l.v(g) + i;
        ASSERT_EQ(y[at], x[at]);
      }
  // Backward is the transposed rotation: <dy, R x> = <R^T dy, x>.
  auto dy = RandomVector(x.size(), 32);
  std::vector<float> dx = dy;
  rope_backward(dx.data(), cos.data(), sin.data(), B, T, l, pos.empty() ? nullptr : pos.data());
  auto g = NumericalGrad(
      [&](const std::vector<double>& p) { return Dot(RopeRef(p, B, T, l, base, pos), dy); },
      ToDouble(x));
  EXPECT_LT(RelErr(dx, g), kBwdTol);
}

TEST(RopeTest, RotatesQueriesAndKeysInThePlainLayout) { CheckRope(QkvLayout::Make(16, 2, 0), {}); }
TEST(RopeTest, RotatesQueriesAndKeysInTheGroupedLayout) {
  CheckRope(QkvLayout::Make(32, 4, 2), {});
}
TEST(RopeTest, UsesGivenPositions) {
  std::vector<int> pos = {5, 6, 7, 0, 1, 2, 40, 41, 0, 1, 2, 3};  // packed: restarts
  CheckRope(QkvLayout::Make(16, 2, 1), pos);
}

TEST(RopeTest, TableMatchesHfFp32Angles) {
  const int HS = 8, P = 100;
  std::vector<float> cos(P * HS / 2), sin(cos.size());
  rope_table(cos.data(), sin.data(), P, HS, 1e6f);
  for (int p = 0; p < P; ++p)
    for (int i = 0; i < HS / 2; ++i) {
      const double a = p * std::pow(1e6, -2.0 * i / HS);
      EXPECT_NEAR(cos[p * HS / 2 + i], std::cos(a), 2e-5) << p << " " << i;
      EXPECT_NEAR(sin[p * HS / 2 + i], std::sin(a), 2e-5) << p << " " << i;
    }
}

// --- grouped-query attention -------------------------------------------------

// Naive causal attention in double over any QkvLayout (no dropout); kv_begin (B,T):
// the first key each token sees (null: 0).
std::vector<double> GqaRef(const std::vector<double>& qkv, int B, int T, const QkvLayout& l,
                           const std::vector<int>* kv_begin = nullptr) {
  const int HS = l.HS, C = l.NH * HS, row = l.row();
  std::vector<double> out(static_cast<size_t>(B) * T * C, 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < l.NH; ++h)
      for (int t = 0; t < T; ++t) {
        const int g = h / (l.NH / l.KV);
        const int lo = kv_begin != nullptr ? (*kv_begin)[b * T + t] : 0;
        std::vector<double> s(t + 1, 0.0);
        double mx = -1e300, sum = 0;
        for (int t2 = lo; t2 <= t; ++t2) {
          double d = 0;
          for (int i = 0; i < HS; ++i)
            d += qkv[(b * T + t) * row + l.q(h) + i] * qkv[(b * T + t2) * row + l.k(g) + i];
          s[t2] = d / std::sqrt(static_cast<double>(HS));
          mx = std::max(mx, s[t2]);
        }
        for (int t2 = lo; t2 <= t; ++t2) sum += (s[t2] = std::exp(s[t2] - mx));
        for (int t2 = lo; t2 <= t; ++t2)
          for (int i = 0; i < HS; ++i)
            out[(b * T + t) * C + h * HS + i] += s[t2] / sum * qkv[(b * T + t2) * row + l.v(g) + i];
      }
  return out;
}

TEST(GqaAttentionTest, GroupedLayoutMatchesDoubleReference) {
  const int B = 2, T = 5, NH = 4, KV = 2, HS = 4, C = NH * HS;
  const QkvLayout l = QkvLayout::Make(C, NH, KV);
  ASSERT_EQ(l.row(), (NH + 2 * KV) * HS);
  // Group 1's rows: [q2 | q3 | k1 | v1] after group 0's 4 head vectors.
  EXPECT_EQ(l.q(2), 4 * HS);
  EXPECT_EQ(l.k(1), 6 * HS);
  EXPECT_EQ(l.v(1), 7 * HS);
  const RngStream rng{42, 7};
  auto qkv = RandomVector(static_cast<size_t>(B) * T * l.row(), 21);
  auto dout = RandomVector(static_cast<size_t>(B) * T * C, 22);
  std::vector<float> out(B * T * C), att(B * NH * T * T), dqkv(qkv.size(), 0.0f);
  attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH, 0.0f, rng, 0, KV);
  EXPECT_LT(RelErr(out, GqaRef(ToDouble(qkv), B, T, l)), kFwdTol);
  attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH, 0.0f, rng, 0,
                     KV);
  auto g = NumericalGrad(
      [&](const std::vector<double>& x) { return Dot(GqaRef(x, B, T, l), dout); }, ToDouble(qkv));
  EXPECT_LT(RelErr(dqkv, g), kBwdTol);
}

TEST(GqaAttentionTest, OneGroupPerHeadEqualsMultiHeadOnTheSameVectors) {
  // kv_heads = NH in the grouped layout is ordinary multi-head attention with each
  // head's [q | k | v] interleaved: the outputs equal the plain layout's on the same
  // vectors, bit for bit (same arithmetic in the same order).
  const int B = 2, T = 6, NH = 3, HS = 4, C = NH * HS;
  const QkvLayout plain = QkvLayout::Make(C, NH, 0), grouped = QkvLayout::Make(C, NH, NH);
  auto a = RandomVector(static_cast<size_t>(B) * T * plain.row(), 5);
  std::vector<float> b(a.size());
  for (int bt = 0; bt < B * T; ++bt)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < HS; ++i) {
        const size_t r = static_cast<size_t>(bt) * plain.row();
        b[r + grouped.q(h) + i] = a[r + plain.q(h) + i];
        b[r + grouped.k(h) + i] = a[r + plain.k(h) + i];
        b[r + grouped.v(h) + i] = a[r + plain.v(h) + i];
      }
  const RngStream rng{1, 2};
  std::vector<float> out_a(B * T * C), out_b(out_a.size()), att(B * NH * T * T);
  attention_forward(out_a.data(), att.data(), a.data(), B, T, C, NH, 0.0f, rng, 0, 0);
  attention_forward(out_b.data(), att.data(), b.data(), B, T, C, NH, 0.0f, rng, 0, NH);
  EXPECT_EQ(out_a, out_b);
}

// --- segments (packed samples) -------------------------------------------------

TEST(GqaAttentionTest, SegmentsMatchDoubleReference) {
  // Two rows of 7 tokens packed as [0 0 0 1 1 2 2] and [0 0 0 0 0 0 1]: each token sees
  // its own segment's earlier tokens only.
  const int B = 2, T = 7, NH = 4, KV = 2, HS = 4, C = NH * HS;
  const QkvLayout l = QkvLayout::Make(C, NH, KV);
  const std::vector<int> kv_begin = {0, 0, 0, 3, 3, 5, 5, 0, 0, 0, 0, 0, 0, 6};
  const RngStream rng{42, 7};
  auto qkv = RandomVector(static_cast<size_t>(B) * T * l.row(), 31);
  auto dout = RandomVector(static_cast<size_t>(B) * T * C, 32);
  std::vector<float> out(B * T * C), att(B * NH * T * T), dqkv(qkv.size(), 0.0f);
  attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH, 0.0f, rng, 0, KV,
                    kv_begin.data());
  EXPECT_LT(RelErr(out, GqaRef(ToDouble(qkv), B, T, l, &kv_begin)), kFwdTol);
  // No probability crosses a segment boundary.
  for (int h = 0; h < NH; ++h)
    for (int t = 0; t < T; ++t)
      for (int t2 = 0; t2 < kv_begin[t]; ++t2) EXPECT_EQ(att[(h * T + t) * T + t2], 0.0f);
  attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH, 0.0f, rng, 0,
                     KV, kv_begin.data());
  auto g = NumericalGrad(
      [&](const std::vector<double>& x) { return Dot(GqaRef(x, B, T, l, &kv_begin), dout); },
      ToDouble(qkv));
  EXPECT_LT(RelErr(dqkv, g), kBwdTol);
}

TEST(GqaAttentionTest, PackedSegmentEqualsTheSampleAlone) {
  // A sample packed at positions [3, 7) of a row gives bit for bit the outputs and
  // q/k/v gradients it gets alone in a row of 4 (the same sums in the same order).
  const int T = 7, NH = 2, KV = 1, HS = 4, C = NH * HS, S0 = 3, N = 4;
  const QkvLayout l = QkvLayout::Make(C, NH, KV);
  const int row = l.row();
  const std::vector<int> kv_begin = {0, 0, 0, S0, S0, S0, S0};
  const RngStream rng{3, 4};
  auto packed = RandomVector(static_cast<size_t>(T) * row, 41);
  auto dout = RandomVector(static_cast<size_t>(T) * C, 42);
  std::vector<float> alone(packed.begin() + S0 * row, packed.end());
  std::vector<float> dalone_out(dout.begin() + S0 * C, dout.end());
  std::vector<float> out_p(T * C), att_p(NH * T * T), d_p(packed.size(), 0.0f);
  std::vector<float> out_a(N * C), att_a(NH * N * N), d_a(alone.size(), 0.0f);
  attention_forward(out_p.data(), att_p.data(), packed.data(), 1, T, C, NH, 0.0f, rng, 0, KV,
                    kv_begin.data());
  attention_forward(out_a.data(), att_a.data(), alone.data(), 1, N, C, NH, 0.0f, rng, 0, KV);
  EXPECT_EQ(std::vector<float>(out_p.begin() + S0 * C, out_p.end()), out_a);
  attention_backward(d_p.data(), dout.data(), packed.data(), att_p.data(), 1, T, C, NH, 0.0f, rng,
                     0, KV, kv_begin.data());
  attention_backward(d_a.data(), dalone_out.data(), alone.data(), att_a.data(), 1, N, C, NH, 0.0f,
                     rng, 0, KV);
  EXPECT_EQ(std::vector<float>(d_p.begin() + S0 * row, d_p.end()), d_a);
}

}  // namespace
}  // namespace kernels::cpu
