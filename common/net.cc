// Socket queries (net.h).
#include "common/net.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace coord {

bool TcpPortBindable(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

Status SplitHostPort(const std::string& hostport, std::string* host, int* port) {
  std::string h, p;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      return InvalidArgument("'" + hostport + "': expected [ipv6]:port");
    }
    h = hostport.substr(1, close - 1);
    p = hostport.substr(close + 2);
  } else {
    size_t colon = hostport.rfind(':');
    if (colon == std::string::npos)
      return InvalidArgument("'" + hostport + "': expected host:port");
    h = hostport.substr(0, colon);
    p = hostport.substr(colon + 1);
  }
  if (h.empty()) return InvalidArgument("'" + hostport + "': empty host");
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535) {
    return InvalidArgument("'" + hostport + "': port must be 0..65535");
  }
  *host = h;
  *port = static_cast<int>(v);
  return Status::Ok();
}

}  // namespace coord
