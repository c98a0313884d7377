// Each CPU kernel against a naive double-precision implementation: forward values,
// and backward against central finite differences of that double implementation
// (tiny shapes). Tolerances are norm-wise relative errors; fp32 kernels land near
// 1e-7..1e-6, so 1e-5 (forward) and 1e-4 (backward) leave headroom without hiding bugs.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "tests/unit/trainer_model/test_util.h"
#include "trainer/kernels/cpu/adamw.h"
#include "trainer/kernels/cpu/attention.h"
#include "trainer/kernels/cpu/dropout.h"
#include "trainer/kernels/cpu/encoder.h"
#include "trainer/kernels/cpu/gelu.h"
#include "trainer/kernels/cpu/layernorm.h"
#include "trainer/kernels/cpu/matmul.h"
#include "trainer/kernels/cpu/reduce.h"
#include "trainer/kernels/cpu/residual.h"
#include "trainer/kernels/cpu/softmax_cross_entropy.h"

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

// --- layernorm ---------------------------------------------------------------

std::vector<double> LayerNormRef(const std::vector<double>& x, const double* w, const double* b,
                                 int N, int C) {
  std::vector<double> y(x.size());
  for (int n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (int i = 0; i < C; ++i) m += x[n * C + i];
    m /= C;
    for (int i = 0; i < C; ++i) v += (x[n * C + i] - m) * (x[n * C + i] - m);
    v /= C;
    for (int i = 0; i < C; ++i)
      y[n * C + i] = (x[n * C + i] - m) / std::sqrt(v + 1e-5) * w[i] + b[i];
  }
  return y;
}

TEST(LayerNormTest, ForwardAndBackwardMatchDoubleReference) {
  const int N = 6, C = 16;
  auto x = RandomVector(N * C, 1), w = RandomVector(C, 2), b = RandomVector(C, 3);
  auto dout = RandomVector(N * C, 4);
  std::vector<float> y(N * C), mean(N), rstd(N), dx(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
  layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
  auto wd = ToDouble(w), bd = ToDouble(b);
  EXPECT_LT(RelErr(y, LayerNormRef(ToDouble(x), wd.data(), bd.data(), N, C)), kFwdTol);

  layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(),
                     rstd.data(), N, C);
  // Pack (x, w, b) into one vector for the finite differences.
  std::vector<double> packed = ToDouble(x);
  packed.insert(packed.end(), wd.begin(), wd.end());
  packed.insert(packed.end(), bd.begin(), bd.end());
  auto f = [&](const std::vector<double>& p) {
    std::vector<double> xs(p.begin(), p.begin() + N * C);
    return Dot(LayerNormRef(xs, p.data() + N * C, p.data() + N * C + C, N, C), dout);
  };
  auto g = NumericalGrad(f, packed);
  EXPECT_LT(RelErr(dx, std::vector<double>(g.begin(), g.begin() + N * C)), kBwdTol);
  EXPECT_LT(RelErr(dw, std::vector<double>(g.begin() + N * C, g.begin() + N * C + C)), kBwdTol);
  EXPECT_LT(RelErr(db, std::vector<double>(g.begin() + N * C + C, g.end())), kBwdTol);
}

// --- matmul ------------------------------------------------------------------

TEST(MatmulTest, ForwardAndAccumulatingBackwardMatchDoubleReference) {
  const int N = 5, C = 7, OC = 6;
  auto x = RandomVector(N * C, 11), w = RandomVector(OC * C, 12), b = RandomVector(OC, 13);
  auto dout = RandomVector(N * OC, 14);
  auto ref = [&](const std::vector<double>& p) {  // p = (x, w, b)
    std::vector<double> y(N * OC);
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < OC; ++o) {
        double s = p[N * C + OC * C + o];  // bias
        for (int i = 0; i < C; ++i) s += p[n * C + i] * p[N * C + o * C + i];
        y[n * OC + o] = s;
      }
    return y;
  };
  std::vector<double> packed = ToDouble(x);
  for (float v : w) packed.push_back(v);
  for (float v : b) packed.push_back(v);
  std::vector<float> y(N * OC);
  matmul_forward(y.data(), x.data(), w.data(), b.data(), N, C, OC);
  EXPECT_LT(RelErr(y, ref(packed)), kFwdTol);

  // Backward accumulates: start the grads at 1 and check 1 + gradient.
  std::vector<float> dx(N * C, 1.0f), dw(OC * C, 1.0f), db(OC, 1.0f);
  matmul_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, C, OC);
  auto g = NumericalGrad([&](const std::vector<double>& p) { return Dot(ref(p), dout); }, packed);
  for (double& v : g) v += 1.0;
  EXPECT_LT(RelErr(dx, std::vector<double>(g.begin(), g.begin() + N * C)), kBwdTol);
  EXPECT_LT(RelErr(dw, std::vector<double>(g.begin() + N * C, g.begin() + N * C + OC * C)),
            kBwdTol);
  EXPECT_LT(RelErr(db, std::vector<double>(g.begin() + N * C + OC * C, g.end())), kBwdTol);
}

