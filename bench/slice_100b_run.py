#!/usr/bin/python3
"""The reduced 100B run: configs/100B-slice.json (two layers of the 100B GPT, hidden
4096, 32 heads) as the 100B job is laid out, tensor parallel 2 inside each of two
simulated nodes x data parallel 2 across them, ZeRO-3, the optimizer on the CPU,
started the way a user starts it: `coordctl start --config ... --local-nodes 2`
(an in-process coordinator and two agents on 127.0.0.1 and 127.0.0.2).

  1. the full run: 6 iterations, a checkpoint at 3 and at 6;
  2. a resume from the full run's iteration 3 (a copy of it, alone in a new save
     directory) to iteration 6: every file of iteration 6 (both tensor shards'
     parameters and all ZeRO partitions) must equal the full run's, bitwise, and
     the losses of iterations 4-6 too;
  3. the peak resident memory of every rank (gpt-rank's "peak resident memory" line)
     against `gpt-rank plan`'s per-rank figure for the same layout.

Exit status 0 when 2. holds and every rank is within --tolerance of the plan.

  /usr/bin/python3 bench/slice_100b_run.py --build build
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIB = 1024.0 * 1024.0


def write_config(tmp, name, iters, save, load, model_sets=()):
    with open(os.path.join(ROOT, "configs", "100B-slice.json")) as f:
        job = json.load(f)
    for kv in model_sets:  # --model KEY=VALUE: a narrower slice where the full one does not fit
        key, value = kv.split("=", 1)
        job["model"][key] = json.loads(value)
    path = os.path.join(tmp, name + ".json")
    job["name"] = "100B-slice-" + name
    job["launch"]["command"][-1] = path
    job["training"].update({"train_iters": iters, "save": save, "load": load,
                            "metrics_file": os.path.join(save, "metrics.jsonl")})
    with open(path, "w") as f:
        json.dump(job, f, indent=2)
    return path


def coordctl_run(build, cfg, log_path, timeout):
    env = dict(os.environ, PATH=os.path.join(build, "bin") + ":" + os.environ["PATH"])
    with open(log_path, "w") as log:
        proc = subprocess.Popen([os.path.join(build, "bin", "coordctl"), "start", "--config", cfg,
                                 "--local-nodes", "2"], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # coordctl kills the job's ranks on Ctrl-C
            proc.wait(timeout=60)
            sys.exit("%s: timed out after %.0f s" % (cfg, timeout))
    with open(log_path) as f:
        text = f.read()
    if rc != 0:
        sys.exit("%s: coordctl exited %d:\n%s" % (cfg, rc, text[-4000:]))
    return text


def losses(save):
    out = {}
    with open(os.path.join(save, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "lm_loss" in r:
                out[r["iteration"]] = r["lm_loss"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--model", action="append", default=[],
                    help="override a model key, e.g. --model hidden_size=2048 (repeatable)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="slice-100b-")
    ok = True
    try:
        full = os.path.join(tmp, "full")
        cfg = write_config(tmp, "full", 6, full, full, args.model)
        plan = subprocess.run([os.path.join(args.build, "bin", "gpt-rank"), "plan", "--config", cfg,
                               "--nodes", "2", "--gpus-per-node", "2", "--json"],
                              capture_output=True, text=True, timeout=60)
        planned = json.loads(plan.stdout)["per_rank_bytes"]["total"] / MIB
        text = coordctl_run(args.build, cfg, os.path.join(tmp, "full.log"), args.timeout)
        peaks = {}
        for m in re.finditer(r"\[([0-9.]+:\d+)\][^\n]*peak resident memory: (\d+) MiB", text):
            peaks[m.group(1)] = int(m.group(2))
        print("full run: 6 iterations, losses %s" %
              " ".join("%.4f" % v for _, v in sorted(losses(full).items())))

        resume = os.path.join(tmp, "resume")
        os.makedirs(resume)
        shutil.copytree(os.path.join(full, "iter_0000003"), os.path.join(resume, "iter_0000003"))
        with open(os.path.join(resume, "latest_checkpointed_iteration.txt"), "w") as f:
            f.write("3\n")
        coordctl_run(args.build, write_config(tmp, "resume", 6, resume, resume, args.model),
                     os.path.join(tmp, "resume.log"), args.timeout)
        same, compared = True, 0
        for shard in ("mp_rank_00", "mp_rank_01"):
            a_dir = os.path.join(full, "iter_0000006", shard)
            for name in sorted(os.listdir(a_dir)):
                if not name.endswith(".bin"):
                    continue
                with open(os.path.join(a_dir, name), "rb") as a, \
                        open(os.path.join(resume, "iter_0000006", shard, name), "rb") as b:
                    equal = a.read() == b.read()
                compared += 1
                same &= equal
                print("  iteration 6 %s/%s: %s" % (shard, name, "bitwise equal" if equal else
                                                   "DIFFERS"))
        want, got = losses(full), losses(resume)
        same_loss = all(want[i] == got[i] for i in (4, 5, 6))
        print("resume from iteration 3: %d files %s; losses 4-6 %s" % (
            compared, "bitwise equal" if same else "DIFFER",
            "equal" if same_loss else "DIFFER: %s vs %s" % (want, got)))
        ok = same and same_loss and compared == 6
        print("\npeak resident memory per rank vs gpt-rank plan (%.0f MiB per rank):" % planned)
        for rank, mib in sorted(peaks.items()):
            dev = (mib - planned) / planned
            print("  %-16s %6d MiB  %+.1f%%" % (rank, mib, 100 * dev))
            ok &= abs(dev) <= args.tolerance
        ok &= len(peaks) == 4
    finally:
        if args.keep:
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
