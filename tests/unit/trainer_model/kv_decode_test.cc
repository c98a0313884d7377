// The generation kernels and cache: attention over a KV cache against the training
// attention (attention_forward, itself checked against a double reference in
// llama_kernels_test.cc) for GPT-2's plain and the grouped (GQA) QKV layouts, all at
// once and token by token; matvec_forward against matmul_forward; the cache's size
// checks. Tolerance 1e-6: the kernels do the same float operations in the same order
// (in practice the outputs are equal), but nothing promises the compiler keeps that.
#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/trainer_model/test_util.h"
#include "trainer/kernels/cpu/attention.h"
#include "trainer/kernels/cpu/attention_decode.h"
#include "trainer/kernels/cpu/matmul.h"
#include "trainer/kernels/cpu/matvec.h"
#include "trainer/model/kv_cache.h"

namespace kernels::cpu {
namespace {

using trainer::testing::RandomVector;
using trainer::testing::RelErr;

constexpr double kTol = 1e-6;

// attention_forward's output for one sequence (B = 1) of T tokens, no dropout.
std::vector<float> FullAttention(const std::vector<float>& qkv, int T, int C, int NH, int kv) {
  std::vector<float> out(static_cast<size_t>(T) * C), att(static_cast<size_t>(NH) * T * T);
  attention_forward(out.data(), att.data(), qkv.data(), 1, T, C, NH, 0.0f, trainer::RngStream{}, 0,
                    kv);
  return out;
}

// The same T tokens fed to the cache in chunks of the given sizes (summing to T).
std::vector<float> CachedAttention(const std::vector<float>& qkv, int T, const QkvLayout& l, int S,
                                   const std::vector<int>& chunks) {
  const int C = l.NH * l.HS;
  std::vector<float> k(static_cast<size_t>(l.KV) * S * l.HS, -7.0f), v(k.size(), -7.0f);
  std::vector<float> out(static_cast<size_t>(T) * C);
  int pos = 0;
  for (int n : chunks) {
    const float* rows = qkv.data() + static_cast<size_t>(pos) * l.row();
    kv_cache_append(k.data(), v.data(), rows, n, pos, S, l);
    attention_decode_forward(out.data() + static_cast<size_t>(pos) * C, rows, k.data(), v.data(), n,
                             pos, S, l);
    pos += n;
  }
  EXPECT_EQ(pos, T);
  return out;
}

void CheckLayout(int C, int NH, int kv) {
  const QkvLayout l = QkvLayout::Make(C, NH, kv);
  const int T = 11, S = 16;  // capacity beyond T: unused rows must not be read
  const auto qkv = RandomVector(static_cast<size_t>(T) * l.row(), 5);
  const auto full = FullAttention(qkv, T, C, NH, kv);
  EXPECT_LT(RelErr(CachedAttention(qkv, T, l, S, {T}), full), kTol) << "prefill at once";
  EXPECT_LT(RelErr(CachedAttention(qkv, T, l, S, std::vector<int>(T, 1)), full), kTol)
      << "one token at a time";
  EXPECT_LT(RelErr(CachedAttention(qkv, T, l, S, {4, 1, 1, 5}), full), kTol) << "chunks";
}

TEST(AttentionDecodeTest, PlainLayoutMatchesAttentionForward) { CheckLayout(32, 4, 0); }
TEST(AttentionDecodeTest, GroupedLayoutMatchesAttentionForward) { CheckLayout(32, 4, 2); }
TEST(AttentionDecodeTest, MultiQueryLayoutMatchesAttentionForward) { CheckLayout(32, 4, 1); }

TEST(AttentionDecodeTest, CacheHoldsKvHeadsOnly) {
  // GQA: the cache has KV heads; each query head reads its group's.
  const QkvLayout l = QkvLayout::Make(16, 4, 2);
  const int S = 3;
  const auto qkv = RandomVector(l.row(), 9);
  std::vector<float> k(static_cast<size_t>(l.KV) * S * l.HS, 0.0f), v(k.size(), 0.0f);
  kv_cache_append(k.data(), v.data(), qkv.data(), 1, 2, S, l);  // position 2
  for (int g = 0; g < l.KV; ++g) {
    for (int j = 0; j < l.HS; ++j) {
      EXPECT_EQ(k[(g * S + 2) * l.HS + j], qkv[l.k(g) + j]);
      EXPECT_EQ(v[(g * S + 2) * l.HS + j], qkv[l.v(g) + j]);
    }
  }
}

TEST(MatvecTest, MatchesMatmulForward) {
  for (int N : {1, 3}) {
    const int C = 96, OC = 1000;  // over the fork threshold; OC not a multiple of 16
    auto x = RandomVector(static_cast<size_t>(N) * C, 1), w = RandomVector(OC * C, 2);
    auto b = RandomVector(OC, 3);
    std::vector<float> a(static_cast<size_t>(N) * OC), r(a.size());
    matvec_forward(a.data(), x.data(), w.data(), b.data(), N, C, OC);
    matmul_forward(r.data(), x.data(), w.data(), b.data(), N, C, OC);
    EXPECT_LT(RelErr(a, r), kTol) << "N=" << N;
    matvec_forward(a.data(), x.data(), w.data(), nullptr, N, C, OC);
    matmul_forward(r.data(), x.data(), w.data(), nullptr, N, C, OC);
    EXPECT_LT(RelErr(a, r), kTol) << "N=" << N << " without bias";
  }
}

}  // namespace
}  // namespace kernels::cpu

namespace trainer {
namespace {

TEST(KvCacheTest, SizedFromValidatedNumbers) {
  GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.group_query_attention = true;
  c.num_query_groups = 2;
  c.seq_length = 16;
  c.max_position_embeddings = 64;
  auto cache = KvCache::Create(c, 10);
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  EXPECT_EQ(cache->capacity(), 10);
  EXPECT_EQ(KvCache::Bytes(c, 10), 2.0 * 2 * 2 * 10 * 8 * 4);  // L, k+v, KV, S, HS, fp32
  EXPECT_EQ(cache->v(0) - cache->k(0), 2 * 10 * 8);
  EXPECT_FALSE(KvCache::Create(c, 0).ok());
  auto over = KvCache::Create(c, 65);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("context"), std::string::npos);
  // A config whose context is absurd: refused by the byte limit, nothing allocated.
  c.num_layers = 1000;
  c.hidden_size = 8192;
  c.num_attention_heads = 64;
  c.group_query_attention = false;
  c.max_position_embeddings = 1 << 30;
  auto huge = KvCache::Create(c, 1 << 30);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("MiB limit"), std::string::npos)
      << huge.status().message();
}

}  // namespace
}  // namespace trainer
