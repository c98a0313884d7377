// Unit tests for ReservePort's holder (agent/port_reservations.h).
#include "agent/port_reservations.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace coord::agent {
namespace {

bool CanBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

TEST(PortReservationsTest, HoldsUntilReleaseOrExpiry) {
  PortReservations ports(60000);
  auto p = ports.Reserve("job", 0);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(CanBind(*p));
  EXPECT_FALSE(ports.Release("other-job", *p));
  EXPECT_TRUE(ports.Release("job", *p));
  EXPECT_TRUE(CanBind(*p));

  auto q = ports.Reserve("job", 20);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(ports.size(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ports.ExpireOld(), 1);
  EXPECT_TRUE(CanBind(*q));
}

}  // namespace
}  // namespace coord::agent
