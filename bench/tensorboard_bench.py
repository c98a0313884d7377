#!/usr/bin/python3
"""What TensorBoard event files cost gpt-rank: tokens/s with training.tensorboard_dir
on and off, the same job (configs/tiny.json, one rank, 2 threads, no checkpoints, no
evaluation, log_interval 1 and tensorboard_log_interval 1: events every iteration,
the most TensorBoard can write), run as --pairs interleaved off/on pairs so drift in
the machine's load hits both alike. Throughput per run: the median of the per-iteration
tokens/s in metrics.jsonl after --warmup; the figure is the median over pairs of
(on - off) / off.

On a shared 2-core machine that difference is mostly noise, so the driver also runs
bench/tensorboard/tensorboard_write_bench.cc (the writes of one iteration: 14 events
serialized, CRC'd, one pwrite per batch, to a real file), whose microseconds over
the fastest measured iteration bound the cost independently of that noise.

Every child has a deadline and is killed by PID on timeout, error or Ctrl-C; the temp
dir is removed.

  /usr/bin/python3 bench/tensorboard_bench.py --build build-nocuda --pairs 5 --iters 12 --warmup 3
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import log, run_ranks, wait_idle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_job(gpt_rank, tmp, tag, tensorboard, iters, timeout):
    """One training run; returns its per-iteration tokens/s and the event file size."""
    metrics = os.path.join(tmp, tag + ".jsonl")
    tb_dir = os.path.join(tmp, tag + "-tb") if tensorboard else ""
    sets = [
        "training.train_iters=%d" % iters, "training.save=", "training.eval_iters=0",
        "training.log_interval=1", "training.tensorboard_log_interval=1",
        "training.metrics_file=" + metrics, "training.tensorboard_dir=" + tb_dir,
        "training.threads=2", "training.lr_warmup_iters=1",
    ]
    argv = [gpt_rank, "train", "--config", os.path.join(ROOT, "configs/tiny.json")]
    for s in sets:
        argv += ["--set", s]
    run_ranks(argv, 1, 2, tmp, tag, timeout)
    with open(metrics) as f:
        tps = [json.loads(line)["tokens_per_s"] for line in f if line.strip()]
    size = 0
    if tensorboard:
        files = os.listdir(tb_dir)
        if len(files) != 1:
            sys.exit("expected one event file in %s, found %s" % (tb_dir, files))
        size = os.path.getsize(os.path.join(tb_dir, files[0]))
    return tps, size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build dir with bin/gpt-rank")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=12, help="measured iterations per run")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--wait-idle", type=float, default=0,
                    help="before each run, wait up to this many s for the 1-minute load < 1.5")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    gpt_rank = os.path.join(args.build, "bin", "gpt-rank")
    writer = os.path.join(args.build, "bin", "tensorboard_write_bench")
    for exe in (gpt_rank, writer):
        if not os.path.exists(exe):
            sys.exit("no %s: build first (scripts/build.sh)" % exe)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="tb-bench-")
    off, on, diffs, ms = [], [], [], []
    try:
        for pair in range(args.pairs):
            results = {}
            for tensorboard in ((False, True) if pair % 2 == 0 else (True, False)):
                tag = "p%d-%s" % (pair, "on" if tensorboard else "off")
                load = wait_idle(args.wait_idle, 1.5)[0]
                tps, size = run_job(gpt_rank, tmp, tag, tensorboard, args.warmup + args.iters,
                                    args.timeout)
                results[tensorboard] = statistics.median(tps[args.warmup:])
                log("%s: %.1f tokens/s (load before: %.2f)%s" %
                    (tag, results[tensorboard], load,
                     ", event file %d bytes" % size if tensorboard else ""))
            off.append(results[False])
            on.append(results[True])
            diffs.append((results[True] - results[False]) / results[False])
            ms.append(1000.0 * 2048 / max(results.values()))  # tiny: 8 x 256 tokens per iteration
        w = json.loads(subprocess.run([writer, "20000"], check=True, capture_output=True,
                                      text=True, timeout=args.timeout).stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    iteration_ms = min(ms)  # the fastest run: where the writes weigh most
    out = {
        "pairs": args.pairs,
        "tokens_per_s_off": statistics.median(off),
        "tokens_per_s_on": statistics.median(on),
        "difference_median": statistics.median(diffs),
        "differences": diffs,
        "iteration_ms": iteration_ms,
        "writer_us_per_iteration": w["us_per_iteration"],
        "writer_bytes_per_iteration": w["bytes_per_iteration"],
        "writer_share": w["us_per_iteration"] / 1000.0 / iteration_ms,
    }
    print("tokens/s off %.1f, on %.1f (medians of %d pairs); on vs off: %+.2f%% "
          "(per pair: %s)" % (out["tokens_per_s_off"], out["tokens_per_s_on"], args.pairs,
                              100 * out["difference_median"],
                              " ".join("%+.2f%%" % (100 * d) for d in diffs)))
    print("event writes: %.1f us and %.0f bytes per iteration = %.4f%% of a %.0f ms iteration"
          % (out["writer_us_per_iteration"], out["writer_bytes_per_iteration"],
             100 * out["writer_share"], iteration_ms))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
