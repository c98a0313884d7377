// cuda::matmul_forward / matmul_backward against cpu::matmul_forward / matmul_backward
// (and cpu::gelu_forward / gelu_backward for the GELU epilogues), for fp32, bf16, fp16.
//
// Inputs are rounded to floatX first, so both sides multiply the same numbers and what is
// left is summation order and the rounding of results to floatX. Each element must satisfy
//   |got - want| <= out_rel * R + acc_rel * mag + gelu_abs * G + 1e-6
// where mag is the same product over |inputs| (the sum of |terms|, plus |bias| and
// |existing gradient|), the scale a summation-order error is relative to whatever the
// reduction length K is; R is the size of whatever was rounded to floatX (|want|, plus the
// product before the bias or GELU' when those are applied after a rounding: the unfused
// path); G is |pre-activation| (forward) or |dout @ W| (backward), for a GELU evaluated
// differently.
//   fp32: out_rel 1e-6, acc_rel 5e-6 (~80 ulp: reordering error is ~1 ulp of mag; TF32
//         inputs would be ~2^-11 / sqrt(K) of mag, 3e-5 at K = 768, and fail), gelu_abs
//         1e-6 (tanhf on both sides).
//   bf16: out_rel 2^-7 (one ulp; a rounding is half of one, the unfused path rounds
//         twice), acc_rel 1e-4, gelu_abs 2e-3 (cuBLASLt's fused GELU evaluates its own
//         tanh, not documented: a tanh good to 2^-11 is off by 2.5e-4 |x| in GELU and up
//         to ~2e-3 in GELU' near |x| = 3).
//   fp16: out_rel 2^-10 (one ulp), acc_rel 1e-4, gelu_abs 2e-3.
// dweight and dbias accumulate in fp32 whatever floatX is: acc_rel only (fp32's for dbias,
// which matmul.cu's own kernel sums in fp32).
// Shapes: GPT-2's qkv (N = 4*64, C = 768, OC = 2304), its MLP projection at N = 1000
// (C = 3072: several bias-gradient row chunks), odd N, odd everything (unaligned leading
// dimensions; no fused GELU since the aux ld is not a multiple of 8), and the LM head.
// Misaligned: every pointer an odd number of elements into a bigger buffer.
#include "trainer/kernels/cuda/matmul.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/gpu/support/gpu_test_util.h"
#include "trainer/kernels/cpu/gelu.h"
#include "trainer/kernels/cpu/matmul.h"

namespace {

namespace kc = kernels::cuda;
using gpu_test::IsOk;
using gpu_test::RandomNormal;
using gpu_test::RoundTo;

struct Shape {
  int N, C, OC;
};

std::string Name(const Shape& s) {
  return "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) + " OC=" + std::to_string(s.OC);
}

const Shape kShapes[] = {
    {4 * 64, 768, 2304},  // qkv
    {1000, 3072, 768},    // MLP projection, 4 bias-gradient chunks
    {37, 64, 200},        // odd N
    {37, 67, 203},        // odd N, C, OC
    {128, 768, 50304},    // LM head (padded vocabulary)
};

// The three terms of the bound at the top of the file, per compute type.
struct MatmulTol {
  float out_rel, acc_rel, gelu_abs;
};
constexpr gpu_test::PerComputeType<MatmulTol> kTol{
    /*fp32=*/{1e-6f, 5e-6f, 1e-6f},
    /*bf16=*/{1.0f / 128, 1e-4f, 2e-3f},
    /*fp16=*/{1.0f / 1024, 1e-4f, 2e-3f},
};
constexpr float kAbs = 1e-6f;
constexpr float kMaxGeluGrad = 1.2f;  // |gelu'(x)| <= 1.13

std::vector<float> Abs(std::vector<float> x) {
  for (float& v : x) v = std::fabs(v);
  return x;
}

// "" or the first element outside tol, with how many were.
std::string CheckWithin(const char* what, const std::vector<float>& got,
                        const std::vector<float>& want, const std::vector<float>& tol) {
  if (got.size() != want.size()) return std::string(what) + ": size mismatch";
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= tol[i])) {  // NaN fails too
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return "";
  return std::string(what) + ": " + std::to_string(bad) + " of " + std::to_string(got.size()) +
         " off; first at " + std::to_string(first) + ": got " + std::to_string(got[first]) +
         ", want " + std::to_string(want[first]) + ", tol " + std::to_string(tol[first]);
}

