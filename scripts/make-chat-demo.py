#!/usr/bin/env python3
"""Writes the demo chat set for supervised fine-tuning (configs/data/chat-demo.jsonl).

400 short conversations on generated tasks (arithmetic, reversing and sorting, counting
letters), a quarter of them two turns long, spread over the four formats gpt-rank reads
(ms-swift messages, query/response/history, Alpaca, ShareGPT). Everything is generated
here from a fixed seed: no third-party text, so the file is as free as this script.
Usage: scripts/make-chat-demo.py [OUT]   (default: configs/data/chat-demo.jsonl)
"""
import json
import os
import random
import sys

WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "forest", "candle",
         "window", "garden", "rocket", "silver", "planet", "butter", "castle", "dragon", "mirror"]


def task(rng):
    kind = rng.randrange(6)
    a, b = rng.randrange(2, 50), rng.randrange(2, 50)
    w = rng.choice(WORDS)
    if kind == 0:
        return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
    if kind == 1:
        hi, lo = max(a, b), min(a, b)
        return f"What is {hi} minus {lo}?", f"{hi} minus {lo} is {hi - lo}."
    if kind == 2:
        a, b = a % 13, b % 13
        return f"What is {a} times {b}?", f"{a} times {b} is {a * b}."
    if kind == 3:
        return f"Reverse the word \"{w}\".", f"\"{w}\" reversed is \"{w[::-1]}\"."
    if kind == 4:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(3, 7)))
        return (f"Sort the digits of {digits} from smallest to largest.",
                f"Sorted, the digits of {digits} are {''.join(sorted(digits))}.")
    letter = rng.choice(sorted(set(w)))
    n = w.count(letter)
    return (f"How many times does the letter {letter} appear in \"{w}\"?",
            f"The letter {letter} appears {n} time{'s' if n != 1 else ''} in \"{w}\".")


def sample(i, rng):
    turns = [task(rng) for _ in range(2 if rng.random() < 0.25 else 1)]
    system = "You answer in one short sentence." if rng.random() < 0.3 else None
    fmt = i % 4
    if fmt == 0:  # ms-swift messages
        msgs = [{"role": "system", "content": system}] if system else []
        for q, r in turns:
            msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": r}]
        return {"messages": msgs}
    if fmt == 1:  # query / response / history
        out = {"query": turns[-1][0], "response": turns[-1][1]}
        if len(turns) > 1:
            out["history"] = [list(t) for t in turns[:-1]]
        if system:
            out["system"] = system
        return out
    if fmt == 2:  # Alpaca: one turn, the question as the input
        q, r = turns[0]
        out = {"instruction": "Answer in one sentence.", "input": q, "output": r}
        if system:
            out["system"] = system
        return out
    conv = [{"from": "system", "value": system}] if system else []  # ShareGPT
    for q, r in turns:
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": r}]
    return {"conversations": conv}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "configs/data/chat-demo.jsonl")
    rng = random.Random(20241207)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(400):
            f.write(json.dumps(sample(i, rng)) + "\n")
    print(f"wrote 400 conversations to {out}")


if __name__ == "__main__":
    main()
