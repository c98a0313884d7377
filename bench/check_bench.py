#!/usr/bin/python3
"""Cluster check benchmark: `coordctl check` on N simulated nodes against a serial
per-node loop of `env-check`, measured side by side in one run.

  coordctl check   `coordctl check --hosts H --config J --json` against N real
                   coord-agent processes (127.0.0.2 .. 127.0.0.N+1, one per
                   simulated node): every node runs the env_check table through its
                   agent, in parallel, then the shared-path token rounds, then the
                   cluster comparisons. Wall time of the whole command (exec to exit).
  serial env-check the reference, what teams do today
                   (`for h in $hosts; do ssh $h env-check; done`) without ssh:
                   `env-check --config J --json` run N times one after another.
                   ssh's connection cost is left out; it would only add to the
                   reference.
  single env-check one env-check run (each run of the serial loop is a sample).

The job spec names a shared path and its filesystem type, so the shared-mount
checks, the token exchange and the program digest (bench rank_probe) all run. As in
tests/integration/env_check_cluster_test.cc, every agent runs in a mount namespace
of its own (build/bin/mount_ns_exec, needs root) where the shared path is a bind
mount of one directory, the simulated "CFS"; the serial loop runs in one such
namespace too, so both sides see the same mount and pass the same checks.

Every coordctl check is verified: all nodes reachable and no failed FAIL row (exit
1, warnings, is expected on machines with low memlock/nofile limits). The binaries
are copied into the temp dir first, so a rebuild during the run cannot swap them.
Everything it starts is stopped by PID (SIGTERM, then SIGKILL after a grace) and
the temp dir is removed, also on errors and Ctrl-C. Python 3 standard library only.
Exit 0; 1 when a coordctl check run did not report a healthy cluster (listed
under the table); 2 on a setup error (binaries, agents, the serial loop).

  python3 bench/check_bench.py                      # 32 nodes, 5 repeats
  python3 bench/check_bench.py --nodes 8 --repeats 3
"""

import argparse
import hashlib
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
from benchlib import log, loadavg, tail, wait_idle, OtherLoad  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BINS = ("coordctl", "coord-agent", "coord-supervisor", "env-check", "rank_probe", "mount_ns_exec")
TARGET_S = 2.0


class BenchError(Exception):
    pass


def failed_rows(checks):
    """Ids of FAIL-severity checks that did not pass."""
    return [c.get("id", "?") for c in checks
            if c.get("severity") == "FAIL" and not c.get("passed", False)]


# ---------------------------------------------------------------- inner loop


