// gpt-rank's GPT_RANK_INJECT_* variables (fault_injection.h): each form parsed, every
// malformed value refused naming its variable, and the delay's rank and start.
#include "trainer/train/fault_injection.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace gpt_rank::train {
namespace {

class FaultInjectionTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* v : {"GPT_RANK_INJECT_OVERFLOW", "GPT_RANK_INJECT_STOP",
                          "GPT_RANK_INJECT_DELAY_MS", "GPT_RANK_INJECT_HANG"}) {
      unsetenv(v);
    }
  }
};

TEST_F(FaultInjectionTest, UnsetMeansNothing) {
  auto f = FaultInjectionFromEnv();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->overflow_at.empty());
  EXPECT_EQ(f->stop.first, -1);
  EXPECT_EQ(f->hang.first, -1);
  EXPECT_EQ(f->DelayMs(0, 1), 0);
}

TEST_F(FaultInjectionTest, EachFormParses) {
  setenv("GPT_RANK_INJECT_OVERFLOW", "3,7", 1);
  setenv("GPT_RANK_INJECT_STOP", "2:3", 1);
  setenv("GPT_RANK_INJECT_DELAY_MS", "1:50,3:20@10", 1);
  setenv("GPT_RANK_INJECT_HANG", "2:5", 1);
  auto f = FaultInjectionFromEnv();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->overflow_at, (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(f->stop, (std::pair<int, int64_t>{2, 3}));
  EXPECT_EQ(f->hang, (std::pair<int, int64_t>{2, 5}));
  EXPECT_EQ(f->DelayMs(1, 1), 50);
  EXPECT_EQ(f->DelayMs(0, 1), 0);
  EXPECT_EQ(f->DelayMs(3, 9), 0);  // from iteration 10
  EXPECT_EQ(f->DelayMs(3, 10), 20);
}

TEST_F(FaultInjectionTest, MalformedValuesAreRefusedByName) {
  const std::pair<const char*, const char*> bad[] = {
      {"GPT_RANK_INJECT_OVERFLOW", "3,x"}, {"GPT_RANK_INJECT_OVERFLOW", "0"},
      {"GPT_RANK_INJECT_STOP", "2"},       {"GPT_RANK_INJECT_STOP", "2:0"},
      {"GPT_RANK_INJECT_DELAY_MS", "1"},   {"GPT_RANK_INJECT_DELAY_MS", "1:50@0"},
      {"GPT_RANK_INJECT_DELAY_MS", "-1:5"}, {"GPT_RANK_INJECT_DELAY_MS", "1:5x"},
      {"GPT_RANK_INJECT_HANG", "a:b"},     {"GPT_RANK_INJECT_HANG", "1:2:3"},
  };
  for (const auto& [name, value] : bad) {
    setenv(name, value, 1);
    auto f = FaultInjectionFromEnv();
    EXPECT_EQ(f.status().code(), coord::StatusCode::kInvalidArgument) << name << "=" << value;
    EXPECT_NE(f.status().message().find(name), std::string::npos) << f.status().ToString();
    unsetenv(name);
  }
}

}  // namespace
}  // namespace gpt_rank::train
