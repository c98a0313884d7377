#!/usr/bin/python3
"""Trainer benchmark: gpt-rank against plain PyTorch, side by side in one run.

For each config (tiny, gpt2-small-cpu) both sides train the SAME GPT-2 model (layers,
hidden, heads, seq, micro-batch, vocab 50257 padded to a multiple of 128, dropout 0,
float32, AdamW + clip_grad_norm 1.0) with the SAME thread count, one process each:

  gpt-rank  `gpt-rank train --config configs/<name>.json --set ...` (no checkpoints,
            no evaluation, log_interval 1, metrics.jsonl in a temp dir). tokens/s per
            iteration is read from metrics.jsonl (gpt-rank times each TrainStep:
            data, forward, backward, grad clip, AdamW). Threads: OMP_NUM_THREADS=N
            and training.threads=N; gpt-rank splits every sgemm across its OpenMP
            threads and calls OpenBLAS single-threaded (openblas_set_num_threads(1)
            in trainer/kernels/cpu/matmul.cc), so OPENBLAS_NUM_THREADS has no effect.
  PyTorch   this script re-run as a worker (`--torch-worker`) under /usr/bin/python3
            (Debian python3-torch 1.13): the model class of tests/reference/
            gpt_reference.py (same math as gpt-rank), random initialisation, random
            token batches of the same shape, torch.optim.AdamW (decay on 2-D tensors)
            and clip_grad_norm_; each iteration (zero_grad, forward, backward, clip,
            step) is timed with time.perf_counter. Threads: torch.set_num_threads(N)
            and OMP_NUM_THREADS=N (ATen's OpenMP pool for element-wise ops, softmax,
            layer norm, ...); matrix products go to libblas.so.3 (OpenBLAS pthreads
            via update-alternatives) called from one thread, whose own pool size is
            OPENBLAS_NUM_THREADS=N (--torch-blas-threads).

Peak memory: ru_maxrss of each child from os.wait4 (whole process, including the
runtime: for PyTorch the libraries and interpreter, about 0.2 GiB, count too).

GFLOP/s: flops per token = 6*N + 12*L*T*C, with N = L*(12*C^2 + 13*C) + Vp*C + 2*C
(all weights that take part in matrix products or norms: wpe is excluded, the tied
wte/LM head counted once, over the padded vocabulary Vp), and 12*L*T*C the attention
score and value products (QK^T and AV, forward 4*T*C per token and layer, backward
twice that; the causal mask is not subtracted). GFLOP/s = flops/token * tokens/s.

Every wait has a deadline; children are killed by PID on timeout, error or Ctrl-C,
and the temp dir is removed.

  /usr/bin/python3 bench/trainer_bench.py --configs tiny,gpt2-small-cpu --threads 2 \\
      --iters tiny=6,gpt2-small-cpu=3 --warmup 2 --wait-idle 300 --json /tmp/trainer_bench.json
"""
import argparse
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import log, loadavg, wait_idle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {
    # name: (config file, micro batch, seq)
    "tiny": ("configs/tiny.json", 8, 256),
    "gpt2-small-cpu": ("configs/gpt2-small-cpu.json", 8, 256),
}
DEFAULT_ITERS = {"tiny": 6, "gpt2-small-cpu": 3}

_children = []  # Popen objects still running (killed by PID on exit)


def padded_vocab(v, mult):
    return (v + mult - 1) // mult * mult


def model_shape(name):
    path = os.path.join(ROOT, CONFIGS[name][0])
    with open(path) as f:
        cfg = json.load(f)
    m = cfg["model"]
    return {
        "L": m["num_layers"], "C": m["hidden_size"], "NH": m["num_attention_heads"],
        "T": CONFIGS[name][2], "P": m["max_position_embeddings"],
        "V": 50257, "Vp": padded_vocab(50257, m.get("make_vocab_size_divisible_by", 128)),
        "B": CONFIGS[name][1],
    }


