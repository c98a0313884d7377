#!/usr/bin/python3
"""All-reduce bus bandwidth: gpt-rank's gloo communicator against Open MPI, side by side.

For each rank count (--ranks) and message size (--sizes-mb, MB = 2^20 bytes of
float32) four variants run on this machine, one after the other, in the same loop
(warm-up, first result verified, then back-to-back timed operations; the time of a
size is the maximum over ranks of each rank's median operation time):

  gloo        bin/gloo_allreduce_bench: GlooCommunicator::AllReduceSum (gloo's ring
              all-reduce over TCP), N processes started here with RANK, WORLD_SIZE,
              LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free
              MASTER_PORT, joining through ProcessGroup::Init as gpt-rank does.
  gloo RS+AG  the same program with --op reduce_scatter_allgather:
              ReduceScatterSum + AllGather with EvenCounts (ZeRO's gradient path).
  MPI (shm)   `mpirun -np N bin/mpi_allreduce_bench`: MPI_Allreduce(MPI_IN_PLACE,
              MPI_FLOAT, MPI_SUM) with Open MPI's own choice of transport (on one node
              that is pml ob1 + the vader shared-memory BTL, CMA single copy).
  MPI (tcp)   the same, forced onto gloo's transport: --mca pml ob1 --mca btl
              tcp,self --mca btl_tcp_if_include lo (TCP over loopback).

mpirun gets --allow-run-as-root --oversubscribe --bind-to none (gloo's ranks are not
bound either). OMP_NUM_THREADS=1 everywhere.

malloc: every rank of every variant runs with GLIBC_TUNABLES=--malloc-tunables
(default: mmap_threshold and trim_threshold 1 GiB, i.e. large blocks come from the
heap and freed memory stays there). Open MPI's MPI_Allreduce mallocs and frees a
temporary buffer as large as the message on every call; glibc serves blocks above
its 32 MiB maximum dynamic mmap threshold with a fresh mmap and gives them back with
munmap, so every call faults in all the pages again, which on a VM with costly page
faults makes MPI 10x slower from 64 MB on. gloo allocates at most 2 MiB per call
and is not affected. --malloc-tunables '' runs with glibc's defaults. bus bandwidth = bytes / time *
2(N-1)/N (nccl-tests' busBw; GB = 1e9 bytes), the figure that compares across rank
counts; the ratios are gloo's AllReduceSum busbw over MPI's, measured in this run.
With --repeats R every variant is run R times, interleaved (rep 1 of everything,
then rep 2, ...), and the median time over the repeats is reported.

The script builds nothing: pass the build dir that holds bin/gloo_allreduce_bench
and bin/mpi_allreduce_bench (cmake --build B --target gloo_allreduce_bench
mpi_allreduce_bench). Python 3 standard library only. Every launch has a deadline
(--timeout); on a timeout, an error or Ctrl-C what it started (and their
descendants) is killed by PID, and its temp dir is removed.

  /usr/bin/python3 bench/allreduce_bench.py --build build --ranks 2,4 \\
      --sizes-mb 1,4,16,64,256 --repeats 3 --wait-idle 300 --json /tmp/allreduce_bench.json
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (log, loadavg, wait_idle, free_port, tail, descendants,  # noqa: E402
                      OtherLoad)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MPIRUN_COMMON = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
MPI_TCP = ["--mca", "pml", "ob1", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo"]
# (key, column title): the variants, in run order.
VARIANTS = [("gloo", "gloo"), ("gloo_rsag", "gloo RS+AG"), ("mpi_shm", "MPI (shm)"),
            ("mpi_tcp", "MPI (tcp)")]
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"
OUR_COMMS = ("gloo_allreduce_", "mpi_allreduce_b", "mpirun", "orted", "prterun")


class BenchError(Exception):
    pass


def default_iters(mb):
    """Timed operations per size: ~128 MB of traffic per size, between 3 and 20."""
    return max(3, min(20, round(128 / mb)))


def default_warmup(mb):
    return 2 if mb <= 16 else 1


def parse_counts(text, sizes, default):
    """'' -> default(size) per size; 'N' -> N for all; 'a,b,...' -> one per size."""
    if not text:
        return [default(mb) for mb in sizes]
    vals = [int(x) for x in text.split(",")]
    if len(vals) == 1:
        return vals * len(sizes)
    if len(vals) != len(sizes):
        raise ValueError(f"{text!r}: give 1 or {len(sizes)} counts (one per size)")
    return vals


# ---------------------------------------------------------------- processes


class Children:
    """The processes this script started; everything is killed by PID."""

    def __init__(self):
        self.procs = []

    def start(self, argv, env, out_path, err_path):
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err, close_fds=True, start_new_session=True)
        p.err_path = err_path
        self.procs.append(p)
        return p

    def kill(self, procs):
        """SIGTERM to procs (mpirun passes it on to its ranks and reaps them); after
        3 s SIGKILL to whatever is left, their descendants first. All by PID."""
        live = [p for p in procs if p.poll() is None]
        if not live:
            return
        pids = descendants([p.pid for p in live]) + [p.pid for p in live]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in (pids if sig == signal.SIGKILL else [p.pid for p in live]):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for p in live:
                    p.poll()  # reaps our own children
                if all(_gone(pid) for pid in pids):
                    break
                time.sleep(0.02)
            if all(_gone(pid) for pid in pids):
                break
        for p in live:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                log(f"warning: pid {p.pid} did not exit after SIGKILL")

    def wait(self, procs, timeout, what):
        """Until all exit 0; kills the rest on the first failure or at the deadline."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                codes = [p.poll() for p in procs]
                bad = [(p, c) for p, c in zip(procs, codes) if c not in (None, 0)]
                if bad:
                    p, c = bad[0]
                    raise BenchError(f"{what}: pid {p.pid} exited with {c}:\n{tail(p.err_path)}")
                if all(c == 0 for c in codes):
                    return
                if time.monotonic() > deadline:
                    raise BenchError(f"{what}: not done after {timeout} s; killed:\n"
                                     f"{tail(procs[0].err_path)}")
                time.sleep(0.02)
        finally:
            self.kill(procs)
            for p in procs:
                self.procs.remove(p)

    def kill_all(self):
        self.kill(self.procs)
        self.procs = []


