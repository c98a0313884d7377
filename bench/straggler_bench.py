#!/usr/bin/python3
"""Straggler detection benchmark: the time from a rank's slowdown to its name
appearing in `coordctl status`, through the whole control plane (coordd, one
coord-agent per simulated node on 127.0.0.2.., a data-parallel gpt-rank job on the
demo data, gloo on loopback).

Each run starts a fresh job in which one rank (the last) computes DELAY ms longer per
iteration from iteration FROM on (GPT_RANK_INJECT_DELAY_MS="R:DELAY@FROM"), and polls
`coordctl status --json` every --poll seconds until a straggler is named:

  slowdown      the slowed rank's own log line "GPT_RANK_INJECT_DELAY_MS: ... from
                iteration FROM" (its wall clock, ms; the start of iteration FROM)
  named         coordd's stragglers[].since_ms (its wall clock: same machine)
  seen          the first poll of `coordctl status --json` that shows it
  iterations    since_iteration - FROM + 1: slow iterations coordd had seen by then

plus the score at naming, whether the right rank (and node) was named, and for every
run the ranks named before the slowdown (false positives). One clean run (no delay)
per repeat counts false positives over a whole job. Delays are given in ms and also
shown as the slowed rank's compute over its peers' before the slowdown.

Everything started is stopped by PID (jobs killed through coordctl first), also on
errors and Ctrl-C; the temp dir is removed unless --keep. Standard library only.

  python3 bench/straggler_bench.py --build build-nocuda                 # 2 x 2 ranks
  python3 bench/straggler_bench.py --build build --nodes 4 --nproc 2 --delays 100,25
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import log  # noqa: E402


def data_dir():
    return os.environ.get("COORD_DATA_DIR") or os.path.join(
        os.environ.get("HOME", "/root"), ".cache", "coord")


class Cluster:
    """coordd and `nodes` agents on loopback, stopped by PID on close()."""

    def __init__(self, bindir, tmp, nodes, coordd_args):
        self.bindir, self.tmp, self.procs = bindir, tmp, []
        port_file = os.path.join(tmp, "coordd.port")
        self._spawn([os.path.join(bindir, "coordd"), "--listen", "127.0.0.1:0", "--state-dir",
                     os.path.join(tmp, "coordd"), "--port-file", port_file] + coordd_args,
                    "coordd.log")
        self.coordinator = "127.0.0.1:%d" % int(self._wait_file(port_file))
        hosts = []
        for i in range(nodes):
            addr = "127.0.0.%d" % (i + 2)
            pf = os.path.join(tmp, "agent%d.port" % i)
            self._spawn([os.path.join(bindir, "coord-agent"), "--listen", addr + ":0",
                         "--state-dir", os.path.join(tmp, "agent%d" % i), "--port-file", pf],
                        "agent%d.log" % i)
            hosts.append("%s:%d" % (addr, int(self._wait_file(pf))))
        self.hosts_file = os.path.join(tmp, "hosts.txt")
        with open(self.hosts_file, "w") as f:
            f.write("\n".join(hosts) + "\n")

    def _spawn(self, argv, logname):
        out = open(os.path.join(self.tmp, logname), "w")
        self.procs.append(subprocess.Popen(argv, stdout=out, stderr=out))

    @staticmethod
    def _wait_file(path, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path) and open(path).read().strip():
                return open(path).read().strip()
            time.sleep(0.05)
        sys.exit("timed out waiting for " + path)

    def ctl(self, *args, timeout=60):
        r = subprocess.run([os.path.join(self.bindir, "coordctl"), "--coordinator",
                            self.coordinator] + list(args), capture_output=True, text=True,
                           timeout=timeout)
        return r

    def status(self, job):
        r = self.ctl("status", job, "--json")
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {}

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def job_spec(tmp, name, args, env):
    d = data_dir()
    return {
        "name": name,
        "model": {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "seq_length": 32,
                  "max_position_embeddings": 32, "hidden_dropout": 0.1, "attention_dropout": 0.1},
        "data": {"train_data": d + "/brown/brown.jsonl", "vocab_file": d + "/gpt2/encoder.json",
                 "merge_file": d + "/gpt2/vocab.bpe", "cache_dir": d + "/preprocessed",
                 "split": "949,50,1"},
        "training": {"micro_batch_size": 2, "global_batch_size": 2 * args.nodes * args.nproc,
                     "train_iters": args.iters, "lr": 3e-3, "log_interval": 10,
                     "eval_iters": 0, "eval_interval": 1000, "threads": 1,
                     "save": os.path.join(tmp, name), "save_interval": 0},
        "parallel": {"bucket_cap_mb": 0.25, "collective_timeout_s": 300},
        "launch": {"nproc_per_node": args.nproc,
                   "command": [os.path.join(args.bindir, "gpt-rank"), "train", "--config",
                               os.path.join(tmp, name + ".json")],
                   "env": dict(env, OMP_NUM_THREADS="1"), "kill_grace_s": 1},
    }


def log_time_ms(line):
    """The wall time (ms) of a gpt-rank log line "2026-12-07T06:50:24.764 W [...] ..."."""
    stamp = line.split("] ", 1)[-1].split(" ", 1)[0]
    try:
        t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        return None
    return int(time.mktime(t.timetuple()) * 1000 + t.microsecond // 1000)


def run_one(cluster, tmp, args, name, delay_ms):
    """One job; returns a dict of what was measured."""
    world = args.nodes * args.nproc
    slow = world - 1
    env = {}
    if delay_ms > 0:
        env["GPT_RANK_INJECT_DELAY_MS"] = "%d:%d@%d" % (slow, delay_ms, args.slow_from)
    spec = job_spec(tmp, name, args, env)
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    r = cluster.ctl("start", "--hosts", cluster.hosts_file, "--config", path)
    if r.returncode != 0:
        sys.exit("start failed:\n" + r.stdout + r.stderr)
    job = r.stdout.splitlines()[0]
    out = {"job": job, "delay_ms": delay_ms, "false_positives": set()}
    seen_ms = None
    st = {}
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        st = cluster.status(job)
        it = int(st.get("iteration", -1))
        for g in st.get("stragglers", []):
            if delay_ms == 0 or int(g.get("since_iteration", 0)) < args.slow_from:
                out["false_positives"].add(int(g.get("rank", -1)))
        named = [g for g in st.get("stragglers", [])
                 if delay_ms > 0 and int(g.get("since_iteration", 0)) >= args.slow_from]
        if named and seen_ms is None:
            seen_ms = int(time.time() * 1000)
            out["named"] = named[0]
            if not args.full:
                break
        if it < args.slow_from - 1 and delay_ms > 0:
            # Before the slowdown: the ranks' compute, for the delay's relative size.
            out["before"] = {int(t["rank"]): float(t.get("compute_ms", 0))
                             for t in st.get("rank_timings", [])}
        if st.get("state") in ("SUCCEEDED", "FAILED", "KILLED"):
            break
        time.sleep(args.poll)
    out["state"] = st.get("state")
    out["seen_ms"] = seen_ms
    if delay_ms > 0:
        logs = cluster.ctl("logs", job, "--rank", str(slow)).stdout
        for line in logs.splitlines():
            if "GPT_RANK_INJECT_DELAY_MS" in line:
                out["slowdown_ms"] = log_time_ms(line)
                break
    if st.get("state") not in ("SUCCEEDED", "FAILED", "KILLED"):
        cluster.ctl("kill", job, "--grace", "1")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the build dir (its bin/ is used)")
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--iters", type=int, default=80)
    ap.add_argument("--slow-from", type=int, default=20, help="the first slowed iteration")
    ap.add_argument("--delays", default="200,50", help="ms per iteration, comma-separated")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between status polls")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--full", action="store_true", help="run each job to its end")
    ap.add_argument("--coordd-arg", action="append", default=[],
                    help="extra coordd flag (e.g. --coordd-arg=--straggler-window=10)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.bindir = os.path.abspath(os.path.join(args.build, "bin"))
    for b in ("coordd", "coord-agent", "coord-supervisor", "coordctl", "gpt-rank"):
        if not os.access(os.path.join(args.bindir, b), os.X_OK):
            sys.exit("missing %s in %s (build first)" % (b, args.bindir))
    if not os.path.exists(os.path.join(data_dir(), "brown", "brown.jsonl")):
        sys.exit("no demo data in %s (scripts/fetch-demo-data.sh)" % data_dir())
    delays = [int(x) for x in args.delays.split(",") if x]
    tmp = tempfile.mkdtemp(prefix="straggler-bench-")
    load = benchlib.OtherLoad(ignore=("coordd", "coord-agent", "coord-supervis", "gpt-rank"))
    load.start()
    cluster = None
    results = []
    try:
        cluster = Cluster(args.bindir, tmp, args.nodes, args.coordd_arg)
        log("coordd %s, %d agents, %d ranks; load %s" % (
            cluster.coordinator, args.nodes, args.nodes * args.nproc, benchlib.loadavg()))
        for rep in range(args.reps):
            for delay in [0] + delays:
                name = "d%d-r%d" % (delay, rep)
                log("run %s" % name)
                results.append(run_one(cluster, tmp, args, name, delay))
                log("  %s" % {k: v for k, v in results[-1].items() if k != "before"})
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        load.stop_ev.set()
        if cluster:
            cluster.close()
        if args.keep:
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    world = args.nodes * args.nproc
    print("\n%d nodes x %d ranks, slowed rank %d from iteration %d, %d repeats; load %s" % (
        args.nodes, args.nproc, world - 1, args.slow_from, args.reps, benchlib.loadavg()))
    print("| delay (ms) | compute before (ms) | named right | slowdown -> named (s) | "
          "-> seen in status (s) | iterations | score | false positives |")
    print("|---|---|---|---|---|---|---|---|")
    for delay in [0] + delays:
        runs = [r for r in results if r["delay_ms"] == delay]
        fp = sum(len(r["false_positives"]) for r in runs)
        if delay == 0:
            print("| 0 (clean) | - | - | - | - | - | - | %d in %d runs |" % (fp, len(runs)))
            continue
        named = [r for r in runs if "named" in r and r.get("slowdown_ms")]
        right = sum(1 for r in named if int(r["named"]["rank"]) == world - 1)
        lat = [(int(r["named"]["since_ms"]) - r["slowdown_ms"]) / 1000 for r in named]
        seen = [(r["seen_ms"] - r["slowdown_ms"]) / 1000 for r in named]
        its = [int(r["named"]["since_iteration"]) - args.slow_from + 1 for r in named]
        scores = [float(r["named"]["score"]) for r in named]
        before = [statistics.median(r["before"].values()) for r in runs if r.get("before")]

        def span(v, fmt):
            return "-" if not v else (fmt % statistics.median(v)) + " (" + (fmt % min(v)) + \
                "-" + (fmt % max(v)) + ")"

        print("| %d | %s | %d of %d | %s | %s | %s | %s | %d |" % (
            delay, span(before, "%.0f"), right, len(runs), span(lat, "%.1f"), span(seen, "%.1f"),
            span(its, "%d"), span(scores, "%.2f"), fp))
    summary = load.summary()
    if summary:
        print("\nother load: " + summary)


if __name__ == "__main__":
    main()
