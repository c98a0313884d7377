#!/usr/bin/python3
"""Plain-PyTorch GPT-2 reference for gpt-rank's CPU numerics (run with Debian's
/usr/bin/python3 + python3-torch 1.13; no transformers/safetensors packages needed).

Loads Hugging Face GPT-2 weights (model.safetensors + config.json, as gpt-rank's
ExportHfGpt2 writes them), batches from a small binary file, and writes:
  OUT/ref_grads.safetensors  d(mean loss)/d(param) on batch 0, HF names, float32
  OUT/ref.json               {"loss0", "train_losses", "lrs", "grad_norms", "dtype"}
The math is Megatron's GPT-2: pre-LN, causal attention with scale 1/sqrt(HS), tanh
GELU, final LN, LM head tied to wte, vocab padded to Vp with the padded columns
excluded from the softmax and loss (-inf), loss = mean over tokens. Training uses
torch.optim.AdamW (decay on 2-D tensors only), clip_grad_norm_, and Megatron's
AnnealingLR transcribed below (counted in samples, stepped after each iteration).

Computation is in float64 by default (--dtype float64): the reference is then exact
to ~1e-15 and the comparison measures only gpt-rank's fp32 error.

Batch file (little-endian int32): magic 0x42545047 ("GPTB"), num_batches, B, T, then
per batch: inputs (B*T), targets (B*T).
"""
import argparse
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

BATCH_MAGIC = 0x42545047


# --- safetensors (hand-parsed: 8-byte LE header length, JSON header, raw data) ------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name}: dtype {info['dtype']} unsupported (need F32)")
        b, e = info["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, offset=b, count=(e - b) // 4)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_batches(path):
    with open(path, "rb") as f:
        raw = f.read()
    magic, nb, B, T = struct.unpack("<4i", raw[:16])
    if magic != BATCH_MAGIC:
        sys.exit(f"{path}: bad magic {magic:#x}")
    ints = torch.frombuffer(bytearray(raw[16:]), dtype=torch.int32).to(torch.int64)
    ints = ints.reshape(nb, 2, B, T)
    return [(ints[i, 0], ints[i, 1]) for i in range(nb)]


# --- model ---------------------------------------------------------------------------

class GPT2(torch.nn.Module):
    """GPT-2 with HF tensor names/layouts (Conv1D: y = x @ W + b)."""

    def __init__(self, cfg, tensors, padded_vocab, dtype):
        super().__init__()
        self.L, self.C, self.NH = cfg["n_layer"], cfg["n_embd"], cfg["n_head"]
        self.V, self.Vp = cfg["vocab_size"], padded_vocab
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.names = []
        for name, t in tensors.items():
            if name.startswith("lm_head"):
                continue  # tied to wte
            key = name[len("transformer."):] if name.startswith("transformer.") else name
            p = torch.nn.Parameter(t.to(dtype))
            self.register_parameter(key.replace(".", "__"), p)
            self.names.append(("transformer." + key, key.replace(".", "__")))

    def p(self, key):
        return getattr(self, key.replace(".", "__"))

    def block(self, x, i):
        B, T, C = x.shape
        NH, HS = self.NH, C // self.NH
        h = f"h.{i}."
        a = F.layer_norm(x, (C,), self.p(h + "ln_1.weight"), self.p(h + "ln_1.bias"), self.eps)
        qkv = a @ self.p(h + "attn.c_attn.weight") + self.p(h + "attn.c_attn.bias")
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (z.view(B, T, NH, HS).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HS))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + y @ self.p(h + "attn.c_proj.weight") + self.p(h + "attn.c_proj.bias")
        m = F.layer_norm(x, (C,), self.p(h + "ln_2.weight"), self.p(h + "ln_2.bias"), self.eps)
        m = F.gelu(m @ self.p(h + "mlp.c_fc.weight") + self.p(h + "mlp.c_fc.bias"),
                   approximate="tanh")
        return x + m @ self.p(h + "mlp.c_proj.weight") + self.p(h + "mlp.c_proj.bias")

    def forward(self, idx, targets):
        B, T = idx.shape
        wte = self.p("wte.weight")
        x = wte[idx] + self.p("wpe.weight")[:T]
        for i in range(self.L):
            x = self.block(x, i)
        x = F.layer_norm(x, (self.C,), self.p("ln_f.weight"), self.p("ln_f.bias"), self.eps)
        # LM head over the padded vocabulary (zero rows), padded columns excluded.
        wte_padded = torch.cat([wte, wte.new_zeros(self.Vp - self.V, self.C)])
        logits = x @ wte_padded.t()
        logits[..., self.V:] = float("-inf")
        return F.cross_entropy(logits.view(-1, self.Vp), targets.reshape(-1))


