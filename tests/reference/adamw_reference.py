#!/usr/bin/python3
"""torch.optim.AdamW over a few steps, for tests/unit/trainer_model/adamw_simd_test.cc.

IN (little-endian): int32 N, int32 steps, float32 params (N), then per step float32
grads (N). OUT: float32 params (N), exp_avg (N), exp_avg_sq (N) after the last step.
Float32 on purpose: the test compares our fp32 kernel with torch's fp32 optimizer.
"""
import argparse
import struct

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--beta1", type=float, required=True)
    ap.add_argument("--beta2", type=float, required=True)
    ap.add_argument("--eps", type=float, required=True)
    ap.add_argument("--weight-decay", type=float, required=True)
    ap.add_argument("--foreach", type=int, default=0)
    a = ap.parse_args()
    with open(a.inp, "rb") as f:
        n, steps = struct.unpack("<ii", f.read(8))
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    p = torch.nn.Parameter(data[:n].clone())
    # Hyperparameters as the C++ side holds them (float32), widened to Python floats.
    f32 = lambda x: float(torch.tensor(x, dtype=torch.float32))  # noqa: E731
    opt = torch.optim.AdamW([p], lr=f32(a.lr), betas=(f32(a.beta1), f32(a.beta2)),
                            eps=f32(a.eps), weight_decay=f32(a.weight_decay),
                            foreach=bool(a.foreach))
    for s in range(steps):
        p.grad = data[n * (s + 1):n * (s + 2)].clone()
        opt.step()
    st = opt.state[p]
    out = torch.cat([p.detach(), st["exp_avg"], st["exp_avg_sq"]]).numpy().tobytes()
    with open(a.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
