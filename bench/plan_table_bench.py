#!/usr/bin/python3
"""The ready GPU configs against the platform's published table: for each of the nine
configs in configs/ (GPT-3 125M, 1.3B and 13B shapes, DP x PP x TP), run

  gpt-rank plan --config configs/<name>.json --gpu a100-40gb --train-tokens <T> --json

on the cluster its launch section names (launch.nnodes x launch.nproc_per_node), and
print one row each: GPUs, layout, the plan's memory per GPU (the stage that needs the
most), the pipeline bubble, tokens/s, MFU, the estimated training time, and, where the
platform publishes one (125M on 2.5B tokens, 1.3B on 26B tokens, A100 40GB), the
published time and the ratio estimate / published.

Nothing is trained: the plan is arithmetic (trainer/plan, docs/plan.md), so this runs
in a second on any machine. Python 3 standard library only. Exit 0; 1 when a published
row's estimate is off by more than --tolerance (30%); 2 on a setup error (no binary, a
plan that fails).

  python3 bench/plan_table_bench.py                       # build-nocuda/bin/gpt-rank
  python3 bench/plan_table_bench.py --gpt-rank build/bin/gpt-rank --markdown
  python3 bench/plan_table_bench.py --gpu h100-80gb       # the same configs elsewhere
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOUR, DAY = 3600.0, 86400.0

# name, training tokens, published time on A100 40GB in seconds (None: not published)
ROWS = [
    ("gpt-125m", "2.5e9", 8 * HOUR),
    ("gpt-125m-2xdp", "2.5e9", 4 * HOUR),
    ("gpt-125m-4xdp", "2.5e9", 2 * HOUR),
    ("gpt-1.3b-4xdp", "26e9", 8 * DAY),
    ("gpt-1.3b-8xdp", "26e9", 4 * DAY),
    ("gpt-1.3b-4xdp-4xpp", "26e9", None),
    ("gpt-13b-4xdp-4xpp", "260e9", None),
    ("gpt-13b-4xdp-8xpp", "260e9", None),
    ("gpt-13b-4xdp-4xpp-4xtp", "260e9", None),
]


class BenchError(Exception):
    pass


def duration(seconds):
    """Hours below two days, days above (as the published table writes them)."""
    return f"{seconds / HOUR:.1f} h" if seconds < 2 * DAY else f"{seconds / DAY:.1f} days"


def plan(gpt_rank, name, gpu, tokens):
    argv = [gpt_rank, "plan", "--config", os.path.join(ROOT, "configs", name + ".json"),
            "--gpu", gpu, "--train-tokens", tokens, "--json"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Exit 1 is "does not fit": still a plan, reported in the table.
    if proc.returncode not in (0, 1):
        raise BenchError(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)


def row_of(name, published, j):
    c, t, r = j["cluster"], j["time_s"], j["per_rank_bytes"]
    layout = f"{c['dp']} DP"
    if c["pp"] > 1:
        layout += f" x {c['pp']} PP" + (f" (v {c['vpp']})" if c["vpp"] > 1 else "")
    if c["tp"] > 1:
        layout += f" x {c['tp']} TP"
    est = j["training"]["seconds"]
    return {
        "config": name,
        "gpus": c["world_size"],
        "nodes": f"{c['nodes']} x {c['gpus_per_node']}",
        "layout": layout,
        "memory_gib": r["total"] / 2**30,
        "memory_stage": r["pipeline_rank"],
        "fits": j["fits"]["all"],
        "bubble": t["bubble_fraction"],
        "micro_batches": t["micro_batches"],
        "tokens_per_s": t["tokens_per_s"],
        "mfu": t["mfu"],
        "tokens": j["training"]["tokens"],
        "estimate_s": est,
        "published_s": published,
        "ratio": est / published if published else None,
    }


def print_table(rows, gpu, markdown):
    head = ["config", "GPUs", "layout", f"memory/GPU ({gpu})", "bubble", "tokens/s", "MFU",
            "tokens", "estimate", "published", "ratio"]
    lines = []
    for r in rows:
        mem = f"{r['memory_gib']:.1f} GiB" + (f" (stage {r['memory_stage']})"
                                              if r["layout"].count("PP") else "")
        if not r["fits"]:
            mem += " DOES NOT FIT"
        lines.append([
            r["config"], f"{r['gpus']} ({r['nodes']})", r["layout"], mem,
            f"{r['bubble']:.3f} (m {r['micro_batches']})" if r["bubble"] > 0 else "-",
            f"{r['tokens_per_s']:,.0f}", f"{100 * r['mfu']:.1f}%", f"{r['tokens']:.3g}",
            duration(r["estimate_s"]),
            duration(r["published_s"]) if r["published_s"] else "-",
            f"{r['ratio']:.2f}" if r["ratio"] else "-"])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    for line in [head] + lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpt-rank", default=os.path.join(ROOT, "build-nocuda", "bin", "gpt-rank"),
                    help="the gpt-rank binary (default: build-nocuda/bin/gpt-rank)")
    ap.add_argument("--gpu", default="a100-40gb", help="the GPU table row (default a100-40gb, "
                    "the published table's)")
    ap.add_argument("--tolerance", type=float, default=0.30,
                    help="largest |estimate / published - 1| that passes (default 0.30)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    if not os.access(args.gpt_rank, os.X_OK):
        print(f"{args.gpt_rank}: not an executable; build it (scripts/build.sh) or pass "
              "--gpt-rank", file=sys.stderr)
        return 2
    try:
        rows = [row_of(name, published if args.gpu == "a100-40gb" else None,
                       plan(args.gpt_rank, name, args.gpu, tokens))
                for name, tokens, published in ROWS]
    except (BenchError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        print(f"plan_table_bench: {e}", file=sys.stderr)
        return 2
    print_table(rows, args.gpu, args.markdown)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": args.gpu, "rows": rows}, f, indent=2)
    off = [r for r in rows if r["ratio"] and abs(r["ratio"] - 1) > args.tolerance]
    for r in off:
        print(f"{r['config']}: estimate {duration(r['estimate_s'])} vs published "
              f"{duration(r['published_s'])} (ratio {r['ratio']:.2f}) is outside "
              f"+-{100 * args.tolerance:.0f}%", file=sys.stderr)
    return 1 if off else 0


if __name__ == "__main__":
    sys.exit(main())