// A device array of n elements starting `offset` elements into a bigger allocation.
template <typename floatX>
class Placed {
 public:
  Placed(size_t n, size_t offset) : buf_(n + offset + 1), ptr_(buf_.get() + offset), n_(n) {}
  bool ok() const { return buf_.get() != nullptr; }
  floatX* get() const { return ptr_; }
  void Upload(const std::vector<float>& host) {
    const std::vector<floatX> t = gpu_test::ToType<floatX>(host);
    cudaMemcpy(ptr_, t.data(), n_ * sizeof(floatX), cudaMemcpyHostToDevice);
  }
  std::vector<float> Download() const {
    std::vector<floatX> t(n_);
    cudaDeviceSynchronize();
    cudaMemcpy(t.data(), ptr_, n_ * sizeof(floatX), cudaMemcpyDeviceToHost);
    return gpu_test::ToFloat(t);
  }

 private:
  gpu_test::DeviceBuffer<floatX> buf_;
  floatX* ptr_;
  size_t n_;
};

const kc::MatmulContext& Context() {
  static kc::MatmulContext* ctx = [] {
    auto* c = new kc::MatmulContext();
    EXPECT_TRUE(IsOk(c->Init()));
    return c;
  }();
  return *ctx;
}

template <typename floatX>
class MatmulGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(MatmulGpuTest, gpu_test::ComputeTypes, gpu_test::ComputeTypeNames);

