/* progress_rank: the rank program of bench/metrics_http_bench.py. It plays a training
 * rank as coordd sees one: every PERIOD_MS it writes a progress record like gpt-rank's,
 *   {"iteration":N,"loss":L,"time_ms":T,"tokens_per_s":S}
 * to $COORD_PROGRESS_FD, and otherwise sleeps (the bench measures coordd, not ranks).
 * usage: progress_rank PERIOD_MS MAX_LIFE_S   (exits 0 after MAX_LIFE_S: a safety net) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const long period_ms = argc > 1 ? atol(argv[1]) : 100;
  const long life_s = argc > 2 ? atol(argv[2]) : 600;
  const char *fd_text = getenv("COORD_PROGRESS_FD");
  const int fd = fd_text ? atoi(fd_text) : -1;
  const time_t end = time(NULL) + life_s;
  for (long it = 1; time(NULL) < end; ++it) {
    struct timespec ts = {period_ms / 1000, (period_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (fd < 0) continue;
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "{\"iteration\":%ld,\"loss\":%.4f,\"time_ms\":%ld.25,\"tokens_per_s\":%.1f}\n",
                     it, 10.0 / (1.0 + it * 0.01), period_ms, 8192.0 * 1000.0 / period_ms);
    if (write(fd, line, (size_t)n) != n) return 1;
  }
  return 0;
}
