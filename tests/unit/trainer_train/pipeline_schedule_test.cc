// Megatron's pipeline schedules (trainer/train/pipeline_schedule.h) with a fake stage
// on real gloo ranks (forked processes): every micro-batch goes forward through every
// virtual stage in order and comes back through them in reverse, each exactly once,
// carrying the right values over the ring (the last stage's chunk c feeds the first
// stage's chunk c + 1); backwards of a chunk come in the order of its forwards; and a
// stage never holds more micro-batches in flight than 1F1B / the interleaved schedule
// promise (the plan's figure, which the plan's memory uses).
#include "trainer/train/pipeline_schedule.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "tests/unit/trainer_dist/gloo_ranks.h"
#include "trainer/plan/pipeline_schedule.h"

namespace gpt_rank::train {
namespace {

using std::chrono::milliseconds;
constexpr size_t kFloats = 6;

// Forward adds (virtual stage + 1) to every element; backward adds 1. The values say
// where an activation or gradient has been.
class FakeStage final : public PipelineStage {
 public:
  explicit FakeStage(const PipelineShape& s) : s_(s), order_(static_cast<size_t>(s.vpp)) {}
  size_t activation_floats() const override { return kFloats; }

  int Virtual(int chunk) const { return chunk * s_.pp + s_.stage; }
  int Virtuals() const { return s_.pp * s_.vpp; }

  coord::Status Forward(int chunk, int64_t m, const float* input, float* output) override {
    const int v = Virtual(chunk);
    EXPECT_EQ(input == nullptr, v == 0) << "chunk " << chunk;
    EXPECT_EQ(output == nullptr, v == Virtuals() - 1) << "chunk " << chunk;
    const float want = 1000.0f * static_cast<float>(m) + static_cast<float>(v * (v + 1) / 2);
    const float in = input != nullptr ? input[0] : 1000.0f * static_cast<float>(m);
    EXPECT_EQ(in, want) << "forward of micro-batch " << m << " at virtual stage " << v;
    for (size_t i = 0; input != nullptr && i < kFloats; ++i) EXPECT_EQ(input[i], in);
    if (output != nullptr) std::fill(output, output + kFloats, in + static_cast<float>(v + 1));
    EXPECT_TRUE(forwarded_.insert({chunk, m}).second) << "micro-batch " << m << " twice";
    order_[static_cast<size_t>(chunk)].push_back(m);
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    return coord::Status::Ok();
  }

  coord::Status Backward(int chunk, int64_t m, const float* output_grad,
                         float* input_grad) override {
    const int v = Virtual(chunk);
    EXPECT_EQ(output_grad == nullptr, v == Virtuals() - 1);
    EXPECT_EQ(input_grad == nullptr, v == 0);
    const float want = 7.0f * static_cast<float>(m) + static_cast<float>(Virtuals() - 1 - v);
    const float got = output_grad != nullptr ? output_grad[0] : 7.0f * static_cast<float>(m);
    EXPECT_EQ(got, want) << "backward of micro-batch " << m << " at virtual stage " << v;
    if (input_grad != nullptr) std::fill(input_grad, input_grad + kFloats, got + 1.0f);
    std::deque<int64_t>& q = order_[static_cast<size_t>(chunk)];
    EXPECT_TRUE(!q.empty() && q.front() == m) << "chunk " << chunk << ": backward of " << m
                                              << " out of forward order";
    if (!q.empty()) q.pop_front();
    EXPECT_TRUE(backwarded_.insert({chunk, m}).second);
    --in_flight_;
    return coord::Status::Ok();
  }

  PipelineShape s_;
  std::set<std::pair<int, int64_t>> forwarded_, backwarded_;
  std::vector<std::deque<int64_t>> order_;  // per chunk: forwarded, not yet backwarded
  int64_t in_flight_ = 0, max_in_flight_ = 0;
};

class Schedules : public ::testing::TestWithParam<std::tuple<int, int, int64_t>> {};

TEST_P(Schedules, EveryMicroBatchCrossesEveryStageBothWaysWithinTheMemoryBound) {
  const auto [pp, vpp, m] = GetParam();
  for (const bool forward_only : {false, true}) {
    dist::RunRanks(pp, milliseconds(10000), [&](int rank, dist::GlooCommunicator& comm) {
      PipelineShape shape{pp, rank, vpp, m};
      FakeStage stage(shape);
      ASSERT_TRUE(RunPipelineSchedule(stage, comm, shape, forward_only).ok());
      EXPECT_EQ(stage.forwarded_.size(), static_cast<size_t>(m * vpp));
      if (forward_only) {
        EXPECT_TRUE(stage.backwarded_.empty());
        return;
      }
      EXPECT_EQ(stage.backwarded_, stage.forwarded_);
      EXPECT_EQ(stage.in_flight_, 0);
      EXPECT_LE(stage.max_in_flight_, plan::InFlightMicroBatches(pp, vpp, m, rank))
          << "stage " << rank;
      if (vpp == 1) {
        EXPECT_EQ(stage.max_in_flight_, std::min<int64_t>(pp - rank, m));
      }
      ASSERT_TRUE(comm.Barrier().ok());  // nothing left unmatched on the wire
    });
  }
}

INSTANTIATE_TEST_SUITE_P(
    OneFOneBAndInterleaved, Schedules,
    ::testing::Values(std::make_tuple(2, 1, int64_t{4}), std::make_tuple(4, 1, int64_t{4}),
                      std::make_tuple(4, 1, int64_t{9}), std::make_tuple(3, 1, int64_t{2}),
                      std::make_tuple(2, 2, int64_t{2}), std::make_tuple(2, 2, int64_t{6}),
                      std::make_tuple(4, 2, int64_t{8}), std::make_tuple(3, 3, int64_t{6})),
    [](const auto& info) {
      return "pp" + std::to_string(std::get<0>(info.param)) + "_v" +
             std::to_string(std::get<1>(info.param)) + "_m" +
             std::to_string(std::get<2>(info.param));
    });

TEST(Schedules, TheInterleavedRuleOnMicroBatchesIsChecked) {
  dist::RunRanks(2, milliseconds(5000), [&](int rank, dist::GlooCommunicator& comm) {
    PipelineShape shape{2, rank, 2, 3};
    FakeStage stage(shape);
    const coord::Status s = RunPipelineSchedule(stage, comm, shape, false);
    EXPECT_EQ(s.code(), coord::StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find("3 micro-batches is not a multiple of the 2 stages"),
              std::string::npos)
        << s.message();
  });
}

}  // namespace
}  // namespace gpt_rank::train
