// gloo_allreduce_bench: bus bandwidth of gpt_rank::dist::GlooCommunicator, the CPU
// backend's communicator, as nccl-tests' all_reduce_perf reports it. One process per
// rank; driven by bench/allreduce_bench.py, which also runs mpi_allreduce_bench (the
// same loop over MPI_Allreduce) so the two can be compared line for line.
//
//   gloo_allreduce_bench [--op allreduce|reduce_scatter_allgather]
//                        [--sizes-mb 1,4,16,64,256] [--iters 20[,20,...]]
//                        [--warmup 3[,...]]
//
// Rank, world size and the rendezvous come from the environment (RankEnv:
// RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, or mpirun's OMPI_COMM_WORLD_*), and the
// ranks join through ProcessGroup::Init exactly as gpt-rank does.
//
// Per size (MB = 2^20 bytes of float32): a barrier, `warmup` untimed operations (at
// least one; the first is verified: every element must equal the sum over ranks of
// rank+1), the buffer is zeroed (so that repeated in-place sums stay finite), then
// `iters` timed operations back to back with nothing in between. Each rank takes the
// median of its per-operation times; the reported time is the maximum of the ranks'
// medians (mean_us: the same for the whole timed loop divided by iters).
//   op allreduce                 comm.AllReduceSum(float*, n)
//   op reduce_scatter_allgather  comm.ReduceScatterSum + comm.AllGather with
//                                EvenCounts(n, size): ZeRO's gradient all-reduce
// Rank 0 prints one JSON line per size on stdout:
//   {"impl":"gloo","op":...,"ranks":n,"bytes":B,"iters":k,"time_us":t,"mean_us":m,
//    "algbw_GBps":B/t,"busbw_GBps":algbw*2(n-1)/n}
// (GB = 1e9 bytes; busbw is the figure comparable across rank counts, as in
// nccl-tests.) Exit status 1 with a message on stderr on any error.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/dist/process_group.h"
#include "trainer/dist/rank_env.h"

namespace {

using gpt_rank::dist::Communicator;

struct Args {
  std::string op = "allreduce";
  std::vector<double> sizes_mb{1, 4, 16, 64, 256};
  std::vector<long> iters{20};   // one value, or one per size
  std::vector<long> warmup{3};
};

// Comma-separated positive numbers.
bool ParseList(const char* text, std::vector<double>* out) {
  out->clear();
  std::string s(text);
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, comma - pos);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(v > 0)) return false;
    out->push_back(v);
    pos = comma + 1;
  }
  return !out->empty();
}

// Comma-separated integers >= min_value.
bool ParseCounts(const char* text, std::vector<long>* out, long min_value) {
  out->clear();
  std::string s(text);
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, comma - pos);
    char* end = nullptr;
    const long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || n < min_value) return false;
    out->push_back(n);
    pos = comma + 1;
  }
  return !out->empty();
}

void Usage() {
  std::fprintf(stderr,
               "usage: gloo_allreduce_bench [--op allreduce|reduce_scatter_allgather]\n"
               "         [--sizes-mb 1,4,16,64,256] [--iters N[,N...]] [--warmup N[,N...]]\n"
               "  --iters / --warmup: one count for every size, or one per size\n");
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") return false;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "gloo_allreduce_bench: %s needs a value\n", flag.c_str());
      return false;
    }
    const char* v = argv[++i];
    bool ok = true;
    if (flag == "--op") {
      a->op = v;
      ok = a->op == "allreduce" || a->op == "reduce_scatter_allgather";
    } else if (flag == "--sizes-mb") {
      ok = ParseList(v, &a->sizes_mb);
    } else if (flag == "--iters") {
      ok = ParseCounts(v, &a->iters, 1);
    } else if (flag == "--warmup") {
      ok = ParseCounts(v, &a->warmup, 0);
    } else {
      std::fprintf(stderr, "gloo_allreduce_bench: unknown flag %s\n", flag.c_str());
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "gloo_allreduce_bench: bad value for %s: \"%s\"\n", flag.c_str(), v);
      return false;
    }
  }
  for (const auto* counts : {&a->iters, &a->warmup}) {
    if (counts->size() != 1 && counts->size() != a->sizes_mb.size()) {
      std::fprintf(stderr, "gloo_allreduce_bench: --iters/--warmup need 1 or %zu values\n",
                   a->sizes_mb.size());
      return false;
    }
  }
  return true;
}

