#!/usr/bin/python3
"""One coordd for many nodes: a real coordd (port 0) supervising N simulated agents x 8
ranks, for N in --sizes (default 64, 256, 1250: 10,000 ranks at the top). The agents
are tests/programs/sim_agents: N+1 real gRPC agent servers in one process, each on its
own loopback address (127.1.x.y), speaking proto/agent.proto; ranks are simulated (no
processes) and write a gpt-rank-like progress record every --progress-ms. The extra
agent is the job's spare.

Measured per size, in this order, on one job (launch.nnodes N, max_restarts 1, restart
backoff 0, --skip-checks):
  launch    `coordctl start` until it returns with the job RUNNING (every rank RUNNING)
  steady    coordd's CPU (utime + stime from /proc/PID/stat, share of one core) over
            --window s with every agent heartbeating and every rank reporting progress,
            and its RSS (VmRSS) at the end
  status    `coordctl status JOB` (text: counts and the first 64 ranks), `status JOB
            --json --ranks 64` and `status JOB --json` (every rank): latency (median of
            5) and reply size
  refresh   one refresh of `status --watch` / `start --follow`: `status JOB --json
            --slowest 20` (the GetJob they send: counts and the 20 slowest ranks) against
            `status JOB --json` (every rank: what they fetched before); and one poll of
            the status page's job API, GET /api/jobs/JOB (the default page of 256 ranks)
            against every rank (all pages of 1,024, summed: before, one reply held them
            all): latency (median of 5) and bytes
  loss      agent N/2 vanishes (its streams end, its port closes): until coordd records
            the node lost (the failure's time_ms), and the restart: until generation 1
            is relaunched on the spare (relaunched_ms - time_ms)
  kill      `coordctl kill JOB` until it returns (every node confirmed), and until the
            sim reports no rank running

  /usr/bin/python3 bench/scale_bench.py --build build-nocuda
  /usr/bin/python3 bench/scale_bench.py --build build-nocuda --sizes 64 --window 5
Everything started is stopped by PID; the temp dir is removed unless --keep.
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
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import log, loadavg  # noqa: E402
from benchlib import Runner, BenchError, wait_port, proc_cpu_ms  # noqa: E402

NPROC = 8
TARGETS = {"launch_s": 5.0, "kill_s": 3.0, "detect_s": 3.0, "cpu_cores": 1.0, "rss_mib": 1024.0}


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


class Sim:
    """sim_agents as a child: commands on its stdin, one reply line each on stdout."""

    def __init__(self, run, binary, agents, progress_ms, hosts):
        logp = os.path.join(run.root, "logs", "sim-%d.log" % agents)
        os.makedirs(os.path.dirname(logp), exist_ok=True)
        self.err = open(logp, "wb")
        self.p = subprocess.Popen([binary, "--agents", str(agents), "--progress-ms",
                                   str(progress_ms), "--hosts-file", hosts],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  text=True, env=run.env)
        self.p.log_path, self.p.name = logp, "sim_agents"
        run.popens.append(self.p)
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            raise BenchError("sim_agents did not start: %r (log %s)" % (line, logp))

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline().strip()
        if not reply.startswith("ok"):
            raise BenchError("sim_agents: %s -> %s" % (line, reply))
        return reply

    def stats(self):
        words = self.cmd("stats").split()[1:]
        return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


class Coordd:
    def __init__(self, run, bins, tag):
        self.run, self.bins = run, bins
        d = os.path.join(run.root, "coordd-%s" % tag)
        os.makedirs(d)
        pf, hf = os.path.join(d, "port"), os.path.join(d, "http-port")
        self.p = run.spawn([bins["coordd"], "--listen", "127.0.0.1:0", "--state-dir",
                            os.path.join(d, "state"), "--port-file", pf, "--log-level", "warning",
                            "--http-listen", "127.0.0.1:0", "--http-port-file", hf],
                           "coordd-%s" % tag)
        self.addr = "127.0.0.1:%d" % wait_port(self.p, pf, "coordd")
        self.http = "127.0.0.1:%d" % wait_port(self.p, hf, "coordd (HTTP)")

    def get(self, path):
        """GET http://coordd/path: (body bytes, seconds)."""
        t0 = time.monotonic()
        with urllib.request.urlopen("http://%s%s" % (self.http, path), timeout=60) as r:
            body = r.read()
        return body, time.monotonic() - t0

    def ctl(self, *args, timeout=120):
        t0 = time.monotonic()
        p = subprocess.run([self.bins["coordctl"], "--coordinator", self.addr] + list(args),
                           capture_output=True, text=True, timeout=timeout, env=self.run.env)
        return p, time.monotonic() - t0

    def status(self, job):
        """The job's status with one rank row: `counts` covers the whole job."""
        p, _ = self.ctl("status", job, "--json", "--ranks", "1")
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise BenchError("coordctl status --json: exit %d: %s %s" % (
                p.returncode, p.stdout[:300], p.stderr[:300]))

    def wait(self, job, pred, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            s = self.status(job)
            if pred(s):
                return s
            time.sleep(0.05)
        raise BenchError("%s not within %d s: %s" % (what, timeout_s, json.dumps(s)[:2000]))


def measure(args, run, bins, n):
    tag = str(n)
    hosts = os.path.join(run.root, "hosts-%s" % tag)
    sim = Sim(run, bins["sim_agents"], n + 1, args.progress_ms, hosts)
    coordd = Coordd(run, bins, tag)
    out = {"agents": n, "ranks": n * NPROC}
    spec = os.path.join(run.root, "job-%s.json" % tag)
    with open(spec, "w") as f:
        json.dump({"name": "scale", "launch": {
            "nproc_per_node": NPROC, "command": ["sim-rank"], "nnodes": n, "kill_grace_s": 1,
            "max_restarts": 1, "restart_backoff_s": 0}}, f)
    try:
        p, out["launch_s"] = coordd.ctl("start", "--hosts", hosts, "--config", spec,
                                        "--skip-checks")
        job = p.stdout.split("\n", 1)[0].strip()
        if p.returncode != 0 or not job:
            raise BenchError("start: exit %d: %s %s" % (p.returncode, p.stdout[:500], p.stderr[:500]))
        s = coordd.status(job)
        running = s["counts"]["ranks_running"]
        if s["state"] != "RUNNING" or running != n * NPROC:
            raise BenchError("after start: %s with %d of %d ranks RUNNING" % (
                s["state"], running, n * NPROC))
        log("%d agents: launched %d ranks in %.2f s" % (n, running, out["launch_s"]))

        time.sleep(args.settle)
        pid = coordd.p.pid
        c0, t0 = proc_cpu_ms([pid]), time.monotonic()
        hb0 = sim.stats()["heartbeats"]
        time.sleep(args.window)
        c1, t1 = proc_cpu_ms([pid]), time.monotonic()
        hb1 = sim.stats()["heartbeats"]
        out["cpu_cores"] = (c1 - c0) / 1000.0 / (t1 - t0)
        out["rss_mib"] = rss_mib(pid)
        out["threads"] = threads(pid)
        out["heartbeats_per_s"] = (hb1 - hb0) / (t1 - t0)
        log("%d agents: steady %.3f cores, %.0f MiB, %d threads, %.0f heartbeats/s" % (
            n, out["cpu_cores"], out["rss_mib"], out["threads"], out["heartbeats_per_s"]))

        modes = {"text": [], "json": ["--json"], "json_page": ["--json", "--ranks", "64"]}
        for mode, flags in modes.items():
            times, size = [], 0
            for _ in range(5):
                p, dt = coordd.ctl("status", job, *flags)
                times.append(dt)
                size = len(p.stdout.encode())
            out["status_%s_s" % mode] = statistics.median(times)
            out["status_%s_kib" % mode] = size / 1024.0

        # One refresh of the pollers, now and as they were (every rank).
        times, size = [], 0
        for _ in range(5):
            p, dt = coordd.ctl("status", job, "--json", "--slowest", "20")
            times.append(dt)
            size = len(p.stdout.encode())
        out["watch_s"], out["watch_kib"] = statistics.median(times), size / 1024.0
        out["watch_all_s"] = out["status_json_s"]
        out["watch_all_kib"] = out["status_json_kib"]
        times = []
        for _ in range(5):
            body, dt = coordd.get("/api/jobs/%s" % job)
            times.append(dt)
        page = json.loads(body)
        if page["page"]["total"] != n * NPROC or page["counts"]["ranks_running"] != n * NPROC:
            raise BenchError("web API page: %s" % json.dumps(page["page"]))
        out["web_s"], out["web_kib"] = statistics.median(times), len(body) / 1024.0
        times, size = [], 0
        for _ in range(5):
            total_s, total_b, offset = 0.0, 0, 0
            while offset < n * NPROC:
                body, dt = coordd.get("/api/jobs/%s?limit=1024&offset=%d" % (job, offset))
                total_s, total_b, offset = total_s + dt, total_b + len(body), offset + 1024
            times.append(total_s)
            size = total_b
        out["web_all_s"], out["web_all_kib"] = statistics.median(times), size / 1024.0
        log("%d agents: a watch refresh %.1f KiB in %.3f s (every rank: %.0f KiB in %.3f s); "
            "a status page poll %.1f KiB in %.3f s (every rank: %.0f KiB in %.3f s)" % (
                n, out["watch_kib"], out["watch_s"], out["watch_all_kib"], out["watch_all_s"],
                out["web_kib"], out["web_s"], out["web_all_kib"], out["web_all_s"]))

        lost = n // 2
        t_lose = time.time() * 1000
        sim.cmd("lose %d" % lost)
        s = coordd.wait(job, lambda s: s.get("failure", {}).get("kind") == "FAILURE_NODE_LOST",
                        60, "node loss detected")
        out["detect_s"] = (int(s["failure"]["time_ms"]) - t_lose) / 1000.0
        s = coordd.wait(job, lambda s: s["state"] == "RUNNING" and s["generation"] == 1 and
                        int(s["failure"].get("relaunched_ms", 0)) > 0, 120, "restart")
        f = s["failure"]
        out["restart_s"] = (int(f["relaunched_ms"]) - int(f["time_ms"])) / 1000.0
        log("%d agents: node loss detected in %.2f s, relaunched %.2f s later" % (
            n, out["detect_s"], out["restart_s"]))

        # The lost agent cannot confirm its ranks are gone: the kill names it and exits 1.
        lost_target = open(hosts).read().split()[lost]
        p, out["kill_s"] = coordd.ctl("kill", job)
        unconfirmed_only_lost = "could not confirm" in p.stderr + p.stdout and \
            (p.stderr + p.stdout).count("127.") == (p.stderr + p.stdout).count(lost_target)
        if p.returncode != 0 and not unconfirmed_only_lost:
            raise BenchError("kill: exit %d: %s %s" % (p.returncode, p.stdout[:500], p.stderr[:500]))
        t_kill = time.monotonic() - out["kill_s"]
        deadline = time.monotonic() + 60
        while sim.stats()["running"] > 0:
            if time.monotonic() > deadline:
                raise BenchError("ranks still running 60 s after the kill")
            time.sleep(0.01)
        out["kill_all_exited_s"] = time.monotonic() - t_kill
        log("%d agents: kill returned in %.2f s, every rank exited after %.2f s" % (
            n, out["kill_s"], out["kill_all_exited_s"]))
    finally:
        run.stop(coordd.p, signal.SIGTERM, 10.0)
        sim.p.stdin.close()
        run.stop(sim.p, signal.SIGTERM, 10.0)
        sim.err.close()
    return out


def table(rows):
    cols = [("agents", "%d"), ("ranks", "%d"), ("launch_s", "%.2f"), ("kill_s", "%.2f"),
            ("kill_all_exited_s", "%.2f"), ("detect_s", "%.2f"), ("restart_s", "%.2f"),
            ("cpu_cores", "%.3f"), ("rss_mib", "%.0f"), ("threads", "%d"),
            ("status_text_s", "%.3f"), ("status_text_kib", "%.1f"), ("status_json_page_s", "%.3f"),
            ("status_json_page_kib", "%.1f"), ("status_json_s", "%.3f"), ("status_json_kib", "%.0f")]
    lines = ["| " + " | ".join(c for c, _ in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt % r[c] for c, fmt in cols) + " |")
    refresh = [("agents", "%d"), ("ranks", "%d"), ("watch_s", "%.3f"), ("watch_kib", "%.1f"),
               ("watch_all_s", "%.3f"), ("watch_all_kib", "%.0f"), ("web_s", "%.3f"),
               ("web_kib", "%.1f"), ("web_all_s", "%.3f"), ("web_all_kib", "%.0f")]
    lines += ["", "one refresh: status --watch / start --follow (watch_*), the status page (web_*); "
              "*_all: every rank, as before",
              "| " + " | ".join(c for c, _ in refresh) + " |",
              "|" + "|".join("---" for _ in refresh) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt % r[c] for c, fmt in refresh) + " |")
    top = rows[-1]
    lines.append("")
    lines.append("at %d agents x %d ranks, against the targets:" % (top["agents"], NPROC))
    for k, target in TARGETS.items():
        lines.append("  %-9s %8.3f  target %6.1f  (%.0f%% of it)" % (
            k, top[k], target, 100.0 * top[k] / target))
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        lines.append("growth %d -> %d agents (x%.1f): CPU x%.1f, RSS x%.1f" % (
            a["agents"], b["agents"], b["agents"] / a["agents"], b["cpu_cores"] / max(a["cpu_cores"], 1e-9),
            b["rss_mib"] / a["rss_mib"]))
        for r in rows:
            lines.append("  %5d agents: %.2f ms CPU/s per agent, %.3f ms CPU/s per rank, "
                         "%.0f KiB RSS per agent" % (
                             r["agents"], 1000 * r["cpu_cores"] / r["agents"],
                             1000 * r["cpu_cores"] / r["ranks"], 1024 * r["rss_mib"] / r["agents"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-nocuda")
    ap.add_argument("--sizes", default="64,256,1250")
    ap.add_argument("--progress-ms", type=int, default=500)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    bindir = os.path.join(os.path.abspath(args.build), "bin")
    bins = {b: os.path.join(bindir, b) for b in ("coordd", "coordctl", "sim_agents")}
    for b, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit("%s not built (%s)" % (b, path))
    root = tempfile.mkdtemp(prefix="scale-bench-")
    run = Runner(root)
    rows = []
    try:
        log("machine: %d CPUs, load %s" % (os.cpu_count(), loadavg()))
        for n in [int(x) for x in args.sizes.split(",")]:
            rows.append(measure(args, run, bins, n))
        print(table(rows))
    except BenchError as e:
        log("FAILED: %s" % e)
        sys.exit(1)
    finally:
        run.cleanup()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
