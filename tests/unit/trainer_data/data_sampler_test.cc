// MegatronPretrainingSampler arithmetic: rank slices, exact resume from
// consumed_samples, the same global batches for any data-parallel size, drop_last.
#include "trainer/data/data_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace trainer::data {
namespace {

using Ids = std::vector<int64_t>;

TEST(PretrainingSamplerTest, RanksTakeConsecutiveSlices) {
  auto r0 = PretrainingSampler::Create(100, 2, 0, 2);
  auto r1 = PretrainingSampler::Create(100, 2, 1, 2);
  ASSERT_TRUE(r0.ok() && r1.ok());
  EXPECT_EQ(*r0->MicroBatch(0, 0), (Ids{0, 1}));
  EXPECT_EQ(*r1->MicroBatch(0, 0), (Ids{2, 3}));
  EXPECT_EQ(*r0->MicroBatch(0, 1), (Ids{4, 5}));
  EXPECT_EQ(*r1->MicroBatch(8, 1), (Ids{14, 15}));  // resumed at 8 consumed samples
}

// Global batch 8 as dp=1 x 4 micro-steps, dp=2 x 2, dp=4 x 1, micro-batch 2:
// every layout reads the same samples in each iteration, resumed or not.
TEST(PretrainingSamplerTest, SameGlobalBatchesForAnyDpSizeAndOnResume) {
  const int64_t mbs = 2, gbs = 8, total = 50;
  for (int64_t dp : {1, 2, 4}) {
    const int64_t micro_steps = gbs / (mbs * dp);
    for (int64_t iteration = 0; iteration < 6; ++iteration) {
      const int64_t consumed = iteration * gbs;  // what a checkpoint at `iteration` stores
      Ids seen;
      for (int64_t rank = 0; rank < dp; ++rank) {
        auto s = PretrainingSampler::Create(total, mbs, rank, dp);
        ASSERT_TRUE(s.ok());
        for (int64_t m = 0; m < micro_steps; ++m) {
          auto ids = s->MicroBatch(consumed, m);
          ASSERT_TRUE(ids.ok()) << ids.status().ToString();
          seen.insert(seen.end(), ids->begin(), ids->end());
        }
      }
      std::sort(seen.begin(), seen.end());
      auto s = PretrainingSampler::Create(total, mbs, 0, dp);
      EXPECT_EQ(seen, *s->GlobalBatch(consumed, gbs)) << "dp " << dp << " iter " << iteration;
    }
  }
}

TEST(PretrainingSamplerTest, DropsTheLastPartialBatch) {
  auto s = PretrainingSampler::Create(10, 2, 1, 2);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s->MicroBatch(4, 0), (Ids{6, 7}));
  auto past = s->MicroBatch(8, 0);  // 8..11 does not fit in 10
  EXPECT_EQ(past.status().code(), coord::StatusCode::kOutOfRange);
  EXPECT_NE(past.status().message().find("samples [8, 12) are past the dataset's 10"),
            std::string::npos);
  EXPECT_FALSE(s->GlobalBatch(4, 8).ok());
  EXPECT_FALSE(s->GlobalBatch(0, 6).ok());  // not a multiple of mbs * dp = 4
}

TEST(PretrainingSamplerTest, RejectsBadLayouts) {
  EXPECT_FALSE(PretrainingSampler::Create(10, 0, 0, 1).ok());
  EXPECT_FALSE(PretrainingSampler::Create(10, 2, 2, 2).ok());
  EXPECT_FALSE(PretrainingSampler::Create(10, 2, -1, 2).ok());
  EXPECT_FALSE(PretrainingSampler::Create(10, 2, 0, 0).ok());
}

}  // namespace
}  // namespace trainer::data
