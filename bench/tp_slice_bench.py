#!/usr/bin/python3
"""The 2-layer slice of the 100B GPT (configs/100B-slice.json: hidden 4096, 32 heads,
GPT-2 vocabulary, about 0.6 B parameters) trained on this machine's CPUs in the
layouts the 100B run uses, each beside what `gpt-rank plan` predicts for it:

  TP1           one rank, all cores (the baseline)
  TP2           two tensor-parallel ranks, one core each
  TP2xDP2 Z3    tensor parallel 2 x data parallel 2, ZeRO-3, the optimizer on the CPU
                (4 ranks on the machine's cores: oversubscribed on 2 cores), with
                DeepSpeed's stage-3 defaults: gathers prefetched, overlap_comm on
  Z3 in-line    the same without prefetch and overlap_comm (every collective on the
                training thread); its losses must equal the overlapped run's bitwise

Per run: global tokens/s (median of the measured iterations after --warmup), the
time per iteration broken out by gpt-rank's Megatron timers (forward-backward,
optimizer, tp-comm, dp-comm; the collectives are inside the other two where they run
on the training thread), the peak resident memory of every rank (ru_maxrss from
wait4) against the plan's per-rank figure, and the plan's own time model (a GPU
roofline, so only the memory columns compare on a CPU).

Every child is killed by PID on timeout, error or Ctrl-C; the temp dir is removed.

  /usr/bin/python3 bench/tp_slice_bench.py --build build --iters 3 --warmup 1
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
from benchlib import loadavg, run_ranks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIG = os.path.join(ROOT, "configs", "100B-slice.json")
MIB = 1024.0 * 1024.0

# tag, world, tp, zero stage, threads per rank, extra --set values
IN_LINE = ["zero_optimization.overlap_comm=false", "zero_optimization.stage3_prefetch_bucket_size=0"]
RUNS = [("TP1", 1, 1, 0, 2, []), ("TP2", 2, 2, 0, 1, []), ("TP2xDP2 Z3", 4, 2, 3, 1, []),
        ("Z3 in-line", 4, 2, 3, 1, IN_LINE)]


def sets_for(tmp, tag, tp, zero, threads, iters, extra=()):
    return list(extra) + [
        "training.train_iters=%d" % iters, "training.save=", "training.load=",
        "training.eval_iters=0", "training.log_interval=1",
        "training.metrics_file=" + os.path.join(tmp, tag + ".jsonl"),
        "training.threads=%d" % threads, "zero_optimization.stage=%d" % zero,
        "parallel.tensor_model_parallel_size=%d" % tp,
        "training.lr_warmup_iters=1",  # the runs are a few iterations long
    ]


def plan(gpt_rank, tmp, world, tp, zero, threads, iters, extra):
    argv = [gpt_rank, "plan", "--config", CONFIG, "--nodes", "1", "--gpus-per-node",
            str(world), "--json"]
    for s in sets_for(tmp, "plan", tp, zero, threads, iters, extra) + ["training.device=cpu"]:
        argv += ["--set", s]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if out.returncode not in (0, 1):  # 1: does not fit, still a plan
        sys.exit("plan failed:\n" + out.stderr[-2000:])
    return json.loads(out.stdout)


def train(gpt_rank, tmp, tag, world, tp, zero, threads, iters, timeout, extra):
    """Returns (metrics records, peak RSS in bytes per rank)."""
    argv = [gpt_rank, "train", "--config", CONFIG]
    for s in sets_for(tmp, tag, tp, zero, threads, iters, extra):
        argv += ["--set", s]
    peaks = run_ranks(argv, world, threads, tmp, tag, timeout)
    with open(os.path.join(tmp, tag + ".jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()], peaks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--iters", type=int, default=3, help="measured iterations")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--only", help="comma-separated run tags (default: all)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    gpt_rank = os.path.join(args.build, "bin", "gpt-rank")
    if not os.path.exists(gpt_rank):
        sys.exit("no %s: build first (scripts/build.sh)" % gpt_rank)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="tp-slice-bench-")
    runs = [r for r in RUNS if not args.only or r[0] in args.only.split(",")]
    results = {}
    print("load average at start: %s" % " ".join("%.2f" % x for x in loadavg()), flush=True)
    try:
        for tag, world, tp, zero, threads, extra in runs:
            p = plan(gpt_rank, tmp, world, tp, zero, threads, args.warmup + args.iters, extra)
            records, peaks = train(gpt_rank, tmp, tag.replace(" ", "-"), world, tp, zero, threads,
                                   args.warmup + args.iters, args.timeout, extra)
            measured = records[args.warmup:]
            timers = {k: statistics.median(r["timers_ms"][k] for r in measured)
                      for k in measured[0]["timers_ms"]}
            res = {
                "tokens_per_s": statistics.median(r["tokens_per_s"] for r in measured),
                "ms_per_iter": statistics.median(r["elapsed_ms"] for r in measured),
                "timers_ms": timers,
                "peak_rss_mib": [b / MIB for b in peaks],
                "plan_rank_mib": p["per_rank_bytes"]["total"] / MIB,
                "plan_time_s": p.get("time_s", {}).get("total"),
                "losses": [r["lm_loss"] for r in records],
            }
            results[tag] = res
            print("%-11s %7.1f tokens/s  %8.0f ms/iter  %s  peak RSS %s MiB (plan %.0f)" % (
                tag, res["tokens_per_s"], res["ms_per_iter"],
                " ".join("%s %.0f" % kv for kv in timers.items()),
                "/".join("%.0f" % m for m in res["peak_rss_mib"]), res["plan_rank_mib"]),
                flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("load average at end: %s" % " ".join("%.2f" % x for x in loadavg()))
    base = results.get("TP1", {}).get("tokens_per_s")
    print("\n| run | tokens/s | vs TP1 | ms/iter | forward-backward | optimizer | tp-comm | "
          "dp-comm | peak RSS per rank (MiB) | plan per rank (MiB) | max deviation |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for tag, r in results.items():
        t = r["timers_ms"]
        dev = max(abs(m - r["plan_rank_mib"]) / r["plan_rank_mib"] for m in r["peak_rss_mib"])
        print("| %s | %.1f | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.0f | %.1f%% |" % (
            tag, r["tokens_per_s"], "%.2fx" % (r["tokens_per_s"] / base) if base else "-",
            r["ms_per_iter"], t["forward-backward"], t["optimizer"], t["tp-comm"], t["dp-comm"],
            " / ".join("%.0f" % m for m in r["peak_rss_mib"]), r["plan_rank_mib"], 100 * dev))
    if "TP2xDP2 Z3" in results and "Z3 in-line" in results:
        same = results["TP2xDP2 Z3"]["losses"] == results["Z3 in-line"]["losses"]
        print("\nZeRO-3 prefetch + overlap_comm against in-line: losses %s" %
              ("bitwise equal" if same else "DIFFER: %s vs %s" % (
                  results["TP2xDP2 Z3"]["losses"], results["Z3 in-line"]["losses"])))
        if not same:
            sys.exit(1)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
