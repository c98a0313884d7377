#!/usr/bin/python3
"""The pipeline bubble of gpt-rank's Megatron schedules, measured on this machine's
CPUs against the theory: 1F1B at PP 2 and PP 4, whose bubble is (p-1)/m, and the
interleaved schedule with 2 virtual chunks per stage, (p-1)/(m v); m = 4 and 8
micro-batches per iteration (global batch = m x micro-batch, DP 1, TP 1).

The model: 8 layers, hidden 256, 8 heads, seq 128, micro-batch 2, no dropout, one
thread per rank. Its vocabulary is bytes (--vocab bytes, the default: 256 byte
tokens + <|endoftext|>, written to the temp dir in GPT-2's vocab.json / merges.txt
format, no merges) so that the stages are even: with GPT-2's 50257 tokens the LM head
alone is about half of this model's compute and all of it lands on the last stage,
which the bubble theory does not model (--vocab gpt2 measures that case).

Two figures per run, both read from rank 0's metrics.jsonl (the median of the
iterations after --warmup, over --repeats runs):

  bubble    (t - t1 / p) / (t1 / p): t is the forward-backward time per iteration
            (the schedule, the flush, the tied-embedding all-reduce), t1 the same at
            PP 1 under the same per-rank CPU limit: the same work split evenly over p
            stages has no bubble in t1 / p. Megatron's definition: bubble time over
            ideal time, (p-1)/m.
  idle      stage 0's pp-comm timer over its busy time, pp-comm / (t - pp-comm): the
            time the first stage waits in pipeline sends and receives (and the loss
            broadcast and the scalar grad-norm all-reduce over the stages), which with
            even stages and free communication is the bubble, (p-1)/m per stage. It
            needs no PP 1 run; busy / (t1 / p) says how far the stage's compute is
            from the PP 1 run's, the assumption behind `bubble`.

Two CPU modes:
  cores     one thread per rank, nothing else: PP 2 has a core per stage; PP 4 puts 4
            ranks on 2 cores, where a stage that waits gives its core to a stage that
            computes: the bubble is filled by the other stages and the figure measures
            the 2 cores, not the schedule (t cannot go below t1 / 2).
  capped    every rank (and the PP 1 baseline) in its own cgroup (v1 cpu controller)
            capped at --share of a CPU (CFS quota per 5 ms period): p stages are p
            equal, slower devices that cannot lend each other their idle time, as p
            GPUs; PP 4 at 0.4 CPU each uses at most 1.6 of the 2 cores. The groups get
            the largest CFS weight, so other load on the machine does not take their
            share (it still shares caches and memory bandwidth). Needs write access to
            /sys/fs/cgroup/cpu (skipped with a note otherwise).

Every child is killed by PID on timeout, error or Ctrl-C; the temp dir and cgroups are
removed.

  /usr/bin/python3 bench/pipeline_bubble_bench.py --build build-nocuda --json /tmp/bubble.json
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import OtherLoad, loadavg, log, run_ranks, wait_idle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("COORD_DATA_DIR") or os.path.expanduser("~/.cache/coord")
CGROUP_CPU = "/sys/fs/cgroup/cpu"

# tag, pp, vpp (1: 1F1B)
RUNS = [("PP1", 1, 1), ("PP2 1F1B", 2, 1), ("PP2 interleaved v2", 2, 2), ("PP4 1F1B", 4, 1),
        ("PP4 interleaved v2", 4, 2)]

# ---------------------------------------------------------------------------
# The job


def bytes_to_unicode():
    """GPT-2 encoder.py's byte -> printable character map."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) +
          list(range(ord("\xae"), ord("\xff") + 1)))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_byte_vocab(tmp):
    """A byte-level vocab in GPT-2's file format (no merges): ids 0-255 are the bytes."""
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    vocab["<|endoftext|>"] = 256
    with open(os.path.join(tmp, "bytes-vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(tmp, "bytes-merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return os.path.join(tmp, "bytes-vocab.json"), os.path.join(tmp, "bytes-merges.txt")


def write_job(tmp, vocab, hidden):
    if vocab == "bytes":
        vocab_file, merge_file = write_byte_vocab(tmp)
        cache = os.path.join(tmp, "cache")  # preprocessed once, by the first (PP 1) run
    else:
        vocab_file = os.path.join(DATA, "gpt2", "encoder.json")
        merge_file = os.path.join(DATA, "gpt2", "vocab.bpe")
        cache = os.path.join(DATA, "preprocessed")
    job = {
        "model": {"num_layers": 8, "hidden_size": hidden, "num_attention_heads": 8,
                  "seq_length": 128, "max_position_embeddings": 128, "hidden_dropout": 0.0,
                  "attention_dropout": 0.0},
        "data": {"train_data": os.path.join(DATA, "brown", "brown.jsonl"), "vocab_file": vocab_file,
                 "merge_file": merge_file, "cache_dir": cache, "split": "949,50,1"},
        "training": {"micro_batch_size": 2, "lr": 1e-3, "min_lr": 1e-4, "lr_warmup_iters": 1,
                     "log_interval": 1, "eval_iters": 0, "save": "", "load": "", "threads": 1},
    }
    path = os.path.join(tmp, "job.json")
    with open(path, "w") as f:
        json.dump(job, f, indent=2)
    return path


# ---------------------------------------------------------------------------
# CPU caps


class CpuCaps:
    """One cgroup per rank under /sys/fs/cgroup/cpu/<name>, each capped at `share` of a
    CPU; wrap() makes a rank's command join rank$RANK's group before it execs."""

    def __init__(self, share, ranks, period_us):
        quota_us = int(share * period_us)
        if quota_us < 1000:  # the kernel's minimum
            sys.exit("--share x --period-us is %d us: the CFS quota must be >= 1000 us" % quota_us)
        self.root = os.path.join(CGROUP_CPU, "pp-bubble-bench-%d" % os.getpid())
        self.groups = []
        os.mkdir(self.root)
        try:
            # The largest weight: under other load CFS still gives every rank its whole
            # share (the caps bound what that takes from the rest: p x share CPUs).
            write_file(os.path.join(self.root, "cpu.shares"), "262144")
            for r in range(ranks):
                g = os.path.join(self.root, "rank%d" % r)
                os.mkdir(g)
                self.groups.append(g)
                write_file(os.path.join(g, "cpu.cfs_period_us"), str(period_us))
                write_file(os.path.join(g, "cpu.cfs_quota_us"), str(quota_us))
        except OSError:
            self.remove()
            raise

    def wrap(self, argv):
        script = 'echo $$ > "%s/rank$RANK/cgroup.procs" && exec "$@"' % self.root
        return ["/bin/sh", "-c", script, "sh"] + argv

    def remove(self):
        for g in self.groups + [self.root]:
            try:
                os.rmdir(g)
            except OSError as e:
                log("could not remove %s: %s" % (g, e))


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def cgroups_writable():
    probe = os.path.join(CGROUP_CPU, "pp-bubble-probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Runs


def train(gpt_rank, job, tmp, tag, pp, vpp, m, iters, caps, timeout):
    """Rank 0's metrics records of one run."""
    metrics = os.path.join(tmp, tag + ".jsonl")
    sets = ["training.train_iters=%d" % iters, "training.global_batch_size=%d" % (2 * m),
            "training.metrics_file=" + metrics, "parallel.pipeline_model_parallel_size=%d" % pp,
            "parallel.virtual_pipeline_model_parallel_size=%d" % vpp]
    argv = [gpt_rank, "train", "--config", job]
    for s in sets:
        argv += ["--set", s]
    if caps is not None:
        argv = caps.wrap(argv)
    run_ranks(argv, pp, 1, tmp, tag, timeout)
    with open(metrics) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize(records, warmup):
    measured = records[warmup:]
    fb = [r["timers_ms"]["forward-backward"] for r in measured]
    pp_comm = [r["timers_ms"].get("pp-comm", 0.0) for r in measured]
    return {"fb_ms": fb, "pp_comm_ms": pp_comm,
            "elapsed_ms": [r["elapsed_ms"] for r in measured],
            "losses": [r["lm_loss"] for r in records]}


def theory(pp, vpp, m):
    return (pp - 1) / (m * vpp)


def figures(res, base, pp, vpp, m):
    """The run's bubble and stage-0 idle against the theory, from the pooled medians."""
    t = statistics.median(res["fb_ms"])
    comm = statistics.median(res["pp_comm_ms"])
    t1 = statistics.median(base["fb_ms"])
    ideal = t1 / pp
    th = theory(pp, vpp, m)
    loss_dev = max(abs(a - b) / abs(b) for a, b in zip(res["losses"], base["losses"]))
    out = {"fb_ms": t, "pp_comm_ms": comm, "ideal_ms": ideal, "theory": th,
           "busy_vs_ideal": (t - comm) / ideal,
           "bubble": t / ideal - 1, "idle": comm / (t - comm) if pp > 1 else 0.0,
           "iter_spread": (max(res["fb_ms"]) - min(res["fb_ms"])) / t,
           "loss_rel_dev_vs_pp1": loss_dev}
    out["bubble_ratio"] = out["bubble"] / th if th else None
    out["idle_ratio"] = out["idle"] / th if th else None
    return out


def run_mode(args, gpt_rank, job, tmp, mode, caps):
    """All runs of one mode, repeats interleaved so that drift in the machine's other
    load falls on every configuration alike. Returns {(tag, m): pooled result}."""
    pooled = {}
    for rep in range(args.repeats):
        for m in args.micro:
            for tag, pp, vpp in RUNS:
                if pp > 1 and vpp > 1 and m % pp:
                    continue  # the interleaved schedule needs m % pp == 0
                if args.only and tag != "PP1" and tag not in args.only:
                    continue
                name = "%s-%s-m%d-r%d" % (mode, tag.replace(" ", "-"), m, rep)
                la = loadavg()[0]
                records = train(gpt_rank, job, tmp, name, pp, vpp, m, args.warmup + args.iters,
                                caps, args.timeout)
                res = summarize(records, args.warmup)
                p = pooled.setdefault((tag, m), {"fb_ms": [], "pp_comm_ms": [], "elapsed_ms": [],
                                                 "losses": res["losses"], "load": []})
                for k in ("fb_ms", "pp_comm_ms", "elapsed_ms"):
                    p[k] += res[k]
                p["load"].append(la)
                log("%-7s %-19s m=%d: forward-backward %s ms, pp-comm %s ms (load %.2f)" % (
                    mode, tag, m, " ".join("%.0f" % x for x in res["fb_ms"]),
                    " ".join("%.0f" % x for x in res["pp_comm_ms"]), la))
    return pooled


def table(mode, pooled, micro):
    rows = []
    for m in micro:
        base = pooled.get(("PP1", m))
        for tag, pp, vpp in RUNS:
            if pp == 1 or (tag, m) not in pooled:
                continue
            f = figures(pooled[(tag, m)], base, pp, vpp, m)
            f.update(mode=mode, run=tag, pp=pp, vpp=vpp, m=m,
                     pp1_fb_ms=statistics.median(base["fb_ms"]),
                     load=max(pooled[(tag, m)]["load"]))
            rows.append(f)
    return rows


def print_table(rows):
    print("\n| mode | run | m | t1 (PP 1) ms | t ms | t1/p ms | bubble | theory | "
          "measured/theory | stage-0 idle | idle/theory | stage-0 busy / (t1/p) | spread | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %d | %.0f | %.0f | %.0f | %.1f%% | %.1f%% | %.2f | %.1f%% | %.2f | "
              "%.2f | %.0f%% | %.2f |" % (
                  r["mode"], r["run"], r["m"], r["pp1_fb_ms"], r["fb_ms"], r["ideal_ms"],
                  100 * r["bubble"], 100 * r["theory"], r["bubble_ratio"], 100 * r["idle"],
                  r["idle_ratio"], r["busy_vs_ideal"], 100 * r["iter_spread"], r["load"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--iters", type=int, default=4, help="measured iterations per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each configuration")
    ap.add_argument("--micro", default="4,8", help="micro-batches per iteration, comma-separated")
    ap.add_argument("--modes", default="cores,capped", help="cores and/or capped")
    ap.add_argument("--share", type=float, default=0.4, help="CPU share per rank when capped")
    ap.add_argument("--period-us", type=int, default=5000,
                    help="CFS period of the caps: a throttled rank waits up to (1 - share) x this")
    ap.add_argument("--vocab", choices=("bytes", "gpt2"), default="bytes")
    ap.add_argument("--hidden", type=int, default=256, help="hidden size (8 heads)")
    ap.add_argument("--only", help="comma-separated run tags besides PP1 (default: all)")
    ap.add_argument("--wait-idle", type=float, default=0,
                    help="wait up to this many s for the 1-minute load to drop below 1")
    ap.add_argument("--timeout", type=float, default=600, help="per run, s")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    args.micro = [int(x) for x in args.micro.split(",")]
    args.only = args.only.split(",") if args.only else None
    gpt_rank = os.path.join(args.build, "bin", "gpt-rank")
    if not os.path.exists(gpt_rank):
        sys.exit("no %s: build first (scripts/build.sh)" % gpt_rank)
    for f in ("brown/brown.jsonl", "gpt2/encoder.json", "gpt2/vocab.bpe"):
        if not os.path.exists(os.path.join(DATA, f)):
            sys.exit("no %s under %s (scripts/fetch-demo-data.sh)" % (f, DATA))
    modes = args.modes.split(",")
    if "capped" in modes and not cgroups_writable():
        print("note: %s is not writable: the capped mode is skipped" % CGROUP_CPU)
        modes.remove("capped")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # gpt-rank's threads are training.threads
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="pp-bubble-bench-")
    start_load = wait_idle(args.wait_idle, 1.0)
    other = OtherLoad()
    other.start()
    rows, caps = [], None
    try:
        job = write_job(tmp, args.vocab, args.hidden)
        for mode in modes:
            caps = CpuCaps(args.share, 4, args.period_us) if mode == "capped" else None
            rows += table(mode, run_mode(args, gpt_rank, job, tmp, mode, caps), args.micro)
            if caps is not None:
                caps.remove()
                caps = None
    finally:
        other.stop_ev.set()
        if caps is not None:
            caps.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    end_load = loadavg()
    print("load average at start %s, at end %s; %s" % (
        " ".join("%.2f" % x for x in start_load), " ".join("%.2f" % x for x in end_load),
        other.summary()))
    print_table(rows)
    bad = [r for r in rows if r["loss_rel_dev_vs_pp1"] > 1e-4]
    for r in bad:
        print("WARNING: %s %s m=%d: losses differ from PP 1 by %.2g (relative)" % (
            r["mode"], r["run"], r["m"], r["loss_rel_dev_vs_pp1"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"vocab": args.vocab, "hidden": args.hidden, "share": args.share,
                       "period_us": args.period_us, "warmup": args.warmup,
                       "iters": args.iters, "repeats": args.repeats,
                       "load_start": start_load, "load_end": end_load,
                       "other_load": other.summary(), "rows": rows}, f, indent=2)
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
