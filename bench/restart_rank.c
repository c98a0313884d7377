/* restart_rank: the rank program of bench/restart_bench.py (the same binary under
 * Coord and under torchrun).
 * usage: restart_rank STAMPDIR [MAX_LIFE_S]
 *
 * The rank is $RANK, the restart count $COORD_RESTART_COUNT (Coord) or
 * $TORCHELASTIC_RESTART_COUNT (torchrun), else 0. Times are CLOCK_REALTIME ns, so
 * stamps of different processes (and coordd's wall-clock ms) compare. Every line
 * goes to STAMPDIR/stamps in one O_APPEND write:
 *   start <rank> <restart_count> <pid> <ns>     as soon as it runs
 *   term <rank> <restart_count> <ns>           on SIGTERM (then it exits 143)
 *   hang <rank> <restart_count> <last_progress_ns>
 *                                              when it begins to play hung
 * Then every 100 ms:
 *   - STAMPDIR/finish exists: exit 0;
 *   - STAMPDIR/hang exists and holds this rank's restart count (or is empty): write no
 *     more progress records but stay alive (a hang); otherwise, if COORD_PROGRESS_FD
 *     is set, write {"iteration": N} to that descriptor.
 * After MAX_LIFE_S (default 900) it exits 3 by itself: a safety net, never a result. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char stamp_path[4096];
static char finish_path[4096];
static char hang_path[4096];
static int g_rank = -1;
static int g_restart = 0;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Async-signal-safe decimal formatting (the SIGTERM handler uses it). */
static size_t put_ll(char *p, long long v) {
  char tmp[24];
  size_t n = 0, i = 0;
  int neg = v < 0;
  unsigned long long u = neg ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) p[i++] = '-';
  while (n) p[i++] = tmp[--n];
  return i;
}

static size_t put_s(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return n;
}

static void append_line(const char *line, size_t n) {
  int fd = open(stamp_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) _exit(99);
  if (write(fd, line, n) != (ssize_t)n) _exit(99);
  close(fd);
}

/* "<kind> <rank> <restart> [<a>] <b>\n" */
static void stamp(const char *kind, int with_a, long long a, long long b) {
  char line[160];
  size_t n = 0;
  n += put_s(line + n, kind);
  line[n++] = ' ';
  n += put_ll(line + n, g_rank);
  line[n++] = ' ';
  n += put_ll(line + n, g_restart);
  if (with_a) {
    line[n++] = ' ';
    n += put_ll(line + n, a);
  }
  line[n++] = ' ';
  n += put_ll(line + n, b);
  line[n++] = '\n';
  append_line(line, n);
}

static void on_term(int sig) {
  (void)sig;
  stamp("term", 0, 0, now_ns());
  _exit(143);
}

static int env_int(const char *name, int dflt) {
  const char *v = getenv(name);
  return (v && *v) ? atoi(v) : dflt;
}

/* 1 if the hang file exists and names this restart count (or is empty). */
static int hang_requested(void) {
  int fd = open(hang_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 1;
  buf[n] = 0;
  char *end;
  long want = strtol(buf, &end, 10);
  if (end == buf) return 1;
  return want == g_restart;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: restart_rank STAMPDIR [MAX_LIFE_S]\n");
    return 2;
  }
  snprintf(stamp_path, sizeof stamp_path, "%s/stamps", argv[1]);
  snprintf(finish_path, sizeof finish_path, "%s/finish", argv[1]);
  snprintf(hang_path, sizeof hang_path, "%s/hang", argv[1]);
  long max_life_s = argc > 2 ? atol(argv[2]) : 900;
  g_rank = env_int("RANK", -1);
  g_restart = env_int("COORD_RESTART_COUNT", env_int("TORCHELASTIC_RESTART_COUNT", 0));
  const char *pfd = getenv("COORD_PROGRESS_FD");
  int progress_fd = (pfd && *pfd) ? atoi(pfd) : -1;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);

  long long t0 = now_ns();
  stamp("start", 1, (long long)getpid(), t0);

  long long iteration = 0, last_progress = 0;
  int hung = 0;
  for (;;) {
    if (access(finish_path, F_OK) == 0) return 0;
    if (hang_requested()) {
      if (!hung) stamp("hang", 0, 0, last_progress);
      hung = 1;
    } else {
      hung = 0;
      if (progress_fd >= 0) {
        char rec[64];
        int n = snprintf(rec, sizeof rec, "{\"iteration\": %lld}\n", ++iteration);
        if (write(progress_fd, rec, (size_t)n) == n) last_progress = now_ns();
      }
    }
    if (now_ns() - t0 > max_life_s * 1000000000LL) return 3;
    struct timespec ts = {0, 100 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}
