#!/usr/bin/env python3
"""GPU trainer benchmark: gpt-rank's CUDA backend against PyTorch on the same GPU.

For each config both sides train the SAME GPT-2 (layers, hidden, heads, seq 1024,
micro-batch, vocab 50257 padded to a multiple of 128, dropout 0, bf16 compute with fp32
master weights, AdamW, clip_grad_norm 1.0), one process, one GPU, one after the other
in the same call:

  gpt-rank  `gpt-rank train` with training.device "cuda", bf16.enabled, on the demo
            data (Brown corpus; COORD_DATA_DIR), no checkpoints or evaluation;
            ms per iteration from metrics.jsonl (the whole TrainStep: data, forward,
            backward, norm, AdamW), the first --warmup iterations dropped.
  PyTorch   this script as a worker (--torch-worker): a plain GPT-2 (pre-LN blocks,
            tanh GELU, tied LM head, F.scaled_dot_product_attention(is_causal=True)),
            torch.compile, torch.autocast(bfloat16) over fp32 weights, fused AdamW
            (torch.optim.AdamW(fused=True)), clip_grad_norm_; random tokens of the same
            shape; each iteration timed with torch.cuda.synchronize.

MFU: Megatron's model FLOPs per iteration, 72 * B * T * L * C^2 * (1 + T/(6C) +
Vp/(12 L C)) (forward + backward, no recomputation counted), over the measured time,
against the GPU's dense bf16 peak (H100 SXM 989.4 TFLOP/s, H100 PCIe 756, H200 989.4,
A100 312; --peak-tflops overrides).

Without a GPU (no nvidia-smi, or it lists none) it says so and exits 0.

  python3 bench/gpu_trainer_bench.py --build build-gpu --json /tmp/gpu_bench.json
  python3 bench/gpu_trainer_bench.py --build build-gpu --configs gpt2-124m --iters 10
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name: (layers, hidden, heads, micro batch)
CONFIGS = {
    "gpt2-124m": (12, 768, 12, 16),
    "gpt2-350m": (24, 1024, 16, 8),
    "10b-slice": (4, 4096, 32, 4),  # 4 layers of configs/10B.json
}
SEQ = 1024
VOCAB = 50257
PEAKS = [("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("GH200", 989.4),
         ("A100", 312.0)]


def log(msg):
    print(f"[gpu_bench] {msg}", file=sys.stderr, flush=True)


def padded(v, mult=128):
    return (v + mult - 1) // mult * mult


def model_flops_per_iter(L, C, B, T=SEQ):
    vp = padded(VOCAB)
    return 72.0 * B * T * L * C * C * (1 + T / (6.0 * C) + vp / (12.0 * L * C))


def gpu_name():
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [l.strip() for l in out.stdout.splitlines() if l.strip()]
    return names[0] if out.returncode == 0 and names else None


def peak_for(name):
    for key, tflops in PEAKS:
        if key in name:
            return tflops
    return None


def run(cmd, env, timeout, log_path):
    """Runs cmd in its own session; kills the session by PID at the deadline."""
    with open(log_path, "wb") as out:
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                             start_new_session=True)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            log(f"timeout after {timeout} s: {' '.join(cmd[:3])} killed")
            return None


def bench_gpt_rank(name, args, tmp):
    L, C, NH, B = CONFIGS[name]
    data = os.environ.get("COORD_DATA_DIR", os.path.expanduser("~/.cache/coord"))
    d = os.path.join(tmp, f"gpt-rank-{name}")
    os.makedirs(d)
    job = {
        "model": {"num_layers": L, "hidden_size": C, "num_attention_heads": NH,
                  "seq_length": SEQ, "max_position_embeddings": SEQ,
                  "hidden_dropout": 0.0, "attention_dropout": 0.0},
        "data": {"train_data": f"{data}/brown/brown.jsonl",
                 "vocab_file": f"{data}/gpt2/encoder.json",
                 "merge_file": f"{data}/gpt2/vocab.bpe",
                 "cache_dir": f"{data}/preprocessed", "split": "1000,0,0"},
        "training": {"micro_batch_size": B, "global_batch_size": B,
                     "train_iters": args.warmup + args.iters, "lr": 1e-4,
                     "lr_warmup_iters": 0, "clip_grad": 1.0, "log_interval": 1,
                     "eval_iters": 0, "metrics_file": f"{d}/metrics.jsonl",
                     "device": "cuda"},
        "bf16": {"enabled": True},
    }
    cfg = os.path.join(d, "job.json")
    with open(cfg, "w") as f:
        json.dump(job, f)
    rc = run([os.path.join(args.build, "bin", "gpt-rank"), "train", "--config", cfg],
             dict(os.environ), args.timeout, os.path.join(d, "log"))
    if rc != 0:
        log(f"gpt-rank {name} failed (rc {rc}); last lines:\n" + tail(os.path.join(d, "log")))
        return None
    ms = []
    with open(os.path.join(d, "metrics.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            if "elapsed_ms" in j and j["iteration"] > args.warmup:
                ms.append(j["elapsed_ms"])
    return statistics.median(ms) if ms else None


def bench_torch(name, args, tmp):
    d = os.path.join(tmp, f"torch-{name}")
    os.makedirs(d)
    out = os.path.join(d, "result.json")
    cmd = [args.python, os.path.abspath(__file__), "--torch-worker", name, "--iters",
           str(args.iters), "--warmup", str(args.warmup), "--worker-out", out]
    rc = run(cmd, dict(os.environ), args.timeout, os.path.join(d, "log"))
    if rc != 0:
        log(f"PyTorch {name} failed (rc {rc}); last lines:\n" + tail(os.path.join(d, "log")))
        return None
    with open(out) as f:
        return json.load(f)["ms"]


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def torch_worker(name, iters, warmup, out_path):
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    L, C, NH, B = CONFIGS[name]
    Vp = padded(VOCAB)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.fc_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            Bx, T, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q, k, v = (t.view(Bx, T, NH, C // NH).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(Bx, T, C))
            return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(Vp, C), nn.Embedding(SEQ, C)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.lnf = nn.LayerNorm(C)

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for b in self.blocks:
                x = b(x)
            logits = F.linear(self.lnf(x), self.wte.weight)
            return F.cross_entropy(logits.float().view(-1, Vp), targets.view(-1))

    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = GPT().to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4, fused=True)
    step = torch.compile(model)
    idx = torch.randint(0, VOCAB, (B, SEQ), device=dev)
    tgt = torch.randint(0, VOCAB, (B, SEQ), device=dev)
    times = []
    for it in range(warmup + iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        torch.cuda.synchronize()
        if it >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    assert math.isfinite(loss.item())
    with open(out_path, "w") as f:
        json.dump({"ms": statistics.median(times), "torch": torch.__version__}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-gpu")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--python", default=sys.executable, help="interpreter with PyTorch 2.x")
    ap.add_argument("--peak-tflops", type=float, default=0.0)
    ap.add_argument("--json", default="")
    ap.add_argument("--torch-worker", default="")
    ap.add_argument("--worker-out", default="")
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.iters, args.warmup, args.worker_out)
        return 0
    name = gpu_name()
    if name is None:
        print("gpu_trainer_bench: no GPU visible (nvidia-smi lists none); nothing measured")
        return 0
    peak = args.peak_tflops or peak_for(name)
    results = []
    tmp = tempfile.mkdtemp(prefix="gpu_bench.")
    try:
        print(f"GPU: {name}; dense bf16 peak {peak} TFLOP/s")
        print(f"{'config':<11} {'side':<9} {'ms/iter':>9} {'tokens/s':>11} {'MFU':>7} "
              f"{'vs PyTorch':>10}")
        for cfg in args.configs.split(","):
            L, C, NH, B = CONFIGS[cfg]
            flops = model_flops_per_iter(L, C, B)
            ours = bench_gpt_rank(cfg, args, tmp)
            ref = bench_torch(cfg, args, tmp)
            row = {"config": cfg, "gpu": name, "B": B, "T": SEQ, "gpt_rank_ms": ours,
                   "torch_ms": ref}
            for side, ms in (("gpt-rank", ours), ("PyTorch", ref)):
                if ms is None:
                    print(f"{cfg:<11} {side:<9} {'failed':>9}")
                    continue
                tps = B * SEQ / (ms / 1000.0)
                mfu = flops / (ms / 1000.0) / 1e12 / peak if peak else float("nan")
                ratio = (ref / ms) if (ours is not None and ref is not None and side ==
                                       "gpt-rank") else None
                print(f"{cfg:<11} {side:<9} {ms:9.1f} {tps:11.0f} {100 * mfu:6.1f}% "
                      f"{'' if ratio is None else f'{ratio:9.2f}x':>10}")
                row[f"{'gpt_rank' if side == 'gpt-rank' else 'torch'}_mfu"] = mfu
            results.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
