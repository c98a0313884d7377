/* mpi_allreduce_bench: the Open MPI reference for gloo_allreduce_bench. The same
 * loop, the same sizes and the same JSON lines, over
 * MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD).
 *
 *   mpirun -np N mpi_allreduce_bench [--sizes-mb 1,4,16,64,256] [--iters N[,N...]]
 *                                    [--warmup N[,N...]]
 *
 * Per size (MB = 2^20 bytes of float32): MPI_Barrier, `warmup` untimed all-reduces
 * (at least one; the first is verified: every element must equal the sum over ranks
 * of rank+1), the buffer is zeroed, MPI_Barrier, then `iters` timed all-reduces back
 * to back. Each rank takes the median of its per-operation times (MPI_Wtime); the
 * reported time is the maximum of the ranks' medians (MPI_Allreduce with MPI_MAX).
 * Rank 0 prints one JSON line per size:
 *   {"impl":"mpi","op":"allreduce","ranks":n,"bytes":B,"iters":k,"time_us":t,
 *    "mean_us":m,"algbw_GBps":B/t,"busbw_GBps":algbw*2(n-1)/n}
 * Which transport Open MPI uses (shared memory or TCP) is the launcher's choice
 * (mpirun --mca ...); this program does not know. Errors abort the job with a message
 * on stderr (MPI's default error handler aborts on its own errors). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 64

struct args {
  double sizes_mb[MAX_SIZES];
  int n_sizes;
  long iters[MAX_SIZES];
  int n_iters;
  long warmup[MAX_SIZES];
  int n_warmup;
};

/* Comma-separated numbers into out[]; 0 on a malformed list or a value below
 * min_value. */
static int parse_doubles(const char *text, double *out, int *n, double min_value) {
  char *copy = strdup(text), *save = NULL;
  int ok = 1;
  *n = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *end = NULL;
    double v = strtod(tok, &end);
    if (*end != '\0' || v < min_value || *n >= MAX_SIZES) {
      ok = 0;
      break;
    }
    out[(*n)++] = v;
  }
  free(copy);
  return ok && *n > 0;
}

static int parse_longs(const char *text, long *out, int *n, long min_value) {
  double tmp[MAX_SIZES];
  if (!parse_doubles(text, tmp, n, (double)min_value)) return 0;
  for (int i = 0; i < *n; ++i) {
    out[i] = (long)tmp[i];
    if ((double)out[i] != tmp[i]) return 0;
  }
  return 1;
}

static int parse_args(int argc, char **argv, struct args *a) {
  const double sizes[] = {1, 4, 16, 64, 256};
  a->n_sizes = 5;
  memcpy(a->sizes_mb, sizes, sizeof(sizes));
  a->iters[0] = 20;
  a->n_iters = 1;
  a->warmup[0] = 3;
  a->n_warmup = 1;
  for (int i = 1; i < argc; ++i) {
    const char *flag = argv[i];
    if (i + 1 >= argc) {
      fprintf(stderr, "mpi_allreduce_bench: %s needs a value\n", flag);
      return 0;
    }
    const char *v = argv[++i];
    int ok;
    if (strcmp(flag, "--sizes-mb") == 0) {
      ok = parse_doubles(v, a->sizes_mb, &a->n_sizes, 1e-9);
    } else if (strcmp(flag, "--iters") == 0) {
      ok = parse_longs(v, a->iters, &a->n_iters, 1);
    } else if (strcmp(flag, "--warmup") == 0) {
      ok = parse_longs(v, a->warmup, &a->n_warmup, 0);
    } else {
      fprintf(stderr, "mpi_allreduce_bench: unknown flag %s\n", flag);
      return 0;
    }
    if (!ok) {
      fprintf(stderr, "mpi_allreduce_bench: bad value for %s: \"%s\"\n", flag, v);
      return 0;
    }
  }
  if ((a->n_iters != 1 && a->n_iters != a->n_sizes) ||
      (a->n_warmup != 1 && a->n_warmup != a->n_sizes)) {
    fprintf(stderr, "mpi_allreduce_bench: --iters/--warmup need 1 or %d values\n", a->n_sizes);
    return 0;
  }
  return 1;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static double median(double *v, long n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  struct args a;
  if (!parse_args(argc, argv, &a)) {
    if (rank == 0) {
      fprintf(stderr,
              "usage: mpi_allreduce_bench [--sizes-mb 1,4,16,64,256] [--iters N[,N...]]\n"
              "         [--warmup N[,N...]]\n");
    }
    MPI_Finalize();
    return 2;
  }

  for (int si = 0; si < a.n_sizes; ++si) {
    const size_t bytes = (size_t)(a.sizes_mb[si] * 1024 * 1024) / 4 * 4;
    const size_t n = bytes / sizeof(float);
    const long iters = a.n_iters == 1 ? a.iters[0] : a.iters[si];
    long warmup = a.n_warmup == 1 ? a.warmup[0] : a.warmup[si];
    if (warmup < 1) warmup = 1;
    if (n > (size_t)2147483647) {
      fprintf(stderr, "mpi_allreduce_bench: %zu elements exceed MPI's int count\n", n);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    float *data = malloc(n * sizeof(float));
    double *us = malloc((size_t)iters * sizeof(double));
    if (data == NULL || us == NULL) {
      fprintf(stderr, "mpi_allreduce_bench: rank %d: out of memory for %zu bytes\n", rank, bytes);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* Rank-dependent small integers: the sum is exact in float32. */
    for (size_t i = 0; i < n; ++i) data[i] = (float)(rank + 1);
    const float want = (float)(size * (size + 1) / 2);

    MPI_Barrier(MPI_COMM_WORLD);
    for (long w = 0; w < warmup; ++w) {
      MPI_Allreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (w == 0) {
        for (size_t i = 0; i < n; ++i) {
          if (data[i] != want) {
            fprintf(stderr,
                    "mpi_allreduce_bench: rank %d: allreduce of %zu bytes: element %zu is %g, "
                    "expected %g\n",
                    rank, bytes, i, data[i], want);
            MPI_Abort(MPI_COMM_WORLD, 1);
          }
        }
        memset(data, 0, n * sizeof(float));
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);

    const double t_all = MPI_Wtime();
    for (long it = 0; it < iters; ++it) {
      const double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      us[it] = (MPI_Wtime() - t0) * 1e6;
    }
    double mean = (MPI_Wtime() - t_all) * 1e6 / (double)iters;
    double t = median(us, iters);
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &mean, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
      const double algbw = (double)bytes / (t * 1e-6) / 1e9;
      const double busbw = algbw * 2.0 * (size - 1) / size;
      printf("{\"impl\":\"mpi\",\"op\":\"allreduce\",\"ranks\":%d,\"bytes\":%zu,\"iters\":%ld,"
             "\"time_us\":%.1f,\"mean_us\":%.1f,\"algbw_GBps\":%.4f,\"busbw_GBps\":%.4f}\n",
             size, bytes, iters, t, mean, algbw, busbw);
      fflush(stdout);
    }
    free(us);
    free(data);
  }
  MPI_Finalize();
  return 0;
}
