/* netns_exec: runs a command in a named network namespace, keeping every other
 * namespace (unlike `ip netns exec`, which also remounts /sys in a mount namespace
 * of its own: the agent would lose the cgroup2 mount it kills jobs with):
 *
 *   netns_exec /run/netns/NAME -- cmd args...
 *
 * It execs cmd, so cmd keeps this process's PID (tests stop it by PID). Needs root
 * (CAP_SYS_ADMIN). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: netns_exec /run/netns/NAME -- cmd [args...]\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  if (setns(fd, CLONE_NEWNET) != 0) {
    perror("setns");
    return 1;
  }
  close(fd);
  execvp(argv[3], argv + 3);
  perror(argv[3]);
  return 127;
}
