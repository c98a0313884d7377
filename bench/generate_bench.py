#!/usr/bin/python3
"""Generation benchmark: tokens/s with the KV cache against re-running the window every
token, at 256 new tokens (issue 22: the cache must be at least 5x faster there).

Both engines run in build/bin/generate_bench (bench/generate/generate_bench.cc) on the
SAME random in-memory model, prompt and options, greedy, no stop token, so each
produces exactly --new-tokens ids; the program also says whether they produced the same
ids. The model is bench/llama_bench.py's tiny Qwen2 shape (4 layers, hidden 256, 8
query heads in 2 KV groups, SwiGLU F 704, RMSNorm, RoPE, q/k/v biases, vocab 50257
padded to 50304, tied LM head), context = prompt + new tokens; `--family gpt2` runs the
GPT-2 layout of the same size instead.

  cache     GenerateWithCache: the prompt in one prefill, then one token per step
            (KvDecoder: one-row matmuls, attention over the cached K/V).
  no cache  GenerateTokens: GptModel::Forward over prompt + generated so far, every
            token (what `gpt-rank generate --no-kv-cache` runs).

tokens/s = new tokens / wall time of the whole generation (prefill included); the
cache's decode-only rate is printed too. Each engine runs --repeats times (each in a
fresh process, alternating), the median is reported. OMP_NUM_THREADS=--threads for both
(OpenBLAS single-threaded inside, as everywhere in gpt-rank). The load average before
and after is printed: on a shared machine, compare the ratio, not the absolute rates.

  /usr/bin/python3 bench/generate_bench.py --build build-nocuda --threads 1 \\
      --repeats 3 --wait-idle 300 --json /tmp/generate_bench.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import loadavg, log, wait_idle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_engine(binary, args, engine):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["OPENBLAS_NUM_THREADS"] = "1"
    cmd = [binary, "--family", args.family, "--prompt", str(args.prompt),
           "--new-tokens", str(args.new_tokens), "--engines", engine]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if out.returncode != 0:
        sys.exit(f"generate_bench failed ({out.returncode}): {out.stderr.strip()}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return next(r for r in rows if r["engine"] == engine)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory")
    p.add_argument("--family", default="qwen2", choices=["qwen2", "gpt2"])
    p.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    p.add_argument("--wait-idle", type=int, default=0,
                   help="wait up to this many s for the 1-min load to drop below --idle-load")
    p.add_argument("--idle-load", type=float, default=1.0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    binary = os.path.join(args.build, "bin", "generate_bench")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: build the generate_bench target first")

    load_before = wait_idle(args.wait_idle, args.idle_load)
    # Same-token check once (both engines in one process, greedy).
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS="1")
    cmp_out = subprocess.run([binary, "--family", args.family, "--prompt", str(args.prompt),
                              "--new-tokens", str(args.new_tokens), "--engines", "cache,nocache"],
                             env=env, capture_output=True, text=True, timeout=args.timeout)
    if cmp_out.returncode != 0:
        sys.exit(f"generate_bench failed: {cmp_out.stderr.strip()}")
    compare = [json.loads(x) for x in cmp_out.stdout.splitlines() if '"compare"' in x][0]
    runs = {"cache": [], "nocache": []}
    for r in range(args.repeats):
        for engine in ("cache", "nocache"):
            res = run_engine(binary, args, engine)
            runs[engine].append(res)
            log(f"repeat {r + 1}/{args.repeats} {engine}: {res['new_tokens'] / res['seconds']:.1f} "
                f"tokens/s")
    load_after = loadavg()

    def rate(res):
        return res["new_tokens"] / res["seconds"]

    cache_tps = statistics.median(rate(x) for x in runs["cache"])
    nocache_tps = statistics.median(rate(x) for x in runs["nocache"])
    decode_tps = statistics.median(x["decode_tokens"] / x["decode_seconds"] for x in runs["cache"])
    prefill_tps = statistics.median(args.prompt / x["prefill_seconds"] for x in runs["cache"])
    ratio = cache_tps / nocache_tps
    print(f"generation, {args.family} tiny model, prompt {args.prompt}, {args.new_tokens} new "
          f"tokens, greedy, {args.threads} thread(s), median of {args.repeats}")
    print(f"  {'engine':<10} {'tokens/s':>10}")
    print(f"  {'no cache':<10} {nocache_tps:>10.1f}")
    print(f"  {'KV cache':<10} {cache_tps:>10.1f}   (prefill {prefill_tps:.0f} tokens/s, "
          f"decode {decode_tps:.1f} tokens/s)")
    print(f"  ratio      {ratio:>10.1f}x   (issue 22 asks >= 5x)")
    print(f"  same greedy tokens: {compare['same_tokens']} (common prefix "
          f"{compare['common_prefix']} of {args.new_tokens})")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"family": args.family, "prompt": args.prompt,
                       "new_tokens": args.new_tokens, "threads": args.threads,
                       "runs": runs, "cache_tokens_per_s": cache_tps,
                       "nocache_tokens_per_s": nocache_tps, "ratio": ratio,
                       "decode_tokens_per_s": decode_tps, "prefill_tokens_per_s": prefill_tps,
                       "compare": compare, "load_before": load_before,
                       "load_after": load_after}, f, indent=1)
    return 0 if ratio >= 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
