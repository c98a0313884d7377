/* rank_probe: a trivial rank for agent, cluster and bench tests. Driven by args
 * and the rank environment (RANK); runs as a rank under coord-supervisor.
 *   rank_probe [--env-out DIR] [--print N] [--sleep-ms N] [--exit CODE]
 *              [--exit-rank R] [--ignore-term] [--spawn-child] [--spawn-daemon]
 *              [--stamp FILE] [--describe] [--only-generation G]
 *              [--progress-ms N [--progress-count K]]
 *              [--startup-ms N [--startup-rank R]]
 * Without --sleep-ms it exits right away (with --exit CODE, default 0);
 * --sleep-ms 0 sleeps until killed; with
 * --exit-rank R only rank R exits (with CODE) and the others sleep forever.
 * With --only-generation G, --exit/--exit-rank/--sleep-ms apply only while
 * COORD_RESTART_COUNT is G; in any other generation every rank exits 0 at once
 * (a fault that a restart cures).
 * --progress-ms N writes a progress record ({"iteration": i, "loss": ...}) to
 * COORD_PROGRESS_FD every N ms; after --progress-count K records it stops writing
 * and sleeps forever: alive, and hung (with --sleep-ms N > 0 as well it exits
 * instead, with --exit CODE: a job that ends). --startup-ms N delays the first record by
 * N ms (a slow start-up: rendezvous, checkpoint load); 0: it never comes (stuck in
 * start-up). With --startup-rank R only rank R is slow. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static void sleep_forever(void) {
  for (;;) pause();
}

/* Writes the whole environment, one entry per line, to DIR/env-<RANK>.txt via a
 * temp file + rename, so a reader never sees a half-written file. */
static void write_env(const char* dir, const char* rank) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof(path), "%s/env-%s.txt", dir, rank);
  snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
  FILE* f = fopen(tmp, "w");
  if (!f) {
    perror(tmp);
    exit(3);
  }
  for (char** e = environ; *e; ++e) fprintf(f, "%s\n", *e);
  fclose(f);
  rename(tmp, path);
}

static void stamp(const char* file, const char* rank) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char line[128];
  int n = snprintf(line, sizeof(line), "%s %lld\n", rank,
                   (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd >= 0) {
    if (write(fd, line, (size_t)n) < 0) perror(file);
    close(fd);
  }
}

int main(int argc, char** argv) {
  const char* env_out = NULL;
  const char* stamp_file = NULL;
  int print = 0, sleep_ms = -1, exit_code = 0, exit_rank = -1, only_generation = -1;
  int progress_ms = 0, progress_count = -1, startup_ms = -1, startup_rank = -1;
  int ignore_term = 0, spawn_child = 0, spawn_daemon = 0, describe = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--env-out") && v) env_out = argv[++i];
    else if (!strcmp(a, "--print") && v) print = atoi(argv[++i]);
    else if (!strcmp(a, "--sleep-ms") && v) sleep_ms = atoi(argv[++i]);
    else if (!strcmp(a, "--exit") && v) exit_code = atoi(argv[++i]);
    else if (!strcmp(a, "--exit-rank") && v) exit_rank = atoi(argv[++i]);
    else if (!strcmp(a, "--stamp") && v) stamp_file = argv[++i];
    else if (!strcmp(a, "--ignore-term")) ignore_term = 1;
    else if (!strcmp(a, "--spawn-child")) spawn_child = 1;
    else if (!strcmp(a, "--spawn-daemon")) spawn_daemon = 1;
    else if (!strcmp(a, "--describe")) describe = 1;
    else if (!strcmp(a, "--only-generation") && v) only_generation = atoi(argv[++i]);
    else if (!strcmp(a, "--progress-ms") && v) progress_ms = atoi(argv[++i]);
    else if (!strcmp(a, "--progress-count") && v) progress_count = atoi(argv[++i]);
    else if (!strcmp(a, "--startup-ms") && v) startup_ms = atoi(argv[++i]);
    else if (!strcmp(a, "--startup-rank") && v) startup_rank = atoi(argv[++i]);
    else {
      fprintf(stderr, "rank_probe: unknown argument %s\n", a);
      return 2;
    }
  }
  const char* rank = getenv("RANK") ? getenv("RANK") : "0";
  if (stamp_file) stamp(stamp_file, rank);
  if (ignore_term) signal(SIGTERM, SIG_IGN);
  if (env_out) write_env(env_out, rank);
  if (describe) {
#define ENV_OR(name) (getenv(name) ? getenv(name) : "?")
    printf("rank %s of %s (local %s of %s) on node %s, pid %d, master %s:%s, job %s\n", rank,
           ENV_OR("WORLD_SIZE"), ENV_OR("LOCAL_RANK"), ENV_OR("LOCAL_WORLD_SIZE"),
           ENV_OR("NODE_RANK"), (int)getpid(), ENV_OR("MASTER_ADDR"), ENV_OR("MASTER_PORT"),
           ENV_OR("COORD_JOB_ID"));
#undef ENV_OR
  }
  for (int i = 0; i < print; ++i) printf("line %d of rank %s\n", i, rank);
  fprintf(stderr, "stderr of rank %s\n", rank);
  fflush(stdout);
  if (spawn_child && fork() == 0) sleep_forever();  /* same process group */
  if (spawn_daemon && fork() == 0) {
    if (fork() == 0) {  /* grandchild: own session, escapes the process group */
      setsid();
      sleep_forever();
    }
    _exit(0);
  }
  const char* restart_count = getenv("COORD_RESTART_COUNT");
  if (only_generation >= 0 && (!restart_count || atoi(restart_count) != only_generation)) return 0;
  if (progress_ms > 0) {
    const char* fd_text = getenv("COORD_PROGRESS_FD");
    int fd = fd_text ? atoi(fd_text) : -1;
    if (startup_ms >= 0 && (startup_rank < 0 || atoi(rank) == startup_rank)) {
      if (startup_ms == 0) sleep_forever();
      usleep((useconds_t)startup_ms * 1000);
    }
    for (int i = 0; progress_count < 0 || i < progress_count; ++i) {
      char rec[96];
      int n = snprintf(rec, sizeof(rec), "{\"iteration\": %d, \"loss\": %.4f}\n", i + 1,
                       10.0 / (i + 2));
      if (fd >= 0 && write(fd, rec, (size_t)n) != n) return 71;
      usleep((useconds_t)progress_ms * 1000);
    }
    if (sleep_ms > 0) return exit_code;
    sleep_forever();
  }
  if (exit_rank >= 0) {
    if (atoi(rank) == exit_rank) return exit_code;
    sleep_forever();
  }
  if (sleep_ms > 0) usleep((useconds_t)sleep_ms * 1000);
  if (sleep_ms == 0) sleep_forever();
  return exit_code;
}
