#!/usr/bin/python3
"""Llama/Qwen2-family trainer benchmark: gpt-rank against plain PyTorch, side by side.

Both sides train the SAME tiny Qwen2-shaped model (configs/tiny.json's size: 4 layers,
hidden 256, 8 query heads in 2 KV groups, SwiGLU with F = 704, RMSNorm eps 1e-6, RoPE
theta 1e6, q/k/v biases, no other linear biases, LM head tied to the embedding; seq 256,
micro-batch 8, vocab 50257 padded to 50304 on gpt-rank's side), float32, AdamW + clip
1.0, no dropout, with the SAME thread count, one process each:

  gpt-rank  `gpt-rank train --config configs/tiny.json --set model.normalization=RMSNorm
            ...` on the Brown corpus (no checkpoints, no evaluation, log_interval 1);
            tokens/s per iteration from metrics.jsonl (data, forward, backward, clip,
            AdamW), warm-up iterations skipped, median reported.
  PyTorch   this script as a worker under /usr/bin/python3 (Debian python3-torch): the
            LlamaFamily class of tests/reference/llama_reference.py (the reference the
            exactness tests use), random initialisation, random token batches of the
            same shape, torch.optim.AdamW (decay on 2-D tensors) and clip_grad_norm_;
            each iteration (zero_grad, forward, backward, clip, step, loss.item()) timed
            with time.perf_counter; median reported.

Threads: OMP_NUM_THREADS=N on both; gpt-rank training.threads=N (its sgemms split over
OpenMP threads, OpenBLAS single-threaded inside); PyTorch torch.set_num_threads(N) and
OPENBLAS_NUM_THREADS=N for its BLAS pool. Peak memory: ru_maxrss from os.wait4 (whole
process). GFLOP/s: flops per token = 6 N + 12 L T C, N = the weights in matrix products
and norms (L (QKV C + C^2 + 3 F C + QKV + 2 C) + Vp C + C).

  /usr/bin/python3 bench/llama_bench.py --threads 2 --iters 6 --warmup 2 \\
      --wait-idle 300 --json /tmp/llama_bench.json
"""
import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import log, loadavg, wait_idle  # noqa: E402
import trainer_bench as tb  # noqa: E402  (child processes with deadlines, thread env)

ROOT = tb.ROOT
SHAPE = {"L": 4, "C": 256, "NH": 8, "KV": 2, "F": 704, "T": 256, "B": 8, "V": 50257,
         "Vp": 50304, "eps": 1e-6, "theta": 1000000.0}
FAMILY_SETS = {
    "model.normalization": "RMSNorm", "model.norm_epsilon": SHAPE["eps"],
    "model.position_embedding_type": "rope", "model.rotary_base": SHAPE["theta"],
    "model.swiglu": True, "model.ffn_hidden_size": SHAPE["F"],
    "model.group_query_attention": True, "model.num_query_groups": SHAPE["KV"],
    "model.disable_bias_linear": True, "model.add_qkv_bias": True,
}


def flops_per_token(s):
    L, C, T, F, Vp = s["L"], s["C"], s["T"], s["F"], s["Vp"]
    qkv = (s["NH"] + 2 * s["KV"]) * (C // s["NH"])
    n = L * (qkv * C + C * C + 3 * F * C + qkv + 2 * C) + Vp * C + C
    return 6 * n + 12 * L * T * C, n


def bench_gpt_rank(args, tmp):
    s = SHAPE
    iters = args.warmup + args.iters
    d = os.path.join(tmp, "gpt-rank")
    os.makedirs(d)
    metrics = os.path.join(d, "metrics.jsonl")
    sets = dict(FAMILY_SETS)
    sets.update({
        "training.train_iters": iters, "training.log_interval": 1,
        "training.micro_batch_size": s["B"], "training.global_batch_size": s["B"],
        "training.eval_iters": 0, "training.save": "", "training.save_interval": 0,
        "training.metrics_file": metrics, "training.threads": args.threads,
        "training.clip_grad": 1.0, "training.lr_warmup_iters": 0,
        "training.lr_warmup_fraction": 0.0,
        "model.seq_length": s["T"], "model.hidden_dropout": 0.0,
        "model.attention_dropout": 0.0,
    })
    cmd = [args.gpt_rank, "train", "--config", os.path.join(ROOT, "configs", "tiny.json")]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]
    env = tb.thread_env(args.threads, args.threads)
    la0 = loadavg()
    log(f"gpt-rank: {iters} iterations ({args.warmup} warm-up)")
    rc, maxrss, wall = tb.run_child(cmd, env, args.timeout, os.path.join(d, "stdout"),
                                    os.path.join(d, "stderr"))
    la1 = loadavg()
    with open(os.path.join(d, "stderr"), errors="replace") as f:
        err = f.read()
    if rc != 0:
        raise RuntimeError(f"gpt-rank failed (rc {rc}): {err[-2000:]}")
    with open(metrics) as f:
        recs = [r for r in map(json.loads, f) if "tokens_per_s" in r]
    meas = [r for r in recs if r["iteration"] > args.warmup]
    if not meas:
        raise RuntimeError(f"gpt-rank: no measured iterations in {metrics}")
    return {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in meas),
            "iter_ms": [r["elapsed_ms"] for r in meas], "peak_rss_kib": maxrss, "wall_s": wall,
            "loadavg_before": la0, "loadavg_after": la1, "cmd": cmd,
            "losses": [r["lm_loss"] for r in recs]}


