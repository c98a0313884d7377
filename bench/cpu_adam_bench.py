#!/usr/bin/python3
"""CPU AdamW benchmark: gpt-rank's vectorised AdamW (kernels::cpu::adamw_update_simd,
each ISA path) against torch.optim.AdamW and against this machine's memory bandwidth,
in one run, with the same thread count on every side (issue 17).

  ours    build/bin/cpu_adam_bench adam --size N --isas ...: one fp32 flat buffer of N
          params (+ grads, m, v), as the optimizer-offload path calls it; per path
          `--warmup` untimed then `--steps` timed steps. With --half bf16 the widest
          path runs once more with the fused 16-bit copy-out. OMP_NUM_THREADS=T.
  torch   this script re-run as a worker (`--torch-worker`) under /usr/bin/python3
          (Debian python3-torch 1.13): N params split into tensors of --tensor-elems
          (as a model's weights are), torch.optim.AdamW(foreach=True / False), each
          opt.step() timed with time.perf_counter. torch.set_num_threads(T) and
          OMP_NUM_THREADS=T.
  triad   build/bin/cpu_adam_bench triad: a[i] = b[i] + s*c[i] over three arrays of
          --triad-elems doubles (256 MiB each by default, far beyond the caches),
          best of --triad-reps, 24 bytes per element (STREAM's count); run before and
          after the AdamW runs, the better one is the reference.

Bytes per parameter for one AdamW step: param read 4 + write 4, grad read 4, m read 4
+ write 4, v read 4 + write 4 = 28 (every written line was read first, so no
write-allocate traffic; the bf16/fp16 copy-out adds a 2-byte write plus, without
non-temporal stores, a 2-byte write-allocate read: counted as 30, conservatively as
STREAM does). Achieved GB/s = bytes/param * N / median step time.

Each size runs ours, then torch foreach, then torch single-tensor, one process at a
time (a size needs 16 bytes/param on our side, 24 with foreach temporaries on torch's;
a torch mode that would not fit MemAvailable is skipped and says so). The load average
and other processes seen on a CPU (benchlib.OtherLoad) are printed with the results.

  /usr/bin/python3 bench/cpu_adam_bench.py --sizes 100M,300M,500M --threads 2 \\
      --wait-idle 120 --json /tmp/cpu_adam_bench.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import OtherLoad, loadavg, log, wait_idle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"


def parse_count(text):
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}
    t = text.strip().upper()
    return int(float(t[:-1]) * mult[t[-1]]) if t[-1] in mult else int(t)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_json(cmd, env, timeout):
    """Runs cmd, returns its stdout JSON lines; raises with stderr on failure."""
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def torch_worker(a):
    import torch
    torch.set_num_threads(a.threads)
    n, k = a.size, a.tensor_elems
    params = []
    for b in range(0, n, k):
        t = torch.empty(min(k, n - b)).uniform_(-0.02, 0.02)
        p = torch.nn.Parameter(t)
        p.grad = torch.empty_like(t).uniform_(-1.0, 1.0)
        params.append(p)
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                            foreach=bool(a.foreach))
    ms = []
    with torch.no_grad():
        for s in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            opt.step()
            t = (time.perf_counter() - t0) * 1e3
            if s >= a.warmup:
                ms.append(t)
    print(json.dumps({"kind": "torch", "foreach": bool(a.foreach), "size": n,
                      "threads": torch.get_num_threads(), "tensors": len(params), "ms": ms}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--sizes", default="100M,300M,500M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--isas", default="avx512,avx2,scalar",
                    help="paths to time (add 'ref' for the reference adamw_update)")
    ap.add_argument("--half", default="bf16", choices=["none", "bf16", "fp16"],
                    help="also time the widest path with this fused copy-out")
    ap.add_argument("--torch-modes", default="foreach,single")
    ap.add_argument("--torch-steps", type=int, default=2,
                    help="timed torch steps (each is ~15x ours: this bounds the run time)")
    ap.add_argument("--tensor-elems", default="16M", help="torch: elements per tensor")
    ap.add_argument("--triad-elems", default="32M")
    ap.add_argument("--triad-reps", type=int, default=10)
    ap.add_argument("--wait-idle", type=int, default=0, help="s to wait for load < threshold")
    ap.add_argument("--idle-threshold", type=float, default=1.0)
    ap.add_argument("--timeout", type=int, default=600, help="per child process, s")
    ap.add_argument("--json", help="write all results here")
    # worker mode (internal)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--foreach", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        a.tensor_elems = parse_count(a.tensor_elems)
        return torch_worker(a)

    exe = os.path.join(a.build_dir, "bin", "cpu_adam_bench")
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} not found: cmake --build {a.build_dir} --target cpu_adam_bench")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_PROC_BIND="false")
    sizes = [parse_count(s) for s in a.sizes.split(",")]
    isas = [s for s in a.isas.split(",") if s]
    t_start = time.monotonic()
    la0 = wait_idle(a.wait_idle, a.idle_threshold)
    log(f"load average at start: {la0}")
    other = OtherLoad()
    other.start()

    def triad():
        r = run_json([exe, "triad", "--elems", str(parse_count(a.triad_elems)),
                      "--reps", str(a.triad_reps)], env, a.timeout)[0]
        log(f"triad: {r['GBps']:.1f} GB/s")
        return r

    results = {"triad": [triad()], "sizes": {}, "threads": a.threads}
    for n in sizes:
        res = results["sizes"].setdefault(str(n), {})
        log(f"size {n}: ours ({','.join(isas)})")
        for r in run_json([exe, "adam", "--size", str(n), "--isas", ",".join(isas),
                           "--steps", str(a.steps), "--warmup", str(a.warmup)], env, a.timeout):
            res[r["isa"]] = r
        widest = next((i for i in ("avx512", "avx2", "scalar") if i in res and "ms" in res[i]), None)
        if a.half != "none" and widest:
            r = run_json([exe, "adam", "--size", str(n), "--isas", widest, "--steps", str(a.steps),
                          "--warmup", str(a.warmup), "--half", a.half], env, a.timeout)[0]
            res[f"{widest}+{a.half}"] = r
        for mode in a.torch_modes.split(","):
            foreach = mode == "foreach"
            need = n * 4 * (6 if foreach else 4) + (1 << 30)
            if mem_available() < need:
                res[f"torch-{mode}"] = {"skipped": f"needs ~{need / 2**30:.1f} GiB, "
                                                   f"{mem_available() / 2**30:.1f} available"}
                log(f"size {n}: torch {mode} skipped (memory)")
                continue
            log(f"size {n}: torch {mode}")
            res[f"torch-{mode}"] = run_json(
                [PY, os.path.abspath(__file__), "--torch-worker", "--size", str(n),
                 "--foreach", str(int(foreach)), "--threads", str(a.threads),
                 "--steps", str(a.torch_steps), "--warmup", str(a.warmup),
                 "--tensor-elems", a.tensor_elems], env, a.timeout)[0]
    results["triad"].append(triad())
    other.stop_ev.set()
    results["load_start"], results["load_end"] = la0, loadavg()
    results["other_load"] = other.summary()
    results["wall_s"] = time.monotonic() - t_start
    report(results, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def report(results, a):
    bw = max(t["GBps"] for t in results["triad"])
    print(f"\nthreads {a.threads}; triad {', '.join('%.1f' % t['GBps'] for t in results['triad'])}"
          f" GB/s (best {bw:.1f}); load average start {results['load_start']}, end "
          f"{results['load_end']}; {results['other_load']}; wall {results['wall_s']:.0f} s\n")
    # "of triad": against STREAM's 24-byte count; "+WA": against the triad's real traffic
    # of 32 bytes (a[] is read for ownership before it is written), which AdamW, whose
    # written lines were all read first, does not pay.
    print("| params | impl | ms/step (median) | min | speed-up vs torch foreach "
          "| vs torch single | GB/s | of triad | of triad+WA |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, res in results["sizes"].items():
        med = {k: statistics.median(r["ms"]) for k, r in res.items() if "ms" in r}
        for k, r in res.items():
            if "ms" not in r:
                print(f"| {int(n) / 1e6:.0f}M | {k} | skipped: {r.get('skipped')} | | | | | | |")
                continue
            t = med[k]
            ours = not k.startswith("torch")
            ratio = lambda m: f"{med[m] / t:.2f}x" if ours and m in med else ""  # noqa: E731
            bpp = 30 if "+" in k else 28
            gbs = bpp * int(n) / (t / 1e3) / 1e9
            print(f"| {int(n) / 1e6:.0f}M | {k} | {t:.1f} | {min(r['ms']):.1f} | "
                  f"{ratio('torch-foreach')} | {ratio('torch-single')} | {gbs:.1f} | "
                  f"{100 * gbs / bw:.0f}% | {100 * gbs / (bw * 32 / 24):.0f}% |")


if __name__ == "__main__":
    main()
