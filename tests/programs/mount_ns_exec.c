/* mount_ns_exec: runs a command in a mount namespace of its own, after changing
 * what one path shows, so tests can give a simulated node (an agent on its own
 * loopback address) a filesystem view that differs from the others':
 *
 *   mount_ns_exec --bind SRC DST -- cmd args...   DST shows SRC (another "CFS")
 *   mount_ns_exec --hung-fuse DST -- cmd args...  DST is a FUSE mount nobody serves:
 *                                                 every stat/open under it blocks,
 *                                                 like a hard NFS mount whose server died
 *
 * The FUSE device stays open in cmd (not close-on-exec), so the mount hangs for
 * exactly as long as cmd lives; when it exits the kernel aborts the connection and
 * the namespace, with its mounts, goes away. Needs root (CAP_SYS_ADMIN). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static int usage(void) {
  fprintf(stderr,
          "usage: mount_ns_exec (--bind SRC DST | --hung-fuse DST) -- cmd [args...]\n");
  return 2;
}

int main(int argc, char** argv) {
  const char *src = NULL, *dst = NULL;
  int hung = 0, i = 1;
  if (argc > 4 && strcmp(argv[1], "--bind") == 0) {
    src = argv[2], dst = argv[3], i = 4;
  } else if (argc > 3 && strcmp(argv[1], "--hung-fuse") == 0) {
    hung = 1, dst = argv[2], i = 3;
  } else {
    return usage();
  }
  if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) return usage();
  char** cmd = argv + i + 1;

  if (unshare(CLONE_NEWNS) != 0) {
    fprintf(stderr, "mount_ns_exec: unshare(CLONE_NEWNS): %s\n", strerror(errno));
    return 1;
  }
  /* Private, so nothing we mount leaks back into the parent namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    fprintf(stderr, "mount_ns_exec: make / private: %s\n", strerror(errno));
    return 1;
  }
  if (!hung) {
    if (mount(src, dst, NULL, MS_BIND, NULL) != 0) {
      fprintf(stderr, "mount_ns_exec: bind %s on %s: %s\n", src, dst, strerror(errno));
      return 1;
    }
  } else {
    int fd = open("/dev/fuse", O_RDWR); /* inherited by cmd on purpose */
    if (fd < 0) {
      fprintf(stderr, "mount_ns_exec: open /dev/fuse: %s\n", strerror(errno));
      return 1;
    }
    char opts[128];
    snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
    if (mount("hungfs", dst, "fuse.hungfs", MS_NOSUID | MS_NODEV, opts) != 0) {
      fprintf(stderr, "mount_ns_exec: mount fuse on %s: %s\n", dst, strerror(errno));
      return 1;
    }
  }
  execvp(cmd[0], cmd);
  fprintf(stderr, "mount_ns_exec: exec %s: %s\n", cmd[0], strerror(errno));
  return 127;
}
