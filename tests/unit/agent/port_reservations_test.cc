// Unit tests for ReservePort's holder (agent/port_reservations.h).
#include "agent/port_reservations.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/net.h"

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

}  // namespace
}  // namespace coord::agent
