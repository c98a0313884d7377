#!/usr/bin/python3
"""Greedy generation with the plain-PyTorch Llama / Qwen2 reference (llama_reference.py's
LlamaFamily; Debian's /usr/bin/python3 + python3-torch), for the KV-cache tests.

  --weights DIR --prompt 1,2,3 --new-tokens N --out FILE [--dtype float64]
        loads DIR (llama_reference.py init's HF layout) and generates N ids greedily,
        re-running the whole sequence every token (no cache); writes FILE
        {"tokens": [...], "margins": [...]}: the new ids and, per step, the gap between
        the two largest logits (a near-tie may legitimately go either way in fp32).
Threads are fixed at 1.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import LlamaFamily, read_checkpoint  # noqa: E402


def last_logits(model, seq):
    """The LM head's logits after the last token of seq (forward without the loss)."""
    x = model.p("model.embed_tokens.weight")[torch.tensor([seq])]
    for i in range(model.cfg["num_hidden_layers"]):
        x = model.block(x, i)
    x = model.rms(x, model.p("model.norm.weight"))
    head = "lm_head.weight" if model.has("lm_head.weight") else "model.embed_tokens.weight"
    return (x @ model.p(head).t())[0, -1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--prompt", required=True, help="comma-separated token ids")
    ap.add_argument("--new-tokens", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.weights, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    model = LlamaFamily(cfg, read_checkpoint(args.weights), getattr(torch, args.dtype))
    seq = [int(x) for x in args.prompt.split(",")]
    tokens, margins = [], []
    with torch.no_grad():
        for _ in range(args.new_tokens):
            top = torch.topk(last_logits(model, seq), 2)
            tokens.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            seq.append(tokens[-1])
    with open(args.out, "w") as f:
        json.dump({"tokens": tokens, "margins": margins}, f)


if __name__ == "__main__":
    main()
