// Test support: TCP ports for programs that cannot bind port 0 themselves.
#pragma once

namespace coord::testing {

// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, close); -1 if
// none could be had. For programs that take a fixed port (MASTER_PORT); the kernel
// does not hand it out again soon.
int UnusedTcpPort();

}  // namespace coord::testing