// --- attention ---------------------------------------------------------------

// Naive causal attention in double with the kernel's dropout mask.
std::vector<double> AttentionRef(const std::vector<double>& qkv, int B, int T, int C, int NH,
                                 float p, const RngStream& rng) {
  const int HS = C / NH;
  std::vector<double> out(B * T * C, 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          double d = 0;
          for (int i = 0; i < HS; ++i)
            d += qkv[(b * T + t) * 3 * C + h * HS + i] * qkv[(b * T + t2) * 3 * C + C + h * HS + i];
          s[t2] = d / std::sqrt(static_cast<double>(HS));
          mx = std::max(mx, s[t2]);
        }
        for (double& v : s) sum += (v = std::exp(v - mx));
        for (int t2 = 0; t2 <= t; ++t2) {
          double a = s[t2] / sum;
          // Sample b's own stream, element (h, t, t2) of it.
          size_t idx = (static_cast<size_t>(h) * T + t) * T + t2;
          if (p > 0) a = dropout_keep(trainer::SampleStream(rng, b), idx, p) ? a / (1.0 - p) : 0.0;
          for (int i = 0; i < HS; ++i)
            out[(b * T + t) * C + h * HS + i] += a * qkv[(b * T + t2) * 3 * C + 2 * C + h * HS + i];
        }
      }
  return out;
}

void CheckAttention(float p) {
  const int B = 2, T = 5, C = 8, NH = 2;
  const RngStream rng{42, 7};
  auto qkv = RandomVector(B * T * 3 * C, 21), dout = RandomVector(B * T * C, 22);
  std::vector<float> out(B * T * C), att(B * NH * T * T), dqkv(B * T * 3 * C, 0.0f);
  attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH, p, rng);
  EXPECT_LT(RelErr(out, AttentionRef(ToDouble(qkv), B, T, C, NH, p, rng)), kFwdTol);
  attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH, p, rng);
  auto g = NumericalGrad(
      [&](const std::vector<double>& x) { return Dot(AttentionRef(x, B, T, C, NH, p, rng), dout); },
      ToDouble(qkv));
  EXPECT_LT(RelErr(dqkv, g), kBwdTol);
  for (int t = 0; t < T; ++t)
    for (int t2 = t + 1; t2 < T; ++t2) EXPECT_EQ(att[t * T + t2], 0.0f) << "causal mask";
}

TEST(AttentionTest, MatchesDoubleReference) { CheckAttention(0.0f); }
TEST(AttentionTest, MatchesDoubleReferenceWithDropout) { CheckAttention(0.3f); }

// --- gelu, residual, encoder --------------------------------------------------

TEST(GeluTest, BackwardMatchesFiniteDifferences) {
  const int N = 64;
  auto x = RandomVector(N, 31, 3.0f), dout = RandomVector(N, 32);
  std::vector<float> dx(N, 0.0f);
  gelu_backward(dx.data(), x.data(), dout.data(), N);
  auto ref = [&](const std::vector<double>& v) {
    std::vector<double> y(N);
    for (int i = 0; i < N; ++i)
      y[i] =
          0.5 * v[i] * (1 + std::tanh(std::sqrt(2 / M_PI) * (v[i] + 0.044715 * std::pow(v[i], 3))));
    return y;
  };
  std::vector<float> y(N);
  gelu_forward(y.data(), x.data(), N);
  EXPECT_LT(RelErr(y, ref(ToDouble(x))), kFwdTol);
  EXPECT_LT(
      RelErr(dx, NumericalGrad([&](const std::vector<double>& v) { return Dot(ref(v), dout); },
                               ToDouble(x))),
      kBwdTol);
}

