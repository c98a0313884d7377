// Small socket queries shared by the agent's checks and tests.
#pragma once

namespace coord {

// Whether a TCP listener could bind `port` on all IPv4 addresses right now (bind
// with SO_REUSEADDR, so a port in TIME_WAIT counts as free; a listening socket on
// any address does not). The socket is closed again at once.
bool TcpPortBindable(int port);

}  // namespace coord