// All three epilogues on one shape, pointers `offset` elements into their buffers.
template <typename floatX>
void CheckForward(const Shape& s, size_t offset, uint32_t seed) {
  SCOPED_TRACE(Name(s) + " offset " + std::to_string(offset) + " " +
               gpu_test::ComputeTypeName<floatX>());
  const size_t NC = size_t(s.N) * s.C, OCC = size_t(s.OC) * s.C, NOC = size_t(s.N) * s.OC;
  const std::vector<float> inp = RoundTo<floatX>(RandomNormal(NC, 1.0f, seed));
  const std::vector<float> weight = RoundTo<floatX>(RandomNormal(OCC, 0.05f, seed + 1));
  const std::vector<float> bias = RoundTo<floatX>(RandomNormal(s.OC, 0.5f, seed + 2));

  // CPU: the product without bias (lin), with it (pre), gelu(pre), and their magnitudes.
  std::vector<float> lin(NOC), pre(NOC), gelu(NOC), mag_lin(NOC), mag_pre(NOC);
  kernels::cpu::matmul_forward(lin.data(), inp.data(), weight.data(), nullptr, s.N, s.C, s.OC);
  kernels::cpu::matmul_forward(pre.data(), inp.data(), weight.data(), bias.data(), s.N, s.C, s.OC);
  kernels::cpu::gelu_forward(gelu.data(), pre.data(), static_cast<int>(NOC));
  const std::vector<float> abs_inp = Abs(inp), abs_weight = Abs(weight), abs_bias = Abs(bias);
  kernels::cpu::matmul_forward(mag_lin.data(), abs_inp.data(), abs_weight.data(), nullptr, s.N, s.C,
                               s.OC);
  for (size_t i = 0; i < NOC; ++i) mag_pre[i] = mag_lin[i] + abs_bias[i % s.OC];

  constexpr MatmulTol tl = kTol.For<floatX>();
  std::vector<float> tol_lin(NOC), tol_pre(NOC), tol_gelu(NOC);
  for (size_t i = 0; i < NOC; ++i) {
    tol_lin[i] = tl.out_rel * std::fabs(lin[i]) + tl.acc_rel * mag_lin[i] + kAbs;
    tol_pre[i] =
        tl.out_rel * (std::fabs(pre[i]) + std::fabs(lin[i])) + tl.acc_rel * mag_pre[i] + kAbs;
    tol_gelu[i] = tl.out_rel * std::fabs(gelu[i]) + kMaxGeluGrad * tol_pre[i] +
                  tl.gelu_abs * std::fabs(pre[i]);
  }

  Placed<floatX> d_inp(NC, offset), d_weight(OCC, offset + 2), d_bias(s.OC, offset + 4);
  Placed<floatX> d_out(NOC, offset + 6), d_pre(NOC, offset + 8);
  ASSERT_TRUE(d_inp.ok() && d_weight.ok() && d_bias.ok() && d_out.ok() && d_pre.ok());
  d_inp.Upload(inp);
  d_weight.Upload(weight);
  d_bias.Upload(bias);

  const kc::MatmulContext& ctx = Context();
  ASSERT_TRUE(
      IsOk(kc::matmul_forward<floatX>(ctx, d_out.get(), nullptr, d_inp.get(), d_weight.get(),
                                      d_bias.get(), s.N, s.C, s.OC, kc::MatmulEpilogue::kNone, 0)));
  EXPECT_EQ(CheckWithin("kNone out", d_out.Download(), lin, tol_lin), "");

  ASSERT_TRUE(
      IsOk(kc::matmul_forward<floatX>(ctx, d_out.get(), nullptr, d_inp.get(), d_weight.get(),
                                      d_bias.get(), s.N, s.C, s.OC, kc::MatmulEpilogue::kBias, 0)));
  EXPECT_EQ(CheckWithin("kBias out", d_out.Download(), pre, tol_pre), "");

  ASSERT_TRUE(IsOk(kc::matmul_forward<floatX>(ctx, d_out.get(), d_pre.get(), d_inp.get(),
                                              d_weight.get(), d_bias.get(), s.N, s.C, s.OC,
                                              kc::MatmulEpilogue::kBiasGelu, 0)));
  EXPECT_EQ(CheckWithin("kBiasGelu pre_gelu", d_pre.Download(), pre, tol_pre), "");
  EXPECT_EQ(CheckWithin("kBiasGelu out", d_out.Download(), gelu, tol_gelu), "");
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
}

