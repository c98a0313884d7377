/* stamp_rank: the rank program of bench/launch_bench.py.
 * usage: stamp_rank STAMPFILE MODE [FAIL_RANK FAIL_AFTER_MS]
 * Appends "S <rank> <pid> <CLOCK_MONOTONIC ns> <CLOCK_REALTIME ns>\n" to
 * STAMPFILE (O_APPEND, one write) as soon as it starts, then by MODE:
 *   exit0   exit 0 at once
 *   sleep   sleep (SIGTERM kills it)
 *   ignore  ignore SIGTERM, then sleep (only SIGKILL ends it)
 *   fail    rank FAIL_RANK sleeps FAIL_AFTER_MS, appends "X ..." (same fields)
 *           and exits 1; every other rank exits 0 at once
 * Sleeping ranks end themselves after 600 s: a safety net, never a result.
 * The rank is $RANK (torchrun, coord) or $OMPI_COMM_WORLD_RANK (mpirun). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void stamp(const char *path, char kind, int rank) {
  long long mono = now_ns(CLOCK_MONOTONIC), real = now_ns(CLOCK_REALTIME);
  char line[128];
  int n = snprintf(line, sizeof line, "%c %d %d %lld %lld\n", kind, rank, (int)getpid(), mono, real);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, line, (size_t)n) != n) _exit(99);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: stamp_rank STAMPFILE exit0|sleep|ignore|fail [FAIL_RANK FAIL_AFTER_MS]\n");
    return 2;
  }
  const char *r = getenv("RANK");
  if (!r) r = getenv("OMPI_COMM_WORLD_RANK");
  int rank = r ? atoi(r) : -1;
  const char *mode = argv[2];
  if (strcmp(mode, "ignore") == 0) signal(SIGTERM, SIG_IGN);
  stamp(argv[1], 'S', rank);
  if (strcmp(mode, "exit0") == 0) return 0;
  if (strcmp(mode, "fail") == 0) {
    if (argc < 5) return 2;
    if (rank != atoi(argv[3])) return 0;
    usleep((useconds_t)atoi(argv[4]) * 1000);
    stamp(argv[1], 'X', rank);
    return 1;
  }
  if (strcmp(mode, "sleep") == 0 || strcmp(mode, "ignore") == 0) {
    for (int i = 0; i < 600; ++i) sleep(1);
    return 0;
  }
  fprintf(stderr, "stamp_rank: unknown mode %s\n", mode);
  return 2;
}
