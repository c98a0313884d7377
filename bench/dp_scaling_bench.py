#!/usr/bin/python3
"""Data-parallel efficiency of gpt-rank on one machine: the same job (configs/tiny.json,
global batch 16 = 2 micro-batches of 8 at one rank, 1 per rank at two) trained by

  1x2  one rank, 2 OpenMP threads   (all cores, one process: the baseline to beat)
  1x1  one rank, 1 thread
  2x1  two ranks, 1 thread each, gloo over loopback, for ZeRO stages 0, 1 and 2

Throughput is global tokens per second of rank 0 (metrics.jsonl: tokens_per_s of
each iteration, median of the measured ones after --warmup). Scaling efficiency
= tokens/s(2x1) / (2 * tokens/s(1x1)), the classic definition; the ratio to 1x2 says
whether two ranks use the same two cores better or worse than threads do.

No checkpoints, no evaluation. Every child has a deadline and is killed by PID on
timeout, error or Ctrl-C; the temp dir is removed.

  /usr/bin/python3 bench/dp_scaling_bench.py --build build --iters 6 --warmup 2
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run_ranks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_job(gpt_rank, tmp, tag, world, threads, zero, iters, timeout):
    """Trains `world` ranks; returns rank 0's per-iteration tokens/s."""
    metrics = os.path.join(tmp, tag + ".jsonl")
    sets = [
        "training.train_iters=%d" % iters, "training.global_batch_size=16",
        "training.micro_batch_size=8", "training.save=", "training.eval_iters=0",
        "training.log_interval=1", "training.metrics_file=" + metrics,
        "training.threads=%d" % threads, "zero_optimization.stage=%d" % zero,
        "training.lr_warmup_iters=1",
    ]
    argv = [gpt_rank, "train", "--config", os.path.join(ROOT, "configs/tiny.json")]
    for s in sets:
        argv += ["--set", s]
    run_ranks(argv, world, threads, tmp, tag, timeout)
    with open(metrics) as f:
        return [json.loads(line)["tokens_per_s"] for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--iters", type=int, default=6, help="measured iterations")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    gpt_rank = os.path.join(args.build, "bin", "gpt-rank")
    if not os.path.exists(gpt_rank):
        sys.exit("no %s: build first (scripts/build.sh)" % gpt_rank)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="dp-bench-")
    runs = [("1x2", 1, 2, 0), ("1x1", 1, 1, 0), ("2x1 zero0", 2, 1, 0), ("2x1 zero1", 2, 1, 1),
            ("2x1 zero2", 2, 1, 2)]
    results = {}
    try:
        for tag, world, threads, zero in runs:
            tps = run_job(gpt_rank, tmp, tag.replace(" ", "-"), world, threads, zero,
                          args.warmup + args.iters, args.timeout)
            results[tag] = statistics.median(tps[args.warmup:])
            print("%-10s %8.1f tokens/s  (iterations: %s)" %
                  (tag, results[tag], " ".join("%.0f" % t for t in tps)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base1, base2 = results["1x1"], results["1x2"]
    print("\n%-10s %10s %12s %10s" % ("run", "tokens/s", "efficiency", "vs 1x2"))
    for tag in results:
        world = int(tag[0])
        eff = results[tag] / (world * base1)
        print("%-10s %10.1f %11.1f%% %9.2fx" % (tag, results[tag], 100 * eff, results[tag] / base2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