def flops_per_token(s):
    L, C, T, Vp = s["L"], s["C"], s["T"], s["Vp"]
    n = L * (12 * C * C + 13 * C) + Vp * C + 2 * C
    return 6 * n + 12 * L * T * C, n


def run_child(cmd, env, timeout, stdout_path, stderr_path):
    """Runs cmd; returns (rc, ru_maxrss KiB, wall s). Kills it by PID at the deadline."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=ROOT,
                             start_new_session=True)
        _children.append(p)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() > deadline:
                log(f"timeout after {timeout} s: killing PID {p.pid}")
                kill_child(p)
                pid, status, ru = os.wait4(p.pid, 0)
                p.returncode = -9
                _children.remove(p)
                return None, ru.ru_maxrss, time.monotonic() - t0
            time.sleep(0.05)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        _children.remove(p)
        return p.returncode, ru.ru_maxrss, wall


def kill_child(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)  # its own session: the child and its threads
    except ProcessLookupError:
        pass


def thread_env(threads, blas_threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    return env


# --- gpt-rank -------------------------------------------------------------------------

def bench_gpt_rank(name, args, tmp):
    s = model_shape(name)
    iters = args.warmup + args.iters[name]
    d = os.path.join(tmp, f"gpt-rank-{name}")
    os.makedirs(d)
    metrics = os.path.join(d, "metrics.jsonl")
    sets = {
        "training.train_iters": iters, "training.log_interval": 1,
        "training.micro_batch_size": s["B"], "training.global_batch_size": s["B"],
        "training.eval_iters": 0, "training.save": "", "training.save_interval": 0,
        "training.metrics_file": metrics, "training.threads": args.threads,
        "training.clip_grad": 1.0, "training.lr_warmup_iters": 0,
        "training.lr_warmup_fraction": 0.0,
        "model.seq_length": s["T"], "model.hidden_dropout": 0.0,
        "model.attention_dropout": 0.0, "model.make_vocab_size_divisible_by": 128,
        "parallel.precision": "fp32",
    }
    cmd = [args.gpt_rank, "train", "--config", os.path.join(ROOT, CONFIGS[name][0])]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]
    env = thread_env(args.threads, args.threads)
    la0 = loadavg()
    log(f"gpt-rank {name}: {iters} iterations ({args.warmup} warm-up)")
    rc, maxrss, wall = run_child(cmd, env, args.timeout, os.path.join(d, "stdout"),
                                 os.path.join(d, "stderr"))
    la1 = loadavg()
    with open(os.path.join(d, "stderr"), errors="replace") as f:
        err = f.read()
    if rc != 0:
        raise RuntimeError(f"gpt-rank {name} failed (rc {rc}): {err[-2000:]}")
    recs = []
    with open(metrics) as f:
        for line in f:
            r = json.loads(line)
            if "tokens_per_s" in r:
                recs.append(r)
    meas = [r for r in recs if r["iteration"] > args.warmup]
    if not meas:
        raise RuntimeError(f"gpt-rank {name}: no measured iterations in {metrics}")
    info = [l for l in err.splitlines() if "parameters;" in l]
    return {
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in meas),
        "iter_ms": [r["elapsed_ms"] for r in meas],
        "tokens_per_s_all": [r["tokens_per_s"] for r in recs],
        "peak_rss_kib": maxrss, "wall_s": wall, "loadavg_before": la0, "loadavg_after": la1,
        "cmd": cmd, "model_line": info[0].strip() if info else "",
        "losses": [r["lm_loss"] for r in recs],
    }


# --- PyTorch ----------------------------------------------------------------------------

def bench_torch(name, args, tmp):
    s = model_shape(name)
    d = os.path.join(tmp, f"torch-{name}")
    os.makedirs(d)
    cmd = [args.python, os.path.abspath(__file__), "--torch-worker", json.dumps(
        {"shape": s, "iters": args.iters[name], "warmup": args.warmup,
         "threads": args.threads, "seed": 1234})]
    env = thread_env(args.threads, args.torch_blas_threads)
    la0 = loadavg()
    log(f"PyTorch {name}: {args.warmup + args.iters[name]} iterations ({args.warmup} warm-up)")
    rc, maxrss, wall = run_child(cmd, env, args.timeout, os.path.join(d, "stdout"),
                                 os.path.join(d, "stderr"))
    la1 = loadavg()
    if rc != 0:
        with open(os.path.join(d, "stderr"), errors="replace") as f:
            raise RuntimeError(f"PyTorch {name} failed (rc {rc}): {f.read()[-2000:]}")
    with open(os.path.join(d, "stdout")) as f:
        r = json.loads(f.read().strip().splitlines()[-1])
    tok = s["B"] * s["T"]
    r["tokens_per_s"] = statistics.median(tok / (ms / 1000.0) for ms in r["iter_ms"])
    r.update({"peak_rss_kib": maxrss, "wall_s": wall, "loadavg_before": la0,
              "loadavg_after": la1})
    return r


def torch_worker(spec):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    from gpt_reference import GPT2  # same math as gpt-rank (pre-LN, tanh GELU, tied head)

    s = spec["shape"]
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    L, C, P, V, Vp = s["L"], s["C"], s["P"], s["V"], s["Vp"]
    std = 0.02
    t = {"wte.weight": torch.randn(V, C) * std, "wpe.weight": torch.randn(P, C) * std}
    for i in range(L):
        h = f"h.{i}."
        t[h + "ln_1.weight"], t[h + "ln_1.bias"] = torch.ones(C), torch.zeros(C)
        t[h + "attn.c_attn.weight"] = torch.randn(C, 3 * C) * std
        t[h + "attn.c_attn.bias"] = torch.zeros(3 * C)
        t[h + "attn.c_proj.weight"] = torch.randn(C, C) * std / math.sqrt(2 * L)
        t[h + "attn.c_proj.bias"] = torch.zeros(C)
        t[h + "ln_2.weight"], t[h + "ln_2.bias"] = torch.ones(C), torch.zeros(C)
        t[h + "mlp.c_fc.weight"] = torch.randn(C, 4 * C) * std
        t[h + "mlp.c_fc.bias"] = torch.zeros(4 * C)
        t[h + "mlp.c_proj.weight"] = torch.randn(4 * C, C) * std / math.sqrt(2 * L)
        t[h + "mlp.c_proj.bias"] = torch.zeros(C)
    t["ln_f.weight"], t["ln_f.bias"] = torch.ones(C), torch.zeros(C)
    cfg = {"n_layer": L, "n_embd": C, "n_head": s["NH"], "vocab_size": V}
    model = GPT2(cfg, t, Vp, torch.float32)
    del t
    params = [getattr(model, k) for _, k in model.names]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    B, T = s["B"], s["T"]
    g = torch.Generator().manual_seed(spec["seed"])
    iter_ms, losses = [], []
    n = spec["warmup"] + spec["iters"]
    for it in range(n):
        idx = torch.randint(0, V, (B, T), generator=g)
        tgt = torch.randint(0, V, (B, T), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lv = loss.item()
        ms = (time.perf_counter() - t0) * 1000.0
        losses.append(lv)
        print(f"iteration {it + 1}/{n}: {ms:.0f} ms loss {lv:.4f}", file=sys.stderr, flush=True)
        if it >= spec["warmup"]:
            iter_ms.append(ms)
    print(json.dumps({
        "iter_ms": iter_ms, "losses": losses, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "num_params": sum(p.numel() for p in params),
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }), flush=True)


# --- main -------------------------------------------------------------------------------

def parse_iters(text, names):
    out = dict(DEFAULT_ITERS)
    if text:
        if "=" not in text:
            out = {n: int(text) for n in names}
        else:
            for part in text.split(","):
                k, v = part.split("=")
                out[k.strip()] = int(v)
    for n in names:
        if out.get(n, 0) < 1:
            sys.exit(f"--iters: need at least 1 measured iteration for {n}")
    return out


def gib(kib):
    return kib / 1048576.0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--torch-worker":
        torch_worker(json.loads(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="tiny,gpt2-small-cpu")
    ap.add_argument("--iters", default="",
                    help="measured iterations: N for all, or tiny=6,gpt2-small-cpu=3 (default)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up iterations (not timed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-blas-threads", type=int, default=None,
                    help="OPENBLAS_NUM_THREADS for the PyTorch side (default: --threads)")
    ap.add_argument("--gpt-rank", default=os.path.join(ROOT, "build", "bin", "gpt-rank"))
    ap.add_argument("--python", default="/usr/bin/python3", help="python with torch")
    ap.add_argument("--timeout", type=int, default=600, help="per child process, seconds")
    ap.add_argument("--wait-idle", type=int, default=300,
                    help="wait up to this many seconds for 1-min load < --idle-load")
    ap.add_argument("--idle-load", type=float, default=1.0)
    ap.add_argument("--order", default="gpt-rank,torch")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    for n in names:
        if n not in CONFIGS:
            sys.exit(f"unknown config {n}; known: {', '.join(CONFIGS)}")
    args.iters = parse_iters(args.iters, names)
    if args.torch_blas_threads is None:
        args.torch_blas_threads = args.threads
    if not os.access(args.gpt_rank, os.X_OK):
        sys.exit(f"{args.gpt_rank}: not executable (build first)")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="trainer_bench.")
    results = {"machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname()),
                           "threads": args.threads,
                           "torch_openblas_threads": args.torch_blas_threads},
               "configs": {}}
    rc = 0
    try:
        results["loadavg_start"] = wait_idle(args.wait_idle, args.idle_load)
        for name in names:
            s = model_shape(name)
            fpt, nparams = flops_per_token(s)
            r = {"shape": s, "flops_per_token": fpt, "flops_params": nparams}
            for side in args.order.split(","):
                if side == "gpt-rank":
                    r["gpt-rank"] = bench_gpt_rank(name, args, tmp)
                else:
                    r["torch"] = bench_torch(name, args, tmp)
                log(f"  {side}: {r['gpt-rank' if side == 'gpt-rank' else 'torch']['tokens_per_s']:.1f} tokens/s")
            results["configs"][name] = r
        results["loadavg_end"] = loadavg()
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except (RuntimeError, OSError, ValueError) as e:
        log(f"error: {e}")
        rc = 1
    finally:
        for p in list(_children):
            kill_child(p)
            try:
                os.wait4(p.pid, 0)
            except ChildProcessError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for name, r in results["configs"].items():
        s, g, t = r["shape"], r.get("gpt-rank"), r.get("torch")
        if not g or not t:
            continue
        rows.append((name, s, g, t, r["flops_per_token"]))
    if rows:
        hdr = (f"{'config':9} {'L/C/T/B':>14} {'gpt-rank tok/s':>14} {'PyTorch tok/s':>13} "
               f"{'ratio':>6} {'gpt-rank GF/s':>13} {'PyTorch GF/s':>12} "
               f"{'gpt-rank RSS':>12} {'PyTorch RSS':>11} {'RSS ratio':>9}")
        print(hdr)
        for name, s, g, t, fpt in rows:
            print(f"{name:9} {s['L']:>3}/{s['C']}/{s['T']}/{s['B']:<3} "
                  f"{g['tokens_per_s']:14.1f} {t['tokens_per_s']:13.1f} "
                  f"{g['tokens_per_s'] / t['tokens_per_s']:5.2f}x "
                  f"{fpt * g['tokens_per_s'] / 1e9:13.1f} {fpt * t['tokens_per_s'] / 1e9:12.1f} "
                  f"{gib(g['peak_rss_kib']):9.2f} GiB {gib(t['peak_rss_kib']):7.2f} GiB "
                  f"{g['peak_rss_kib'] / t['peak_rss_kib']:8.2f}x")
        print(f"load average: start {results.get('loadavg_start')}, end {results.get('loadavg_end')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