TEST(ResidualTest, ForwardAndBackward) {
  std::vector<float> a{1, 2}, b{10, 20}, out(2), da{1, 1}, db{0, 0}, dout{3, 4};
  residual_forward(out.data(), a.data(), b.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{11, 22}));
  residual_backward(da.data(), db.data(), dout.data(), 2);
  EXPECT_EQ(da, (std::vector<float>{4, 5}));
  EXPECT_EQ(db, (std::vector<float>{3, 4}));
}

TEST(EncoderTest, ForwardAndScatterBackwardWithRepeatedTokens) {
  const int B = 2, T = 3, C = 40, Vp = 5;
  std::vector<int> inp{1, 4, 1, 1, 0, 4};  // token 1 three times
  auto wte = RandomVector(Vp * C, 41), wpe = RandomVector(T * C, 42),
       dout = RandomVector(B * T * C, 43);
  std::vector<float> out(B * T * C), dwte(Vp * C, 0.0f), dwpe(T * C, 0.0f);
  encoder_forward(out.data(), inp.data(), wte.data(), wpe.data(), B, T, C);
  encoder_backward(dwte.data(), dwpe.data(), dout.data(), inp.data(), B, T, C);
  std::vector<double> ref_dwte(Vp * C, 0.0), ref_dwpe(T * C, 0.0);
  for (int bt = 0; bt < B * T; ++bt)
    for (int i = 0; i < C; ++i) {
      EXPECT_EQ(out[bt * C + i], wte[inp[bt] * C + i] + wpe[(bt % T) * C + i]);
      ref_dwte[inp[bt] * C + i] += dout[bt * C + i];
      ref_dwpe[(bt % T) * C + i] += dout[bt * C + i];
    }
  EXPECT_LT(RelErr(dwte, ref_dwte), 1e-6);
  EXPECT_LT(RelErr(dwpe, ref_dwpe), 1e-6);
}

// --- softmax + cross-entropy ---------------------------------------------------

TEST(SoftmaxCrossEntropyTest, PaddedColumnsAreExcludedAndGradientsMatch) {
  const int N = 4, V = 10, Vp = 16;
  auto logits = RandomVector(N * Vp, 51, 3.0f);
  for (int n = 0; n < N; ++n)
    for (int v = V; v < Vp; ++v) logits[n * Vp + v] = 100.0f;  // would dominate if included
  std::vector<int> targets{0, 9, 3, 3};
  auto ref = [&](const std::vector<double>& x) {  // sum_n loss_n / N over the first V columns
    double total = 0;
    for (int n = 0; n < N; ++n) {
      double mx = -1e300, s = 0;
      for (int v = 0; v < V; ++v) mx = std::max(mx, x[n * Vp + v]);
      for (int v = 0; v < V; ++v) s += std::exp(x[n * Vp + v] - mx);
      total += std::log(s) + mx - x[n * Vp + targets[n]];
    }
    return total / N;
  };
  std::vector<float> probs = logits, losses(N);
  softmax_cross_entropy_forward(losses.data(), probs.data(), targets.data(), N, V, Vp);
  double mean = 0;
  for (float l : losses) mean += l / N;
  EXPECT_NEAR(mean, ref(ToDouble(logits)), 1e-5 * ref(ToDouble(logits)));
  softmax_cross_entropy_backward(probs.data(), targets.data(), N, V, Vp, 1.0f / N);
  EXPECT_LT(RelErr(probs, NumericalGrad(ref, ToDouble(logits))), kBwdTol);
  for (int n = 0; n < N; ++n)
    for (int v = V; v < Vp; ++v) EXPECT_EQ(probs[n * Vp + v], 0.0f);
}

// --- dropout -------------------------------------------------------------------

TEST(DropoutTest, RateScaleMaskReuseAndStreams) {
  const size_t N = 100000;
  const float p = 0.25f;
  std::vector<float> x(N, 2.0f), y(N), y2(N), dx(N);
  const RngStream rng{1234, 99};
  dropout_forward(y.data(), x.data(), N, p, rng);
  size_t kept = 0;
  for (size_t i = 0; i < N; ++i) {
    ASSERT_TRUE(y[i] == 0.0f || y[i] == 2.0f / 0.75f) << i;
    kept += y[i] != 0.0f;
  }
  EXPECT_NEAR(static_cast<double>(kept) / N, 0.75, 0.01);
  // Backward regenerates exactly the forward mask (nothing stored).
  dropout_backward(dx.data(), x.data(), N, p, rng);
  EXPECT_EQ(dx, y);
  // Same (seed, stream): same mask, also in place; another stream: another mask.
  y2 = x;
  dropout_forward(y2.data(), y2.data(), N, p, rng);
  EXPECT_EQ(y2, y);
  dropout_forward(y2.data(), x.data(), N, p, RngStream{1234, 100});
  EXPECT_NE(y2, y);
}

