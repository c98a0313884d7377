// coord-supervisor: `coord-supervisor --dir <gendir> [--notify-fd N]`. Started
// detached by coord-agent for one job generation; see supervisor.h. No gRPC and
// no flag library here, so its exec stays fast on the launch path.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent/supervisor.h"

int main(int argc, char** argv) {
  std::string dir;
  int notify_fd = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (std::strcmp(argv[i], "--notify-fd") == 0 && i + 1 < argc) {
      notify_fd = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: coord-supervisor --dir GENDIR [--notify-fd N]\n");
      return 2;
    }
  }
  if (dir.empty() || dir[0] != '/') {
    std::fprintf(stderr, "coord-supervisor: --dir must be an absolute path\n");
    return 2;
  }
  // Whatever else the agent had open (its gRPC sockets) must not live on in us.
  unsigned first = notify_fd >= 3 ? static_cast<unsigned>(notify_fd) + 1 : 3U;
  if (notify_fd > 3) syscall(SYS_close_range, 3U, static_cast<unsigned>(notify_fd) - 1, 0U);
  syscall(SYS_close_range, first, ~0U, 0U);
  return coord::agent::RunSupervisor(dir, notify_fd);
}