long CountFor(const std::vector<long>& counts, size_t i) {
  return counts.size() == 1 ? counts[0] : counts[i];
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One timed operation: all-reduce, or ZeRO's reduce-scatter + all-gather.
coord::Status RunOp(Communicator& comm, const std::string& op, float* data, size_t n,
                    const std::vector<size_t>& counts) {
  if (op == "allreduce") return comm.AllReduceSum(data, n);
  coord::Status s = comm.ReduceScatterSum(data, counts, gpt_rank::dist::DataType::kFloat32);
  if (!s.ok()) return s;
  return comm.AllGather(data, counts, gpt_rank::dist::DataType::kFloat32);
}

// The maximum of one double over ranks: AllGather of one element per rank.
coord::StatusOr<double> MaxOverRanks(Communicator& comm, double v) {
  std::vector<double> all(comm.size(), 0.0);
  all[comm.rank()] = v;
  std::vector<size_t> ones(comm.size(), 1);
  coord::Status s = comm.AllGather(all.data(), ones, gpt_rank::dist::DataType::kFloat64);
  if (!s.ok()) return s;
  return *std::max_element(all.begin(), all.end());
}

int Fail(int rank, const std::string& what, const coord::Status& s) {
  std::fprintf(stderr, "gloo_allreduce_bench: rank %d: %s: %s\n", rank, what.c_str(),
               s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    Usage();
    return 2;
  }
  auto env = gpt_rank::dist::DiscoverRankEnv();
  if (!env.ok()) return Fail(-1, "rank environment", env.status());
  gpt_rank::dist::ProcessGroupOptions options;
  options.rendezvous_timeout = std::chrono::seconds(60);
  options.collective_timeout = std::chrono::seconds(120);
  auto pg = gpt_rank::dist::ProcessGroup::Init(*env, options);
  if (!pg.ok()) return Fail(env->rank, "process group", pg.status());
  Communicator& comm = (*pg)->comm();
  const int rank = comm.rank(), size = comm.size();

  for (size_t si = 0; si < args.sizes_mb.size(); ++si) {
    const size_t bytes = static_cast<size_t>(args.sizes_mb[si] * 1024 * 1024) / 4 * 4;
    const size_t n = bytes / sizeof(float);
    const long iters = CountFor(args.iters, si), warmup = CountFor(args.warmup, si);
    const std::vector<size_t> counts = gpt_rank::dist::EvenCounts(n, size);
    // Rank-dependent small integers: the sum is exact in float32.
    std::vector<float> data(n, static_cast<float>(rank + 1));
    const float want = static_cast<float>(size * (size + 1) / 2);

    coord::Status s = comm.Barrier();
    if (!s.ok()) return Fail(rank, "barrier", s);
    for (long w = 0; w < std::max(warmup, 1L); ++w) {
      s = RunOp(comm, args.op, data.data(), n, counts);
      if (!s.ok()) return Fail(rank, args.op + " (warm-up)", s);
      if (w == 0) {
        for (size_t i = 0; i < n; ++i) {
          if (data[i] != want) {
            std::fprintf(stderr,
                         "gloo_allreduce_bench: rank %d: %s of %zu bytes: element %zu is %g, "
                         "expected %g\n",
                         rank, args.op.c_str(), bytes, i, data[i], want);
            return 1;
          }
        }
        std::fill(data.begin(), data.end(), 0.0f);
      }
    }
    s = comm.Barrier();
    if (!s.ok()) return Fail(rank, "barrier", s);

    std::vector<double> us(static_cast<size_t>(iters));
    const auto t_all = std::chrono::steady_clock::now();
    for (long it = 0; it < iters; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      s = RunOp(comm, args.op, data.data(), n, counts);
      const auto t1 = std::chrono::steady_clock::now();
      if (!s.ok()) return Fail(rank, args.op, s);
      us[it] = std::chrono::duration<double, std::micro>(t1 - t0).count();
    }
    const double mean_local =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t_all)
            .count() / static_cast<double>(iters);

    auto t = MaxOverRanks(comm, Median(us));
    if (!t.ok()) return Fail(rank, "gathering times", t.status());
    auto mean = MaxOverRanks(comm, mean_local);
    if (!mean.ok()) return Fail(rank, "gathering times", mean.status());
    if (rank == 0) {
      const double algbw = static_cast<double>(bytes) / (*t * 1e-6) / 1e9;
      const double busbw = algbw * 2.0 * (size - 1) / size;
      std::printf(
          "{\"impl\":\"gloo\",\"op\":\"%s\",\"ranks\":%d,\"bytes\":%zu,\"iters\":%ld,"
          "\"time_us\":%.1f,\"mean_us\":%.1f,\"algbw_GBps\":%.4f,\"busbw_GBps\":%.4f}\n",
          args.op.c_str(), size, bytes, iters, *t, *mean, algbw, busbw);
      std::fflush(stdout);
    }
  }
  return 0;
}