def bench_torch(args, tmp):
    d = os.path.join(tmp, "torch")
    os.makedirs(d)
    cmd = [args.python, os.path.abspath(__file__), "--torch-worker", json.dumps(
        {"iters": args.iters, "warmup": args.warmup, "threads": args.threads, "seed": 1234})]
    env = tb.thread_env(args.threads, args.threads)
    la0 = loadavg()
    log(f"PyTorch: {args.warmup + args.iters} iterations ({args.warmup} warm-up)")
    rc, maxrss, wall = tb.run_child(cmd, env, args.timeout, os.path.join(d, "stdout"),
                                    os.path.join(d, "stderr"))
    la1 = loadavg()
    if rc != 0:
        with open(os.path.join(d, "stderr"), errors="replace") as f:
            raise RuntimeError(f"PyTorch failed (rc {rc}): {f.read()[-2000:]}")
    with open(os.path.join(d, "stdout")) as f:
        r = json.loads(f.read().strip().splitlines()[-1])
    tok = SHAPE["B"] * SHAPE["T"]
    r["tokens_per_s"] = statistics.median(tok / (ms / 1000.0) for ms in r["iter_ms"])
    r.update({"peak_rss_kib": maxrss, "wall_s": wall, "loadavg_before": la0,
              "loadavg_after": la1})
    return r


def torch_worker(spec):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    from llama_reference import LlamaFamily, init_tensors  # noqa: E402

    s = SHAPE
    torch.set_num_threads(spec["threads"])
    cfg = {"model_type": "qwen2", "hidden_size": s["C"], "intermediate_size": s["F"],
           "num_hidden_layers": s["L"], "num_attention_heads": s["NH"],
           "num_key_value_heads": s["KV"], "vocab_size": s["V"], "rms_norm_eps": s["eps"],
           "rope_theta": s["theta"], "tie_word_embeddings": True}
    gen = torch.Generator().manual_seed(spec["seed"])
    model = LlamaFamily(cfg, init_tensors(cfg, gen), torch.float32)
    params = [getattr(model, k) for _, k in model.names]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    B, T, V = s["B"], s["T"], s["V"]
    iter_ms, losses = [], []
    n = spec["warmup"] + spec["iters"]
    for it in range(n):
        idx = torch.randint(0, V, (B, T), generator=gen)
        tgt = torch.randint(0, V, (B, T), generator=gen)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lv = loss.item()
        ms = (time.perf_counter() - t0) * 1000.0
        losses.append(lv)
        print(f"iteration {it + 1}/{n}: {ms:.0f} ms loss {lv:.4f}", file=sys.stderr, flush=True)
        if it >= spec["warmup"]:
            iter_ms.append(ms)
    print(json.dumps({"iter_ms": iter_ms, "losses": losses, "torch": torch.__version__,
                      "torch_threads": torch.get_num_threads(),
                      "num_params": sum(p.numel() for p in params),
                      "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}),
          flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--torch-worker":
        torch_worker(json.loads(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=6, help="measured iterations per side")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up iterations (not timed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gpt-rank", default=os.path.join(ROOT, "build", "bin", "gpt-rank"))
    ap.add_argument("--python", default="/usr/bin/python3", help="python with torch")
    ap.add_argument("--timeout", type=int, default=600, help="per child process, seconds")
    ap.add_argument("--wait-idle", type=int, default=300,
                    help="wait up to this many seconds for 1-min load < --idle-load")
    ap.add_argument("--idle-load", type=float, default=1.0)
    ap.add_argument("--order", default="gpt-rank,torch")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    if not os.access(args.gpt_rank, os.X_OK):
        sys.exit(f"{args.gpt_rank}: not executable (build first)")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="llama_bench.")
    fpt, nparams = flops_per_token(SHAPE)
    results = {"shape": SHAPE, "flops_per_token": fpt, "flops_params": nparams,
               "machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname()),
                           "threads": args.threads}}
    rc = 0
    try:
        results["loadavg_start"] = wait_idle(args.wait_idle, args.idle_load)
        for side in args.order.split(","):
            results[side] = bench_gpt_rank(args, tmp) if side == "gpt-rank" else bench_torch(args, tmp)
            log(f"  {side}: {results[side]['tokens_per_s']:.1f} tokens/s")
        results["loadavg_end"] = loadavg()
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except (RuntimeError, OSError, ValueError) as e:
        log(f"error: {e}")
        rc = 1
    finally:
        for p in list(tb._children):
            tb.kill_child(p)
            try:
                os.wait4(p.pid, 0)
            except ChildProcessError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    g, t = results.get("gpt-rank"), results.get("torch")
    if g and t:
        gib = 1048576.0
        print(f"{'':9} {'tokens/s':>9} {'GFLOP/s':>8} {'peak RSS':>9}  iteration ms")
        for name, r in (("gpt-rank", g), ("PyTorch", t)):
            print(f"{name:9} {r['tokens_per_s']:9.1f} {fpt * r['tokens_per_s'] / 1e9:8.1f} "
                  f"{r['peak_rss_kib'] / gib:6.2f} GiB  "
                  + " ".join(f"{ms:.0f}" for ms in r["iter_ms"]))
        print(f"ratio {g['tokens_per_s'] / t['tokens_per_s']:.2f}x; load average start "
              f"{results.get('loadavg_start')}, end {results.get('loadavg_end')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