# --- Megatron AnnealingLR (megatron/learning_rates.py), counted in samples -----------

class AnnealingLR:
    def __init__(self, max_lr, min_lr, warmup_steps, decay_steps, decay_style):
        self.max_lr, self.min_lr = max_lr, min_lr
        self.warmup_steps, self.decay_steps = warmup_steps, decay_steps
        self.decay_style = decay_style
        self.num_steps = 0

    def get_lr(self):
        if self.warmup_steps > 0 and self.num_steps <= self.warmup_steps:
            return self.max_lr * float(self.num_steps) / float(self.warmup_steps)
        if self.decay_style == "constant":
            return self.max_lr
        if self.num_steps > self.decay_steps:
            return self.min_lr
        ratio = float(self.num_steps - self.warmup_steps) / float(self.decay_steps - self.warmup_steps)
        delta = self.max_lr - self.min_lr
        coeff = (1.0 - ratio) if self.decay_style == "linear" else 0.5 * (math.cos(math.pi * ratio) + 1.0)
        return self.min_lr + coeff * delta

    def step(self, increment):
        self.num_steps += increment
        return self.get_lr()


def train(model, batches, t):
    decay = [p for _, k in model.names for p in [getattr(model, k)] if p.dim() >= 2]
    no_decay = [p for _, k in model.names for p in [getattr(model, k)] if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=0.0, betas=(t["beta1"], t["beta2"]), eps=t["eps"])
    gbs = t["micro_batch_size"] * t["accum"]
    decay_steps = t["lr_decay_iters"] * gbs
    warmup_steps = t["lr_warmup_iters"] * gbs
    sched = AnnealingLR(t["lr"], t["min_lr"], warmup_steps, decay_steps, t["lr_decay_style"])
    losses, lrs, norms = [], [], []
    for it in range(t["train_iters"]):
        lr = sched.get_lr()  # iteration it+1 uses num_steps = it * gbs
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=False)
        total = 0.0
        for m in range(t["accum"]):
            idx, tgt = batches[(it * t["accum"] + m) % len(batches)]
            loss = model(idx, tgt)
            (loss / t["accum"]).backward()
            total += loss.item() / t["accum"]
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t["clip_grad"])
        opt.step()
        sched.step(gbs)
        losses.append(total)
        lrs.append(lr)
        norms.append(float(norm))
    return losses, lrs, norms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="dir with model.safetensors + config.json")
    ap.add_argument("--batches", required=True)
    ap.add_argument("--out", required=True, help="output dir")
    ap.add_argument("--padded-vocab", type=int, required=True)
    ap.add_argument("--train", help="JSON file with the training hyper-parameters")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    with open(args.weights + "/config.json") as f:
        cfg = json.load(f)
    tensors = read_safetensors(args.weights + "/model.safetensors")
    batches = read_batches(args.batches)
    model = GPT2(cfg, tensors, args.padded_vocab, dtype)

    idx, tgt = batches[0]
    loss0 = model(idx, tgt)
    loss0.backward()
    write_safetensors(args.out + "/ref_grads.safetensors",
                      {hf: getattr(model, k).grad for hf, k in model.names})
    result = {"loss0": loss0.item(), "dtype": args.dtype}
    if args.train:
        with open(args.train) as f:
            t = json.load(f)
        model.zero_grad()
        result["train_losses"], result["lrs"], result["grad_norms"] = train(model, batches, t)
    with open(args.out + "/ref.json", "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
