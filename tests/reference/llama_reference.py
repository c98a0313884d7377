#!/usr/bin/python3
"""Plain-PyTorch Llama / Qwen2 reference for gpt-rank's CPU numerics (Debian's
/usr/bin/python3 + python3-torch; no transformers or safetensors packages).

  init  --out DIR --arch qwen2|llama [--shards N] [--dtype float32|bfloat16] [--seed S]
        writes a tiny model with random weights in Hugging Face's layout: DIR/config.json
        and its safetensors (N > 1: model-0000i-of-0000N.safetensors + the index).
  run   --weights DIR --batches F --out DIR [--train F] [--packed F] [--dtype float64]
        loads it and writes OUT/ref_grads.safetensors (d(mean loss)/d(param) on batch 0,
        HF names, float32) and OUT/ref.json {"loss0", "train_losses", "lrs", "grad_norms"}.
        --packed F: JSON {"positions", "segments", "weights"} (B*T each) for batch 0 as a
        packed SFT batch: RoPE at the given positions, attention only within a segment
        (equal ids), loss = sum(weights * CE); adds "packed_loss" and
        OUT/packed_grads.safetensors.

The architecture is written out below from the papers' and HF's definitions (not
transformers): RMSNorm in the compute dtype, x * rsqrt(mean(x^2) + eps) * w; RoPE with
rotate_half on q and k (inv_freq = 1 / base^(2i/HS), positions 0..T-1); grouped-query
attention (query head h reads KV head h // (NH / KV)); q/k/v biases when present
(Qwen2); SwiGLU MLP down(silu(gate(x)) * up(x)); final RMSNorm; LM head lm_head or the
tied embedding; loss = mean cross-entropy over the V logits. Training: torch AdamW
(decay on 2-D tensors only), clip_grad_norm_, Megatron's AnnealingLR (gpt_reference.py).
Threads are fixed at 1. Batch file format: gpt_reference.py.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import AnnealingLR, read_batches, write_safetensors  # noqa: E402

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


# --- safetensors, whole or sharded ------------------------------------------------------

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
        dt = DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        size = torch.tensor([], dtype=dt).element_size()
        t = torch.frombuffer(data, dtype=dt, offset=b, count=(e - b) // size)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def read_checkpoint(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(d, "model.safetensors"))
    with open(index) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    out = {}
    for name in files:
        out.update(read_safetensors(os.path.join(d, name)))
    return out


def write_typed_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    code = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}[dtype]
    for name, t in tensors.items():
        b = t.detach().to(dtype).contiguous().view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# --- the tiny models ----------------------------------------------------------------------

SHAPES = {
    # Qwen2-shaped: GQA (2 query groups), q/k/v biases, tied embedding, theta 1e6.
    "qwen2": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=64,
                  intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, vocab_size=500,
                  rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                  hidden_act="silu", attention_dropout=0.0, initializer_range=0.02,
                  use_sliding_window=False, sliding_window=64, max_window_layers=2,
                  bos_token_id=1, eos_token_id=2, torch_dtype="float32", use_cache=True),
    # Llama-shaped (Llama-2 style: no GQA), no biases, untied lm_head.
    "llama": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=64,
                  intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=4, max_position_embeddings=64, vocab_size=500,
                  rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None,
                  tie_word_embeddings=False, hidden_act="silu", attention_bias=False,
                  mlp_bias=False, attention_dropout=0.0, initializer_range=0.02,
                  pretraining_tp=1, torch_dtype="float32", use_cache=True),
}


def init_tensors(cfg, gen):
    C, F_, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    NH, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    HS = C // NH
    bias = cfg["model_type"] == "qwen2"

    def w(*shape):
        return torch.randn(*shape, generator=gen) * 0.05

    def norm():
        return 1.0 + 0.1 * torch.randn(C, generator=gen)

    t = {"model.embed_tokens.weight": torch.randn(V, C, generator=gen) * 0.1}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm()
        for name, rows in (("q_proj", NH * HS), ("k_proj", KV * HS), ("v_proj", KV * HS)):
            t[p + f"self_attn.{name}.weight"] = w(rows, C)
            if bias:
                t[p + f"self_attn.{name}.bias"] = w(rows) * 4
        t[p + "self_attn.o_proj.weight"] = w(C, NH * HS)
        t[p + "post_attention_layernorm.weight"] = norm()
        t[p + "mlp.gate_proj.weight"] = w(F_, C)
        t[p + "mlp.up_proj.weight"] = w(F_, C)
        t[p + "mlp.down_proj.weight"] = w(C, F_)
    t["model.norm.weight"] = norm()
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = w(V, C)
    return t


def init(args):
    cfg = dict(SHAPES[args.arch])
    cfg["torch_dtype"] = args.dtype
    gen = torch.Generator().manual_seed(args.seed)
    tensors = init_tensors(cfg, gen)
    dtype = getattr(torch, args.dtype)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    names = list(tensors)
    if args.shards == 1:
        write_typed_safetensors(os.path.join(args.out, "model.safetensors"), tensors, dtype)
        return
    per = math.ceil(len(names) / args.shards)
    weight_map = {}
    for s in range(args.shards):
        file = f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s * per:(s + 1) * per]}
        write_typed_safetensors(os.path.join(args.out, file), part, dtype)
        weight_map.update({n: file for n in part})
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)


# --- the architecture -----------------------------------------------------------------------

class LlamaFamily(torch.nn.Module):
    def __init__(self, cfg, tensors, dtype):
        super().__init__()
        self.cfg = cfg
        self.names = []
        for name, t in tensors.items():
            key = name.replace(".", "__")
            self.register_parameter(key, torch.nn.Parameter(t.to(dtype)))
            self.names.append((name, key))

    def p(self, name):
        return getattr(self, name.replace(".", "__"))

    def has(self, name):
        return hasattr(self, name.replace(".", "__"))

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["rms_norm_eps"]) * w

    def linear(self, x, name):
        y = x @ self.p(name + ".weight").t()
        return y + self.p(name + ".bias") if self.has(name + ".bias") else y

    def rope(self, x, T, pos=None):  # x (B, H, T, HS); rotate_half pairing; pos (B, T)
        HS = x.shape[-1]
        inv_freq = 1.0 / (self.cfg["rope_theta"] ** (torch.arange(0, HS, 2, dtype=x.dtype) / HS))
        p = torch.arange(T, dtype=x.dtype) if pos is None else pos.to(x.dtype)[:, None, :]
        ang = p[..., None] * inv_freq  # (T, HS/2) or (B, 1, T, HS/2)
        cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
        x1, x2 = x[..., :HS // 2], x[..., HS // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def block(self, x, i, pos=None, seg=None):
        B, T, C = x.shape
        NH, KV = self.cfg["num_attention_heads"], self.cfg["num_key_value_heads"]
        HS = C // NH
        p = f"model.layers.{i}."
        a = self.rms(x, self.p(p + "input_layernorm.weight"))
        q = self.linear(a, p + "self_attn.q_proj").view(B, T, NH, HS).transpose(1, 2)
        k = self.linear(a, p + "self_attn.k_proj").view(B, T, KV, HS).transpose(1, 2)
        v = self.linear(a, p + "self_attn.v_proj").view(B, T, KV, HS).transpose(1, 2)
        q, k = self.rope(q, T, pos), self.rope(k, T, pos)
        k = k.repeat_interleave(NH // KV, dim=1)  # query head h reads KV head h // (NH/KV)
        v = v.repeat_interleave(NH // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        if seg is not None:  # (B, 1, T, T): a packed sample sees only itself
            mask = (mask & (seg[:, :, None] == seg[:, None, :]))[:, None]
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, NH * HS)
        x = x + self.linear(y, p + "self_attn.o_proj")
        m = self.rms(x, self.p(p + "post_attention_layernorm.weight"))
        m = F.silu(self.linear(m, p + "mlp.gate_proj")) * self.linear(m, p + "mlp.up_proj")
        return x + self.linear(m, p + "mlp.down_proj")

    def forward(self, idx, targets, pos=None, seg=None, weights=None):
        x = self.p("model.embed_tokens.weight")[idx]
        for i in range(self.cfg["num_hidden_layers"]):
            x = self.block(x, i, pos, seg)
        x = self.rms(x, self.p("model.norm.weight"))
        head = "lm_head.weight" if self.has("lm_head.weight") else "model.embed_tokens.weight"
        logits = x @ self.p(head).t()
        if weights is None:
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1),
                             reduction="none")
        return (ce * weights.reshape(-1).to(ce.dtype)).sum()


def train(model, batches, t):
    params = [getattr(model, k) for _, k in model.names]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2],
                              "weight_decay": t["weight_decay"]},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=0.0, betas=(t["beta1"], t["beta2"]), eps=t["eps"])
    gbs = t["micro_batch_size"] * t["accum"]
    sched = AnnealingLR(t["lr"], t["min_lr"], t["lr_warmup_iters"] * gbs,
                        t["lr_decay_iters"] * gbs, t["lr_decay_style"])
    losses, lrs, norms = [], [], []
    for it in range(t["train_iters"]):
        lr = sched.get_lr()
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=False)
        total = 0.0
        for m in range(t["accum"]):
            idx, tgt = batches[(it * t["accum"] + m) % len(batches)]
            loss = model(idx, tgt)
            (loss / t["accum"]).backward()
            total += loss.item() / t["accum"]
        norm = torch.nn.utils.clip_grad_norm_(params, t["clip_grad"])
        opt.step()
        sched.step(gbs)
        losses.append(total)
        lrs.append(lr)
        norms.append(float(norm))
    return losses, lrs, norms


def run(args):
    dtype = getattr(torch, args.dtype)
    with open(os.path.join(args.weights, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    model = LlamaFamily(cfg, read_checkpoint(args.weights), dtype)
    batches = read_batches(args.batches)
    idx, tgt = batches[0]
    loss0 = model(idx, tgt)
    loss0.backward()
    write_safetensors(os.path.join(args.out, "ref_grads.safetensors"),
                      {hf: getattr(model, k).grad for hf, k in model.names})
    result = {"loss0": loss0.item(), "dtype": args.dtype}
    if args.packed:
        with open(args.packed) as f:
            pk = json.load(f)
        shape = idx.shape
        pos = torch.tensor(pk["positions"], dtype=torch.int64).reshape(shape)
        seg = torch.tensor(pk["segments"], dtype=torch.int64).reshape(shape)
        w = torch.tensor(pk["weights"], dtype=torch.float64).reshape(shape)
        model.zero_grad()
        packed = model(idx, tgt, pos, seg, w)
        packed.backward()
        write_safetensors(os.path.join(args.out, "packed_grads.safetensors"),
                          {hf: getattr(model, k).grad for hf, k in model.names})
        result["packed_loss"] = packed.item()
    if args.train:
        with open(args.train) as f:
            t = json.load(f)
        model.zero_grad()
        result["train_losses"], result["lrs"], result["grad_norms"] = train(model, batches, t)
    with open(os.path.join(args.out, "ref.json"), "w") as f:
        json.dump(result, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("init")
    a.add_argument("--out", required=True)
    a.add_argument("--arch", required=True, choices=sorted(SHAPES))
    a.add_argument("--shards", type=int, default=1)
    a.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    a.add_argument("--seed", type=int, default=1234)
    r = sub.add_parser("run")
    r.add_argument("--weights", required=True)
    r.add_argument("--batches", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--train")
    r.add_argument("--packed")
    r.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    init(args) if args.cmd == "init" else run(args)


if __name__ == "__main__":
    main()