// Backward with and without the fused GELU', with and without dbias, accumulating onto
// non-zero gradients; pointers `offset` elements into their buffers.
template <typename floatX>
void CheckBackward(const Shape& s, size_t offset, uint32_t seed) {
  SCOPED_TRACE(Name(s) + " offset " + std::to_string(offset) + " " +
               gpu_test::ComputeTypeName<floatX>());
  const size_t NC = size_t(s.N) * s.C, OCC = size_t(s.OC) * s.C, NOC = size_t(s.N) * s.OC;
  const std::vector<float> inp = RoundTo<floatX>(RandomNormal(NC, 1.0f, seed));
  const std::vector<float> weight = RoundTo<floatX>(RandomNormal(OCC, 0.05f, seed + 1));
  const std::vector<float> dout = RoundTo<floatX>(RandomNormal(NOC, 1.0f, seed + 2));
  const std::vector<float> pre_gelu = RoundTo<floatX>(RandomNormal(NC, 1.5f, seed + 3));
  const std::vector<float> dweight0 = RandomNormal(OCC, 1.0f, seed + 4);
  const std::vector<float> dbias0 = RandomNormal(s.OC, 1.0f, seed + 5);

  // CPU: lin = dout @ W, dweight0 + dout^T inp, dbias0 + colsum(dout), the same over
  // |inputs|, and lin * gelu'(pre_gelu).
  std::vector<float> lin(NC, 0.0f), dweight = dweight0, dbias = dbias0;
  kernels::cpu::matmul_backward(lin.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                                weight.data(), s.N, s.C, s.OC);
  std::vector<float> mag_lin(NC, 0.0f), mag_dweight = Abs(dweight0), mag_dbias = Abs(dbias0);
  const std::vector<float> abs_dout = Abs(dout), abs_inp = Abs(inp), abs_weight = Abs(weight);
  kernels::cpu::matmul_backward(mag_lin.data(), mag_dweight.data(), mag_dbias.data(),
                                abs_dout.data(), abs_inp.data(), abs_weight.data(), s.N, s.C, s.OC);
  std::vector<float> lin_gelu(NC, 0.0f);
  kernels::cpu::gelu_backward(lin_gelu.data(), pre_gelu.data(), lin.data(), static_cast<int>(NC));

  constexpr MatmulTol tl = kTol.For<floatX>();
  std::vector<float> tol_lin(NC), tol_lin_gelu(NC), tol_dweight(OCC), tol_dbias(s.OC);
  for (size_t i = 0; i < NC; ++i) {
    tol_lin[i] = tl.out_rel * std::fabs(lin[i]) + tl.acc_rel * mag_lin[i] + kAbs;
    tol_lin_gelu[i] = tl.out_rel * std::fabs(lin_gelu[i]) + kMaxGeluGrad * tol_lin[i] +
                      tl.gelu_abs * std::fabs(lin[i]);
  }
  for (size_t i = 0; i < OCC; ++i) tol_dweight[i] = tl.acc_rel * mag_dweight[i] + kAbs;
  for (int i = 0; i < s.OC; ++i) tol_dbias[i] = kTol.fp32.acc_rel * mag_dbias[i] + kAbs;

  Placed<floatX> d_inp(NC, offset), d_weight(OCC, offset + 2), d_dout(NOC, offset + 4);
  Placed<floatX> d_pre(NC, offset + 6), d_dinp(NC, offset + 8);
  Placed<float> d_dweight(OCC, offset + 10), d_dbias(s.OC, offset + 12);
  const size_t scratch_floats = kc::matmul_backward_scratch_floats(s.N, s.OC);
  Placed<float> d_scratch(scratch_floats, offset);
  ASSERT_TRUE(d_inp.ok() && d_weight.ok() && d_dout.ok() && d_pre.ok() && d_dinp.ok() &&
              d_dweight.ok() && d_dbias.ok() && d_scratch.ok());
  d_inp.Upload(inp);
  d_weight.Upload(weight);
  d_dout.Upload(dout);
  d_pre.Upload(pre_gelu);
  const kc::MatmulContext& ctx = Context();

  for (const bool with_gelu : {false, true}) {
    SCOPED_TRACE(with_gelu ? "with pre_gelu, no dbias" : "no pre_gelu, with dbias");
    d_dinp.Upload(std::vector<float>(NC, 123.0f));  // overwritten, not accumulated
    d_dweight.Upload(dweight0);
    d_dbias.Upload(dbias0);
    ASSERT_TRUE(IsOk(kc::matmul_backward<floatX>(
        ctx, d_dinp.get(), d_dweight.get(), with_gelu ? nullptr : d_dbias.get(), d_dout.get(),
        d_inp.get(), d_weight.get(), with_gelu ? d_pre.get() : nullptr, s.N, s.C, s.OC,
        d_scratch.get(), 0)));
    if (with_gelu) {
      EXPECT_EQ(CheckWithin("dinp (GELU')", d_dinp.Download(), lin_gelu, tol_lin_gelu), "");
      EXPECT_EQ(d_dbias.Download(), dbias0) << "dbias null must leave the bias gradient alone";
    } else {
      EXPECT_EQ(CheckWithin("dinp", d_dinp.Download(), lin, tol_lin), "");
      EXPECT_EQ(CheckWithin("dbias", d_dbias.Download(), dbias, tol_dbias), "");
    }
    EXPECT_EQ(CheckWithin("dweight", d_dweight.Download(), dweight, tol_dweight), "");
  }
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
}

TYPED_TEST(MatmulGpuTest, ForwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (const Shape& s : kShapes) CheckForward<TypeParam>(s, 0, seed += 10);
}

