// Unit tests for ReservePort's holder (agent/port_reservations.h).
#include "agent/port_reservations.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/net.h"
#include "tests/support/fake_clock.h"

namespace coord::agent {
namespace {

TEST(PortReservationsTest, HoldsUntilReleaseOrExpiry) {
  PortReservations ports(60000);
  auto p = ports.Reserve("job", 0);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(TcpPortBindable(*p));
  EXPECT_FALSE(ports.Release("other-job", *p));
  EXPECT_TRUE(ports.Release("job", *p));
  EXPECT_TRUE(TcpPortBindable(*p));

  auto q = ports.Reserve("job", 20);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(ports.size(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ports.ExpireOld(), 1);
  EXPECT_TRUE(TcpPortBindable(*q));
}

TEST(PortReservationsTest, TtlRunsOnTheInjectedMonotonicClock) {
  auto clock = std::make_shared<FakeClock>();
  PortReservations ports(60000, clock);
  auto p = ports.Reserve("job", 500);
  ASSERT_TRUE(p.ok());
  clock->SetWallMs(clock->WallMs() + 3600 * 1000);  // a wall-clock step expires nothing
  clock->Advance(499);
  EXPECT_EQ(ports.ExpireOld(), 0);
  EXPECT_FALSE(TcpPortBindable(*p));
  clock->Advance(1);
  EXPECT_EQ(ports.ExpireOld(), 1);
  EXPECT_TRUE(TcpPortBindable(*p));
}

}  // namespace
}  // namespace coord::agent