def inner(argv):
    """Runs inside the mount namespace: env-check N times, one after another.
    Prints JSON: total seconds, each run's seconds, exit codes, failed FAIL rows."""
    env_check, job, n = argv[0], argv[1], int(argv[2])
    per, codes, fails = [], [], []
    t_all = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        r = subprocess.run([env_check, "--config", job, "--json"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        per.append(time.perf_counter() - t0)
        codes.append(r.returncode)
        try:
            fails.append(failed_rows(json.loads(r.stdout)))
        except ValueError:
            fails.append(["(no JSON: %s)" % r.stderr.decode(errors="replace")[-200:]])
    total = time.perf_counter() - t_all
    json.dump({"total_s": total, "per_run_s": per, "codes": codes, "fails": fails}, sys.stdout)
    return 0


# ---------------------------------------------------------------- agents


class Agents:
    """N coord-agent processes, each in its own mount namespace; stopped by PID."""

    def __init__(self, root, bins, export, shared):
        self.root, self.bins, self.export, self.shared = root, bins, export, shared
        self.procs = []

    def start(self, n, timeout_s=30):
        port_files = []
        for i in range(n):
            d = os.path.join(self.root, "agent%d" % i)
            pf = d + ".port"
            logf = open(d + ".log", "wb")
            try:
                p = subprocess.Popen(
                    [self.bins["mount_ns_exec"], "--bind", self.export, self.shared, "--",
                     self.bins["coord-agent"], "--listen", "127.0.0.%d:0" % (i + 2),
                     "--state-dir", d, "--port-file", pf],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    close_fds=True)
            finally:
                logf.close()
            p.log_path = d + ".log"
            self.procs.append(p)
            port_files.append(pf)
        ports = [None] * n
        deadline = time.monotonic() + timeout_s
        while None in ports:
            for i, pf in enumerate(port_files):
                if ports[i] is not None:
                    continue
                p = self.procs[i]
                if p.poll() is not None:
                    raise BenchError("agent %d exited with %s before writing its port:\n%s" % (
                        i, p.returncode, tail(p.log_path)))
                try:
                    with open(pf) as f:
                        text = f.read().strip()
                    if text:
                        ports[i] = int(text.replace(":", " ").split()[-1])
                except (FileNotFoundError, ValueError):
                    pass
            if None in ports:
                if time.monotonic() > deadline:
                    missing = [i for i, p in enumerate(ports) if p is None]
                    raise BenchError("%d agent(s) wrote no port within %d s (first: agent %d):\n%s" % (
                        len(missing), timeout_s, missing[0], tail(self.procs[missing[0]].log_path)))
                time.sleep(0.01)
        return ["127.0.0.%d:%d" % (i + 2, port) for i, port in enumerate(ports)]

    def dead(self):
        """Agents that have exited, with their log tails."""
        return ["agent %d (pid %d) exited with %s:\n%s" % (i, p.pid, p.returncode, tail(p.log_path, 5))
                for i, p in enumerate(self.procs) if p.poll() is not None]

    def stop(self, grace_s=5.0):
        """SIGTERM every agent we started, then SIGKILL whatever outlives the grace."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log("agent pid %d did not exit %g s after SIGTERM: SIGKILL" % (p.pid, grace_s))
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    log("warning: agent pid %d did not die after SIGKILL" % p.pid)
        self.procs = [p for p in self.procs if p.poll() is None]


# ---------------------------------------------------------------- measurements


def machine_counters():
    """(processes created since boot, CPU seconds used on all cores) from /proc/stat."""
    forks, busy = 0, 0.0
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait
            elif line.startswith("processes "):
                forks = int(line.split()[1])
    return forks, busy


class Run:
    """One timed command: wall seconds, exit code, machine-wide forks and CPU seconds."""

    def __init__(self, argv, timeout):
        f0, c0 = machine_counters()
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        self.wall = time.perf_counter() - t0
        f1, c1 = machine_counters()
        self.forks, self.cpu = f1 - f0, c1 - c0
        self.rc = r.returncode
        self.out = r.stdout.decode(errors="replace")
        self.err = r.stderr.decode(errors="replace")


def run_check(bins, hosts, job, n):
    """One `coordctl check`; returns a Run with .problem set (None when every node
    was reachable and no FAIL row failed; exit 1, warnings only, is fine)."""
    run = Run([bins["coordctl"], "check", "--hosts", hosts, "--json"] +
              (["--config", job] if job else []), timeout=120)
    run.problem = None
    try:
        rep = json.loads(run.out)
    except ValueError:
        run.problem = "exit %d, no JSON:\n%s\n%s" % (run.rc, run.out[-2000:], run.err[-2000:])
        return run
    nodes = rep.get("nodes", [])
    bad = [nd["name"] for nd in nodes if not nd.get("reachable")]
    fails = [f for nd in nodes for f in failed_rows(nd.get("checks", []))]
    fails += failed_rows(rep.get("cluster", []))
    if run.rc not in (0, 1) or len(nodes) != n or bad or fails:
        run.problem = "exit %d, %d of %d nodes in the report, %d unreachable, %d failed FAIL " \
            "row(s):\n%s%s" % (run.rc, len(nodes), n, len(bad), len(fails),
                                summarize(run.out), ("\n" + run.err[-1000:]) if run.err else "")
    return run


def summarize(out):
    """The failing rows of a coordctl check JSON report, or its tail."""
    try:
        rep = json.loads(out)
    except ValueError:
        return out[-2000:]
    lines = []
    for nd in rep.get("nodes", []):
        if not nd.get("reachable"):
            lines.append("%s unreachable: %s" % (nd.get("name"), nd.get("error")))
        for c in nd.get("checks", []):
            if c.get("severity") == "FAIL" and not c.get("passed"):
                lines.append("%s FAIL %s: %s" % (nd.get("name"), c.get("id"), c.get("found")))
    for c in rep.get("cluster", []):
        if c.get("severity") == "FAIL" and not c.get("passed"):
            lines.append("cluster FAIL %s: %s" % (c.get("id"), c.get("found")))
    more = "\n(%d more)" % (len(lines) - 5) if len(lines) > 5 else ""
    return "\n".join(lines[:5]) + more if lines else out[-2000:]


def run_serial(bins, export, shared, job, n):
    """The reference: env-check n times in a row, inside one mount namespace that shows
    the shared path like the agents' do. Timed inside (first exec to last exit)."""
    run = Run([bins["mount_ns_exec"], "--bind", export, shared, "--", sys.executable,
               os.path.abspath(__file__), "--inner", bins["env-check"], job, str(n)],
              timeout=60 + 30 * n)
    if run.rc != 0:
        raise BenchError("serial env-check loop exited %d:\n%s" % (run.rc, run.err[-2000:]))
    res = json.loads(run.out)
    bad = [(i, c, f) for i, (c, f) in enumerate(zip(res["codes"], res["fails"]))
           if c not in (0, 1) or f]
    if bad:
        raise BenchError("env-check in the serial loop: run, exit, failed FAIL rows: %s" % bad[:5])
    res["forks"], res["cpu"] = run.forks, run.cpu
    return res


def background_cores(seconds=1.0):
    """Cores busy over `seconds` (everything on the machine; call it while idle)."""
    c0 = machine_counters()[1]
    time.sleep(seconds)
    return (machine_counters()[1] - c0) / seconds


def fs_type(path):
    r = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", path],
                       capture_output=True, text=True, timeout=30)
    t = r.stdout.strip().split("\n")[0].strip()
    if r.returncode != 0 or not t:
        raise BenchError("findmnt --target %s: %s" % (path, r.stderr.strip() or "no type"))
    return t


def identify(path):
    """mtime and a short sha256 of a binary: which build was measured."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "%s %s" % (time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path))),
                      h.hexdigest()[:12])


def stats(v):
    return statistics.median(v), min(v), max(v)


# ---------------------------------------------------------------- main


def cells(v, fmt="%.3f"):
    med, lo, hi = stats(v)
    return " | ".join(fmt % x for x in (med, lo, hi))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        return inner(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=32, help="simulated nodes (32)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each side (5)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"),
                    help="coordctl, coord-agent, env-check, ... (build/bin)")
    ap.add_argument("--idle-wait", type=float, default=0,
                    help="wait up to S seconds for the 1-minute load to drop (0)")
    ap.add_argument("--idle-load", type=float, default=0.5,
                    help="the load --idle-wait waits for (0.5)")
    ap.add_argument("--probe-deadline-s", type=float, default=5,
                    help="env_check.probe_deadline_s of the job spec (5)")
    ap.add_argument("--no-context-row", action="store_true",
                    help="skip the context row: coordctl check with a job spec that has no "
                    "shared path (no shared-mount checks, no token rounds)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (agent logs)")
    a = ap.parse_args()
    if a.nodes < 1 or a.nodes > 250:
        ap.error("--nodes: 1..250")
    if a.repeats < 1:
        ap.error("--repeats: at least 1")

    src = {b: os.path.join(os.path.abspath(a.bin_dir), b) for b in BINS}
    missing = [p for p in src.values() if not os.access(p, os.X_OK)]
    if missing:
        raise BenchError("missing binaries: %s (build them: ninja -C build coordctl "
                         "coord-agent env-check rank_probe mount_ns_exec)" % ", ".join(missing))
    if os.geteuid() != 0:
        raise BenchError("needs root: every simulated node gets its own mount namespace "
                         "(mount_ns_exec) so that the shared path is a real mount")

    root = tempfile.mkdtemp(prefix="coord-check-bench.")
    agents = None
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = 0
    try:
        bins = {}
        os.makedirs(os.path.join(root, "bin"))
        for b, p in src.items():
            bins[b] = os.path.join(root, "bin", b)
            shutil.copy2(p, bins[b])  # coord-agent finds coord-supervisor next to itself
        build_id = "; ".join("%s %s" % (b, identify(bins[b]))
                             for b in ("coordctl", "coord-agent", "env-check"))
        export = os.path.join(root, "export")   # what the "CFS" holds
        shared = os.path.join(root, "shared")   # where every node mounts it
        os.makedirs(export)
        os.makedirs(shared)
        fstype = fs_type(root)

        def write_job(path, env_check):
            with open(path, "w") as f:
                json.dump({"name": "bench",
                           "launch": {"nproc_per_node": 1, "command": [bins["rank_probe"]]},
                           "env_check": env_check}, f, indent=1)
            return path
        job = write_job(os.path.join(root, "job.json"),
                        {"shared_path": shared, "shared_fs_types": [fstype],
                         "probe_deadline_s": a.probe_deadline_s})
        job_noshared = write_job(os.path.join(root, "job-noshared.json"),
                                 {"probe_deadline_s": a.probe_deadline_s})

        t_wait = time.monotonic() + a.idle_wait
        la0 = wait_idle(a.idle_wait, a.idle_load)
        bg0 = background_cores()
        while bg0 > 0.2 and time.monotonic() < t_wait:
            log("%.2f cores busy: waiting" % bg0)
            time.sleep(5)
            bg0 = background_cores()
        log("load average before: %s; %d cores" % (" ".join("%.2f" % x for x in la0),
                                                    os.cpu_count()))
        log("starting %d agents on 127.0.0.2 .. 127.0.0.%d" % (a.nodes, a.nodes + 1))
        agents = Agents(root, bins, export, shared)
        t0 = time.perf_counter()
        names = agents.start(a.nodes)
        log("agents up in %.2f s" % (time.perf_counter() - t0))
        hosts = os.path.join(root, "hosts.txt")
        with open(hosts, "w") as f:
            f.write("".join(h + "\n" for h in names))

        other = OtherLoad()
        other.start()
        log("warm-up")
        w = run_check(bins, hosts, job, a.nodes)
        if w.problem:
            log("warm-up coordctl check took %.2f s: %s" % (w.wall, w.problem))
        run_serial(bins, export, shared, job, 1)
        checks, context, serials, single_s, problems = [], [], [], [], []
        for rep in range(a.repeats):
            # interleaved, so that drift and other load hit both sides alike
            r = run_check(bins, hosts, job, a.nodes)
            checks.append(r)
            if r.problem:
                problems.append("repeat %d: coordctl check took %.3f s, %s" % (
                    rep + 1, r.wall, r.problem))
                log("ERROR " + problems[-1])
            if not a.no_context_row:
                c = run_check(bins, hosts, job_noshared, a.nodes)
                context.append(c)
                if c.problem:
                    problems.append("repeat %d: coordctl check (no shared path) took %.3f s, %s"
                                    % (rep + 1, c.wall, c.problem))
                    log("ERROR " + problems[-1])
            if agents.dead():
                raise BenchError("; ".join(agents.dead()))
            res = run_serial(bins, export, shared, job, a.nodes)
            serials.append(res)
            single_s.extend(res["per_run_s"])
            log("repeat %d/%d: coordctl check %.3f s (exit %d%s), serial env-check x %d %.3f s" % (
                rep + 1, a.repeats, r.wall, r.rc, ", PROBLEM" if r.problem else "", a.nodes,
                res["total_s"]))
        other.stop_ev.set()
        other.join(5)
        la1 = loadavg()

        n = a.nodes
        ok = [r for r in checks if not r.problem]
        nodes = "%d node%s" % (n, "" if n == 1 else "s")
        rows = [("`coordctl check --config J` (%s, parallel)" % nodes,
                 [r.wall for r in checks], [r.forks for r in checks], [r.cpu for r in checks])]
        if context:
            rows.append(("`coordctl check`, spec without shared path (%s; context)" % nodes,
                         [r.wall for r in context], [r.forks for r in context],
                         [r.cpu for r in context]))
        rows += [("serial `env-check --config J` x %d (reference)" % n,
                  [s["total_s"] for s in serials], [s["forks"] for s in serials],
                  [s["cpu"] for s in serials]),
                 ("single `env-check --config J` (one node; each run of the loop)", single_s,
                  None, None)]
        med_check = statistics.median(r.wall for r in checks)
        med_serial = statistics.median(s["total_s"] for s in serials)
        print("# Cluster check: coordctl check on %s against a serial per-node loop\n" % nodes)
        print("`%s`; %d cores (`nproc`); load average %s before, %s after; %.2f cores busy "
              "just before; other load during the run: %s; shared path fs type %s (bind mount "
              "per node); coordctl check exit codes %s (1: warnings only)\n"
              % (" ".join(["python3"] + sys.argv), os.cpu_count(),
                 " ".join("%.2f" % x for x in la0), " ".join("%.2f" % x for x in la1), bg0,
                 other.summary(), fstype, ",".join(str(r.rc) for r in checks)))
        print("Binaries (%s, copied at the start; mtime, sha256): %s\n" % (
            os.path.abspath(a.bin_dir), build_id))
        print("| run | median s | min s | max s | processes created (median) "
              "| CPU s, all cores (median) | runs |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, wall, forks, cpu in rows:
            print("| %s | %s | %s | %s | %d |" % (
                label, cells(wall), "%d" % statistics.median(forks) if forks else "",
                "%.2f" % statistics.median(cpu) if cpu else "", len(wall)))
        print("\nSpeed-up, serial loop / coordctl check (medians): **%.2fx**" % (
            med_serial / med_check))
        walls = [r.wall for r in checks]
        verdict = "NOT met"
        if ok and len(ok) == len(checks) and max(walls) < TARGET_S:
            verdict = "met"
        elif med_check < TARGET_S:
            verdict = "met by the median, not by every run"
        print("Target \"under %g s on %s when every node is healthy\": %s (median %.3f s, "
              "max %.3f s)" % (TARGET_S, nodes, verdict, med_check, max(walls)))
        print("\nThe serial reference excludes ssh connection cost, which would only add to it. "
              "Processes and CPU seconds are machine-wide (/proc/stat) during the run.")
        if problems:
            code = 1
            print("\n%d of %d coordctl check runs did not report a healthy cluster:\n" % (
                len(problems), len(checks) + len(context)))
            for p in problems:
                print("- " + p.replace("\n", "\n    "))
    except BenchError as e:
        log("check_bench: " + str(e))
        code = 2
    finally:
        if agents is not None:
            agents.stop()
        signal.signal(signal.SIGTERM, old_term)
        if a.keep:
            log("kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("check_bench: " + str(e))
        sys.exit(2)
