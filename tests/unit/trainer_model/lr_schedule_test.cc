// Megatron's AnnealingLR: values at chosen iterations against a table computed by hand
// from megatron/learning_rates.py's formula, and the iteration off-by-one (iteration k
// trains with get_lr((k-1)*gbs); Megatron's log line for k shows get_lr(k*gbs)).
#include "trainer/optim/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace trainer {
namespace {

LrSchedule Make(LrDecayStyle style, int64_t warmup_iters, double warmup_fraction = -1.0) {
  LrScheduleConfig c;
  c.lr = 1e-3;
  c.min_lr = 1e-4;
  c.decay_style = style;
  c.train_iters = 200;
  c.lr_decay_iters = 100;
  c.lr_warmup_iters = warmup_iters;
  c.lr_warmup_fraction = warmup_fraction;
  c.global_batch_size = 8;
  auto s = LrSchedule::Create(c);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

TEST(LrScheduleTest, CosineTableByHand) {
  LrSchedule s = Make(LrDecayStyle::kCosine, 10);
  // warmup: lr * k_steps / warmup, k_steps = (k-1) iterations done before iteration k.
  EXPECT_DOUBLE_EQ(s.LrForIteration(1), 0.0);    // Megatron's first iteration: lr 0
  EXPECT_DOUBLE_EQ(s.LrForIteration(2), 1e-4);   // 1e-3 * 1/10
  EXPECT_DOUBLE_EQ(s.LrForIteration(6), 5e-4);   // 1e-3 * 5/10
  EXPECT_DOUBLE_EQ(s.LrForIteration(11), 1e-3);  // num_steps == warmup: still warmup branch
  // decay: ratio = (n - 10) / 90; lr = 1e-4 + 0.5 (cos(pi ratio) + 1) * 9e-4
  EXPECT_DOUBLE_EQ(s.LrForIteration(56), 1e-4 + 0.5 * (std::cos(M_PI * 0.5) + 1) * 9e-4);  // 5.5e-4
  EXPECT_NEAR(s.LrForIteration(56), 5.5e-4, 1e-18);
  EXPECT_DOUBLE_EQ(s.LrForIteration(41), 1e-4 + 0.5 * (std::cos(M_PI / 3) + 1) * 9e-4);  // 7.75e-4
  EXPECT_NEAR(s.LrForIteration(41), 7.75e-4, 1e-15);
  EXPECT_DOUBLE_EQ(s.LrForIteration(101), 1e-4);  // num_steps == decay_steps: coeff 0
  EXPECT_DOUBLE_EQ(s.LrForIteration(150), 1e-4);  // past decay: min_lr
  // The logged lr of iteration k is the one iteration k+1 uses.
  for (int k = 1; k < 120; ++k) EXPECT_EQ(s.LoggedLrForIteration(k), s.LrForIteration(k + 1));
}

TEST(LrScheduleTest, LinearAndConstant) {
  LrSchedule lin = Make(LrDecayStyle::kLinear, 10);
  EXPECT_NEAR(lin.LrForIteration(56), 1e-4 + 0.5 * 9e-4, 1e-16);  // ratio 45/90
  EXPECT_NEAR(lin.LrForIteration(83), 1e-4 + 0.2 * 9e-4, 1e-16);  // ratio 72/90 = 0.8
  LrSchedule constant = Make(LrDecayStyle::kConstant, 10);
  EXPECT_DOUBLE_EQ(constant.LrForIteration(3), 2e-4);  // warmup applies to constant too
  EXPECT_DOUBLE_EQ(constant.LrForIteration(500), 1e-3);
  LrSchedule no_warmup = Make(LrDecayStyle::kCosine, 0);
  EXPECT_DOUBLE_EQ(no_warmup.LrForIteration(1), 1e-3);  // decay_ratio 0
}

TEST(LrScheduleTest, WarmupFractionIsOfDecayIters) {
  LrSchedule s = Make(LrDecayStyle::kCosine, 0, 0.05);  // 0.05 * 100 iters = 5 iters
  EXPECT_DOUBLE_EQ(s.warmup_steps(), 5.0 * 8);
  EXPECT_DOUBLE_EQ(s.LrForIteration(3), 1e-3 * 2 / 5);
  EXPECT_DOUBLE_EQ(s.LrForIteration(6), 1e-3);
  // Fractional warmup in iterations: 0.015 * 100 = 1.5 iterations (12 samples).
  LrSchedule f = Make(LrDecayStyle::kCosine, 0, 0.015);
  EXPECT_DOUBLE_EQ(f.LrForIteration(2), 1e-3 * 8 / 12);
}

TEST(LrScheduleTest, RejectsBadConfigs) {
  LrScheduleConfig c;
  c.train_iters = 0;
  EXPECT_FALSE(LrSchedule::Create(c).ok());
  c.train_iters = 10;
  c.lr_warmup_iters = 10;
  c.decay_style = LrDecayStyle::kCosine;
  EXPECT_FALSE(LrSchedule::Create(c).ok());  // warmup as long as decay
  c.lr_warmup_iters = 1;
  c.min_lr = 1.0;
  EXPECT_FALSE(LrSchedule::Create(c).ok());
  EXPECT_FALSE(ParseLrDecayStyle("cosin").ok());
  EXPECT_EQ(*ParseLrDecayStyle("cosine"), LrDecayStyle::kCosine);
}

}  // namespace
}  // namespace trainer
