// LossScaler against DeepSpeed's DynamicLossScaler.update_scale, traced by hand from
// deepspeed/runtime/fp16/loss_scaler.py for the sequences below.
#include "trainer/optim/loss_scaler.h"

#include <gtest/gtest.h>

#include <vector>

namespace trainer {
namespace {

LossScalerConfig Dynamic(int power, int64_t window, int hysteresis) {
  LossScalerConfig c;
  c.initial_scale_power = power;
  c.scale_window = window;
  c.hysteresis = hysteresis;
  return c;
}

std::vector<double> Scales(LossScaler* s, const std::vector<bool>& overflows) {
  std::vector<double> scales;
  for (bool o : overflows) {
    EXPECT_TRUE(s->Update(o).ok());
    scales.push_back(s->scale());
  }
  return scales;
}

TEST(LossScalerTest, StartsAtTwoToTheInitialPower) {
  EXPECT_EQ(LossScaler(Dynamic(16, 1000, 2)).scale(), 65536.0);
  EXPECT_EQ(LossScaler(Dynamic(32, 1000, 2)).scale(), 4294967296.0);
}

TEST(LossScalerTest, DoublesAfterEachWindowWithoutOverflow) {
  LossScaler s(Dynamic(4, 3, 2));  // 16
  // cur_iter 0..: (cur_iter - (-1)) % 3 == 0 at cur_iter 2, 5, 8.
  EXPECT_EQ(Scales(&s, {false, false, false, false, false, false}),
            (std::vector<double>{16, 16, 32, 32, 32, 64}));
}

TEST(LossScalerTest, HysteresisDelaysTheHalving) {
  LossScaler s(Dynamic(10, 1000, 2));  // 1024
  EXPECT_NE(s.DescribeOverflow(7).find("1024 kept (hysteresis: 1 left)"), std::string::npos)
      << s.DescribeOverflow(7);
  EXPECT_EQ(Scales(&s, {true}), std::vector<double>{1024});  // hysteresis 2 -> 1
  EXPECT_NE(s.DescribeOverflow(8).find("skipping iteration 8 (no update), loss scale 1024 -> 512"),
            std::string::npos)
      << s.DescribeOverflow(8);
  // Further overflows halve each time: the counter stays at 1 until a doubling refills it.
  EXPECT_EQ(Scales(&s, {true, true}), (std::vector<double>{512, 256}));
}

TEST(LossScalerTest, WindowCountsFromTheLastOverflowAndRefillsHysteresis) {
  LossScaler s(Dynamic(8, 2, 2));  // 256
  // it0 overflow (hyst 2->1, last=0); it1 ok: (1-0)%2 != 0; it2 ok: (2-0)%2 == 0 -> 512,
  // hysteresis refilled to 2; it3 overflow: 2->1, kept; it4 overflow: halve -> 256.
  EXPECT_EQ(Scales(&s, {true, false, false, true, true}),
            (std::vector<double>{256, 256, 512, 512, 256}));
}

TEST(LossScalerTest, ConsecutiveHysteresisRefillsAfterEveryGoodStep) {
  LossScalerConfig c = Dynamic(8, 1000, 2);
  c.consecutive_hysteresis = true;
  LossScaler s(c);
  // overflow (2->1), good step (refill to 2), overflow (2->1): never halved.
  EXPECT_EQ(Scales(&s, {true, false, true}), (std::vector<double>{256, 256, 256}));
  LossScaler plain(Dynamic(8, 1000, 2));
  EXPECT_EQ(Scales(&plain, {true, false, true}), (std::vector<double>{256, 256, 128}));
}

TEST(LossScalerTest, FloorsAtMinScaleThenStopsTheRun) {
  LossScalerConfig c = Dynamic(2, 1000, 1);  // 4
  c.min_scale = 1;
  LossScaler s(c);
  EXPECT_EQ(Scales(&s, {true, true}), (std::vector<double>{2, 1}));
  coord::Status st = s.Update(true);
  EXPECT_EQ(st.code(), coord::StatusCode::kAborted);
  EXPECT_NE(st.message().find("min_loss_scale (1)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bf16"), std::string::npos) << st.message();
}

TEST(LossScalerTest, StaticScaleNeverChanges) {
  LossScalerConfig c;
  c.dynamic = false;
  c.static_scale = 128;
  LossScaler s(c);
  EXPECT_EQ(Scales(&s, {true, true, false, true}), (std::vector<double>{128, 128, 128, 128}));
  EXPECT_NE(s.DescribeOverflow(3).find("128 (static)"), std::string::npos);
}

TEST(LossScalerTest, StateRoundTripContinuesTheSameSequence) {
  LossScaler a(Dynamic(8, 3, 2));
  Scales(&a, {false, true, false});
  LossScaler b(Dynamic(8, 3, 2));
  b.set_state(a.state());
  const std::vector<bool> rest = {false, false, true, true, false, false, false};
  EXPECT_EQ(Scales(&a, rest), Scales(&b, rest));
}

}  // namespace
}  // namespace trainer