TYPED_TEST(MatmulGpuTest, BackwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 200;
  for (const Shape& s : kShapes) CheckBackward<TypeParam>(s, 0, seed += 10);
}

// Weights sit at arbitrary element offsets in the flat parameter buffer: an odd offset
// leaves fp32 pointers 4-byte and 16-bit pointers 2-byte aligned.
TYPED_TEST(MatmulGpuTest, MisalignedPointersMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (const Shape& s : {Shape{4 * 64, 768, 2304}, Shape{37, 64, 200}}) {
    CheckForward<TypeParam>(s, 1, 300);
    CheckForward<TypeParam>(s, 3, 310);
    CheckBackward<TypeParam>(s, 1, 320);
    CheckBackward<TypeParam>(s, 5, 330);
  }
}

// Same inputs and starting gradients: the same bits, with several bias chunks.
TYPED_TEST(MatmulGpuTest, BackwardIsDeterministic) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  const Shape s{1000, 3072, 768};
  const size_t NC = size_t(s.N) * s.C, OCC = size_t(s.OC) * s.C, NOC = size_t(s.N) * s.OC;
  Placed<floatX> inp(NC, 0), weight(OCC, 0), dout(NOC, 0), pre(NC, 0), dinp(NC, 0);
  Placed<float> dweight(OCC, 0), dbias(s.OC, 0);
  Placed<float> scratch(kc::matmul_backward_scratch_floats(s.N, s.OC), 0);
  ASSERT_TRUE(inp.ok() && weight.ok() && dout.ok() && pre.ok() && dinp.ok() && dweight.ok() &&
              dbias.ok() && scratch.ok());
  inp.Upload(RandomNormal(NC, 1.0f, 1));
  weight.Upload(RandomNormal(OCC, 0.05f, 2));
  dout.Upload(RandomNormal(NOC, 1.0f, 3));
  pre.Upload(RandomNormal(NC, 1.5f, 4));
  const std::vector<float> dweight0 = RandomNormal(OCC, 1.0f, 5), dbias0(s.OC, 0.25f);
  std::vector<float> first[3];
  for (int run = 0; run < 2; ++run) {
    dweight.Upload(dweight0);
    dbias.Upload(dbias0);
    ASSERT_TRUE(IsOk(kc::matmul_backward<floatX>(Context(), dinp.get(), dweight.get(), dbias.get(),
                                                 dout.get(), inp.get(), weight.get(), pre.get(),
                                                 s.N, s.C, s.OC, scratch.get(), 0)));
    std::vector<float> got[3] = {dinp.Download(), dweight.Download(), dbias.Download()};
    for (int k = 0; k < 3; ++k) {
      if (run == 0) {
        first[k] = got[k];
      } else {
        ASSERT_EQ(got[k].size(), first[k].size());
        EXPECT_EQ(std::memcmp(got[k].data(), first[k].data(), got[k].size() * sizeof(float)), 0)
            << "output " << k << " (dinp, dweight, dbias) differs between runs";
      }
    }
  }
}

TYPED_TEST(MatmulGpuTest, RejectsBadArguments) {
  SKIP_WITHOUT_GPU();
  using floatX = TypeParam;
  Placed<floatX> buf(64, 0);
  ASSERT_TRUE(buf.ok());
  // kBiasGelu without somewhere to keep the pre-activation.
  EXPECT_FALSE(kc::matmul_forward<floatX>(Context(), buf.get(), nullptr, buf.get(), buf.get(),
                                          buf.get(), 4, 4, 4, kc::MatmulEpilogue::kBiasGelu, 0)
                   .ok());
  // An uninitialized context.
  kc::MatmulContext empty;
  EXPECT_FALSE(kc::matmul_forward<floatX>(empty, buf.get(), nullptr, buf.get(), buf.get(), nullptr,
                                          4, 4, 4, kc::MatmulEpilogue::kNone, 0)
                   .ok());
}

}  // namespace