def _gone(pid):
    """True if pid has exited (no longer exists, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rfind(")") + 2] in "ZX"
    except OSError:
        return True


# ---------------------------------------------------------------- runs


def read_lines(path, impl, n_sizes, what):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    if len(rows) != n_sizes or any(r["impl"] != impl for r in rows):
        raise BenchError(f"{what}: expected {n_sizes} {impl} lines in {path}, got {len(rows)}")
    return rows


def bench_args(args):
    return ["--sizes-mb", ",".join(str(s) for s in args.sizes),
            "--iters", ",".join(str(i) for i in args.iters),
            "--warmup", ",".join(str(w) for w in args.warmup)]


def rank_env(args, **extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    for k in list(env):
        if k.startswith(("OMPI_", "PMIX_", "SLURM_")):
            del env[k]  # RankEnv must see only what is set here
    env.pop("GLIBC_TUNABLES", None)
    if args.malloc_tunables:
        env["GLIBC_TUNABLES"] = args.malloc_tunables
    return env


def run_gloo(kids, args, tmp, n, op, tag):
    port = free_port()
    procs = []
    base = rank_env(args)
    argv = [args.gloo_bin, "--op", op] + bench_args(args)
    for r in range(n):
        env = dict(base, RANK=str(r), WORLD_SIZE=str(n), LOCAL_RANK=str(r),
                   LOCAL_WORLD_SIZE=str(n), GROUP_RANK="0", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port))
        procs.append(kids.start(argv, env, os.path.join(tmp, f"{tag}.r{r}.out"),
                                os.path.join(tmp, f"{tag}.r{r}.err")))
    kids.wait(procs, args.timeout, f"gloo {op} with {n} ranks")
    return read_lines(os.path.join(tmp, f"{tag}.r0.out"), "gloo", len(args.sizes), tag)


def run_mpi(kids, args, tmp, n, tcp, tag):
    env = rank_env(args, TMPDIR=tmp)  # TMPDIR: Open MPI's session dir
    passenv = ["-x", "GLIBC_TUNABLES"] if args.malloc_tunables else []
    argv = ([args.mpirun] + MPIRUN_COMMON + (MPI_TCP if tcp else []) + passenv +
            ["-np", str(n), args.mpi_bin] + bench_args(args))
    out, err = os.path.join(tmp, f"{tag}.out"), os.path.join(tmp, f"{tag}.err")
    p = kids.start(argv, env, out, err)
    kids.wait([p], args.timeout, f"mpirun ({'tcp' if tcp else 'default'}) with {n} ranks")
    return read_lines(out, "mpi", len(args.sizes), tag)


def run_variant(kids, args, tmp, n, key, rep):
    tag = f"{key}.n{n}.rep{rep}"
    if key == "gloo":
        return run_gloo(kids, args, tmp, n, "allreduce", tag)
    if key == "gloo_rsag":
        return run_gloo(kids, args, tmp, n, "reduce_scatter_allgather", tag)
    return run_mpi(kids, args, tmp, n, key == "mpi_tcp", tag)


def busbw(nbytes, time_us, n):
    return nbytes / (time_us * 1e-6) / 1e9 * 2 * (n - 1) / n


def summarize(raw, n, key, size_index):
    """Median time over repeats -> (time_us, busbw GB/s), or None."""
    runs = raw.get((n, key), [])
    if not runs:
        return None
    times = [run[size_index]["time_us"] for run in runs]
    t = statistics.median(times)
    return t, busbw(runs[0][size_index]["bytes"], t, n)


def print_table(raw, args):
    cols = " | ".join(f"{title} busbw GB/s" for _, title in VARIANTS)
    print(f"| ranks | size | {cols} | gloo / MPI (shm) | gloo / MPI (tcp) |")
    print("|---:|---:|" + "---:|" * (len(VARIANTS) + 2))
    for n in args.ranks:
        for i, mb in enumerate(args.sizes):
            cells, bw = [], {}
            for key, _ in VARIANTS:
                s = summarize(raw, n, key, i)
                bw[key] = s[1] if s else None
                cells.append(f"{s[1]:.3f}" if s else "")
            ratio = lambda a, b: f"{bw[a] / bw[b]:.2f}x" if bw[a] and bw[b] else ""
            print(f"| {n} | {mb:g} MB | " + " | ".join(cells) +
                  f" | {ratio('gloo', 'mpi_shm')} | {ratio('gloo', 'mpi_tcp')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build dir with bin/gloo_allreduce_bench, bin/mpi_allreduce_bench")
    ap.add_argument("--ranks", default="2,4")
    ap.add_argument("--sizes-mb", default="1,4,16,64,256")
    ap.add_argument("--iters", default="",
                    help="timed operations: N for every size, or one per size "
                         "(default: ~128 MB per size, 3..20)")
    ap.add_argument("--warmup", default="",
                    help="untimed operations: N, or one per size (default 2 up to 16 MB, "
                         "then 1); at least 1, the first is verified")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of every variant (interleaved); the median time is reported")
    ap.add_argument("--variants", default=",".join(k for k, _ in VARIANTS),
                    help="subset of " + ",".join(k for k, _ in VARIANTS))
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--malloc-tunables", default=MALLOC_TUNABLES,
                    help="GLIBC_TUNABLES for every rank ('' = glibc defaults)")
    ap.add_argument("--timeout", type=int, default=300, help="per launch, seconds")
    ap.add_argument("--wait-idle", type=int, default=0,
                    help="wait up to this many seconds for 1-min load < --idle-load")
    ap.add_argument("--idle-load", type=float, default=1.0)
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    try:
        args.ranks = [int(x) for x in args.ranks.split(",")]
        args.sizes = [float(x) for x in args.sizes_mb.split(",")]
        args.iters = parse_counts(args.iters, args.sizes, default_iters)
        args.warmup = parse_counts(args.warmup, args.sizes, default_warmup)
    except ValueError as e:
        sys.exit(f"allreduce_bench: {e}")
    if any(n < 2 for n in args.ranks):
        sys.exit("allreduce_bench: --ranks must be >= 2 (bus bandwidth of 1 rank is 0)")
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - {k for k, _ in VARIANTS}
    if unknown:
        sys.exit(f"allreduce_bench: unknown variant(s) {', '.join(sorted(unknown))}")
    args.gloo_bin = os.path.join(args.build, "bin", "gloo_allreduce_bench")
    args.mpi_bin = os.path.join(args.build, "bin", "mpi_allreduce_bench")
    for b in ([args.gloo_bin] if any(v.startswith("gloo") for v in variants) else []) + \
             ([args.mpi_bin] if any(v.startswith("mpi") for v in variants) else []):
        if not os.access(b, os.X_OK):
            sys.exit(f"allreduce_bench: {b}: not executable (build the bench targets first)")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="allreduce_bench.")
    kids = Children()
    raw = {}  # (ranks, variant) -> [run rows (one dict per size)]
    results = {"machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname())},
               "ranks": args.ranks, "sizes_mb": args.sizes, "iters": args.iters,
               "warmup": args.warmup, "repeats": args.repeats,
               "malloc_tunables": args.malloc_tunables, "runs": []}
    other = OtherLoad(ignore=OUR_COMMS)
    rc = 0
    t0 = time.monotonic()
    try:
        results["loadavg_start"] = wait_idle(args.wait_idle, args.idle_load)
        other.start()
        for rep in range(args.repeats):
            for n in args.ranks:
                for key in variants:
                    t = time.monotonic()
                    rows = run_variant(kids, args, tmp, n, key, rep)
                    raw.setdefault((n, key), []).append(rows)
                    results["runs"].append({"ranks": n, "variant": key, "rep": rep,
                                            "rows": rows})
                    log(f"rep {rep + 1}/{args.repeats} {n} ranks {key}: " +
                        ", ".join(f"{r['bytes'] >> 20} MB {r['busbw_GBps']:.3f}" for r in rows) +
                        f" GB/s busbw ({time.monotonic() - t:.1f} s)")
        results["loadavg_end"] = loadavg()
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except (BenchError, OSError, ValueError) as e:
        log(f"error: {e}")
        rc = 1
    finally:
        kids.kill_all()
        other.stop_ev.set()
        shutil.rmtree(tmp, ignore_errors=True)

    if raw:
        print_table(raw, args)
        print(f"\niters per size {args.iters}, warm-up {args.warmup}, repeats {args.repeats}, "
              f"GLIBC_TUNABLES={args.malloc_tunables or '(unset)'}; "
              f"{time.monotonic() - t0:.0f} s; load average: start "
              f"{results.get('loadavg_start')}, end {results.get('loadavg_end')}")
        print(f"other load: {other.summary()}")
        results["other_load"] = other.summary()
        results["summary"] = [
            {"ranks": n, "bytes": raw[(n, k)][0][i]["bytes"], "variant": k,
             "time_us": s[0], "busbw_GBps": s[1]}
            for n in args.ranks for k in variants for i in range(len(args.sizes))
            if (n, k) in raw for s in [summarize(raw, n, k, i)]]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