// Rows of a (rows, row_elems) tensor each draw from their own sample's stream, so a
// sample gets the same mask wherever it sits in a batch (data parallel needs that).
TEST(DropoutTest, RowsUseTheirSampleStreams) {
  const size_t rows = 3, row = 30;  // a row length that is not a multiple of 4
  const float p = 0.3f;
  std::vector<float> x(rows * row);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 1.0f + static_cast<float>(i);
  const RngStream first{77, 5ull << 24};  // sample 5 is row 0
  std::vector<float> batch(x.size());
  dropout_forward(batch.data(), x.data(), x.size(), p, first, row);
  for (size_t r = 0; r < rows; ++r) {
    // Row r alone, as row 0 of a batch that starts at sample 5 + r.
    std::vector<float> alone(row);
    dropout_forward(alone.data(), x.data() + r * row, row, p,
                    RngStream{77, (5ull + r) << 24}, row);
    EXPECT_EQ(alone, std::vector<float>(batch.begin() + r * row, batch.begin() + (r + 1) * row))
        << "row " << r;
    for (size_t k = 0; k < row; ++k) {
      const bool keep = dropout_keep(trainer::SampleStream(first, static_cast<int64_t>(r)), k, p);
      EXPECT_EQ(batch[r * row + k], keep ? x[r * row + k] * (1.0f / (1.0f - p)) : 0.0f);
    }
  }
  std::vector<float> back(x.size());
  dropout_backward(back.data(), x.data(), x.size(), p, first, row);
  EXPECT_EQ(back, batch);
}

// --- adamw ---------------------------------------------------------------------

TEST(AdamWKernelTest, MatchesTorchFormulaInDouble) {
  const size_t N = 33;
  auto p = RandomVector(N, 61), m = std::vector<float>(N, 0.0f), v = m;
  std::vector<double> pd = ToDouble(p), md(N, 0.0), vd(N, 0.0);
  const double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  for (int step = 1; step <= 3; ++step) {
    auto g = RandomVector(N, 70 + step);
    adamw_update(p.data(), g.data(), m.data(), v.data(), N, lr, b1, b2, eps, wd, step);
    for (size_t i = 0; i < N; ++i) {
      pd[i] *= 1 - lr * wd;
      md[i] = b1 * md[i] + (1 - b1) * g[i];
      vd[i] = b2 * vd[i] + (1 - b2) * g[i] * static_cast<double>(g[i]);
      double denom = std::sqrt(vd[i]) / std::sqrt(1 - std::pow(b2, step)) + eps;
      pd[i] -= lr / (1 - std::pow(b1, step)) * md[i] / denom;
    }
  }
  EXPECT_LT(RelErr(p, pd), 1e-6);
}

// --- determinism across thread counts (no atomics, fixed reduction order) --------

TEST(DeterminismTest, ReductionsAreBitwiseIndependentOfThreadCount) {
  const int N = 203, C = 24, B = 2, T = 7, NH = 3, Cq = 24;
  auto x = RandomVector(N * C, 81), w = RandomVector(C, 82), dout = RandomVector(N * C, 83);
  auto qkv = RandomVector(B * T * 3 * Cq, 84), dy = RandomVector(B * T * Cq, 85);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> y(N * C), mean(N), rstd(N), dx(N * C, 0), dw(C, 0), db(C, 0), cs(C, 0);
    layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), w.data(), N, C,
                      1e-5f);
    layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                       mean.data(), rstd.data(), N, C);
    column_sum_accumulate(cs.data(), dout.data(), N, C);
    std::vector<float> out(B * T * Cq), att(B * NH * T * T), dqkv(B * T * 3 * Cq, 0);
    attention_forward(out.data(), att.data(), qkv.data(), B, T, Cq, NH, 0.1f, RngStream{1, 2});
    attention_backward(dqkv.data(), dy.data(), qkv.data(), att.data(), B, T, Cq, NH, 0.1f,
                       RngStream{1, 2});
    std::vector<float> all = dx;
    for (const auto* v : {&dw, &db, &cs, &dqkv, &out}) all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  const int saved = omp_get_max_threads();
  auto one = run(1), two = run(2), three = run(3);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

}  // namespace
}  // namespace kernels::cpu
