// Small socket queries and address parsing shared by the agent's checks, the
// gRPC edge, TLS and tests.
#pragma once

#include <string>

#include "common/status.h"

namespace coord {

// Splits "host:port" / "[v6]:port"; port 0 allowed.
Status SplitHostPort(const std::string& hostport, std::string* host, int* port);

// Whether a TCP listener could bind `port` on all IPv4 addresses right now (bind
// with SO_REUSEADDR, so a port in TIME_WAIT counts as free; a listening socket on
// any address does not). The socket is closed again at once.
bool TcpPortBindable(int port);

}  // namespace coord
