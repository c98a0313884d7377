#!/usr/bin/python3
"""Control-plane benchmark: Coord (coordctl + coordd + coord-agent) against
torchrun and mpirun, measured side by side in one run with one rank program.

What is measured (every time is CLOCK_MONOTONIC on this machine):

  launch       from just before the launcher is exec'd (coordctl start,
               torchrun, mpirun) to the start stamp of the last rank
               (bench/stamp_rank.c stamps its own start time).
  kill         from just before `coordctl kill` is exec'd, or SIGTERM is sent
               to torchrun / mpirun, to the exit of the last rank. Exits are
               seen through pidfds (poll(2) on pidfd_open(2) descriptors), so
               the resolution is the scheduler's, not a polling interval's.
               Done with ranks that honour SIGTERM and with ranks that ignore it.
  survivors    rank processes still alive when the kill deadline passes.
  exit detect  one rank sleeps, stamps its time, exits 1 (the others exit 0 at
               once); time from that stamp to the launcher knowing:
               torchrun / mpirun: the launcher process exits (pidfd);
               coordctl: `coordctl start --follow` exits (pidfd), and,
               independent of any client, the coordinator's own timestamp of
               the failure from `coordctl status --json` (wall clock, 1 ms
               resolution, compared with the rank's CLOCK_REALTIME stamp).
  orphans      rank processes still alive 2 s after the launcher itself is
               SIGKILLed (torchrun, mpirun); they are then killed by PID.

Python 3 standard library only. Run with Debian's /usr/bin/python3 (its
python3-torch provides torchrun). Everything it starts is killed by PID and its
temporary directory is removed, also on errors and Ctrl-C.

  /usr/bin/python3 bench/launch_bench.py --build build --reps 20 --json out.json
  /usr/bin/python3 bench/launch_bench.py --quick        # smoke test, a minute
"""

import argparse
import datetime
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (tail, free_port, OtherLoad, BenchError, pct, proc_alive, cmdline,  # noqa: E402
                      cpu_busy_ms, proc_cpu_ms, Runner, wait_port, find_build, COORD_BINS,
                      TORCHRUN_WRAPPER)

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = ("coord", "torchrun", "mpirun")


def now():
    return time.monotonic_ns()


def ms(ns):
    return ns / 1e6


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


class ExitWatch:
    """pidfds on a set of pids (opened now), to time each one's exit."""

    def __init__(self, pids, popens=()):
        self.fds = {}
        self.gone = {}
        self.poller = select.poll()
        for pid in list(pids) + [p.pid for p in popens]:
            self.add(pid)

    def add(self, pid):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.gone[pid] = now()
            return
        self.fds[fd] = pid
        self.poller.register(fd, select.POLLIN)

    def wait(self, deadline_ns, want=None):
        """Until every pid in want (default: all) has exited or the deadline."""
        want = set(want) if want is not None else set(self.fds.values()) | set(self.gone)
        while not want <= set(self.gone):
            left_ms = (deadline_ns - now()) / 1e6
            if left_ms <= 0:
                break
            for fd, _ in self.poller.poll(min(left_ms, 1000)):
                t = now()
                pid = self.fds.pop(fd)
                self.poller.unregister(fd)
                os.close(fd)
                self.gone[pid] = t
        return self.gone

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = {}


def read_stamps(path):
    try:
        with open(path) as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split("\n")[:-1]:  # O_APPEND lines are whole
        k, rank, pid, mono, real = line.split()
        out.append((k, int(rank), int(pid), int(mono), int(real)))
    return out


def wait_stamps(path, n, timeout_s, proc=None, kind="S", what="ranks"):
    """Poll the stamp file (2 ms) until n stamps of `kind`; fail clearly on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = [s for s in read_stamps(path) if s[0] == kind]
        if len(st) >= n:
            return st
        if time.monotonic() > deadline:
            raise BenchError("%d of %d %s stamped within %.0f s%s" % (
                len(st), n, what, timeout_s,
                ("; launcher log:\n" + tail(proc.log_path)) if proc is not None else ""))
        if proc is not None and proc.poll() is not None and kind == "S" and len(st) < n:
            # the launcher may exit before all ranks stamp (e.g. exit0 ranks); give it 2 s
            deadline = min(deadline, time.monotonic() + 2)
        time.sleep(0.002)


# ---------------------------------------------------------------- results


class Results:
    def __init__(self):
        self.data = {}  # (tool, size, metric) -> list of ms
        self.notes = []

    def add(self, tool, size, metric, value):
        self.data.setdefault((tool, size, metric), []).append(value)

    def get(self, tool, size, metric):
        return self.data.get((tool, size, metric), [])


# ---------------------------------------------------------------- Coord


class CoordCluster:
    def __init__(self, run, bins, n_agents, tag):
        self.run, self.bins, self.n = run, bins, n_agents
        self.dir = os.path.join(run.root, "coord-%s" % tag)
        os.makedirs(self.dir)
        self.coordd = None
        self.agents = []
        self.addr = None
        self.hosts = os.path.join(self.dir, "hosts")

    def start(self):
        b = self.bins
        sd = os.path.join(self.dir, "coordd")
        pf = os.path.join(self.dir, "coordd.port")
        self.coordd = self.run.spawn([b["coordd"], "--listen", "127.0.0.1:0", "--state-dir", sd,
                                      "--port-file", pf, "--log-level", self.run.coord_log_level], "coordd")
        agent_pfs = []
        for i in range(self.n):
            ad = os.path.join(self.dir, "agent%d" % i)
            apf = ad + ".port"
            self.agents.append(self.run.spawn(
                [b["coord-agent"], "--listen", "127.0.0.%d:0" % (i + 2), "--state-dir", ad,
                 "--port-file", apf, "--log-level", self.run.coord_log_level]
                + self.run.agent_args, "agent%d" % i))
            agent_pfs.append(apf)
        port = wait_port(self.coordd, pf, "coordd")
        self.addr = "127.0.0.1:%d" % port
        lines = []
        for i, (a, apf) in enumerate(zip(self.agents, agent_pfs)):
            lines.append("127.0.0.%d:%d" % (i + 2, wait_port(a, apf, "coord-agent %d" % i)))
        with open(self.hosts, "w") as f:
            f.write("\n".join(lines) + "\n")

    def ctl(self, *args):
        return [self.bins["coordctl"], "--coordinator", self.addr] + list(args)

    def spec(self, path, argv, grace_s=2):
        with open(path, "w") as f:
            json.dump({"name": "bench", "launch": {
                "nproc_per_node": 8, "command": argv, "kill_grace_s": grace_s,
                "env": {"OMP_NUM_THREADS": "1"}}}, f)
        return path

    def status(self, job):
        p = subprocess.run(self.ctl("status", job, "--json"), capture_output=True, text=True,
                           timeout=30, env=self.run.env)
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise BenchError("coordctl status %s --json: exit %d, not JSON: %s %s" % (
                job, p.returncode, p.stdout[:300], p.stderr[:300]))

    def stop(self):
        for p in self.agents + [self.coordd]:
            if p is not None:
                self.run.stop(p, signal.SIGTERM, 5.0)


# ---------------------------------------------------------------- benchmark


class Bench:
    def __init__(self, args, run, res, rank_bin):
        self.a, self.run, self.res, self.rank = args, run, res, rank_bin
        self.marker = rank_bin  # every rank's command line contains it
        self.n = 0

    def stamp_path(self):
        self.n += 1
        return os.path.join(self.run.root, "stamps", "%04d" % self.n)

    def launch_timeout(self, world):
        return 30 + world * 0.2

    # -- shared kill measurement ------------------------------------------
    def measure_kill(self, tool, size, metric, pids, trigger, grace_s, launcher=None):
        """trigger() starts the kill and returns the Popen of a kill command or None."""
        watch = ExitWatch(pids)
        cmd = None
        try:
            if launcher is not None:
                watch.add(launcher.pid)
            t0 = now()
            cmd = trigger()
            if cmd is not None:
                watch.add(cmd.pid)
            deadline = t0 + int((grace_s + 15 + len(pids) * 0.02) * 1e9)
            gone = watch.wait(deadline)
        finally:
            watch.close()
        cgone = gone
        survivors = [p for p in pids if p not in gone and proc_alive(p)]
        done = [gone[p] for p in pids if p in gone]
        if done and not survivors:
            self.res.add(tool, size, metric, ms(max(done) - t0))
        self.res.add(tool, size, metric + " survivors", len(survivors))
        if cmd is not None and cmd.pid in cgone:
            rc = cmd.wait(5)
            self.res.add(tool, size, metric + " (command returned)", ms(cgone[cmd.pid] - t0))
            if rc != 0:
                self.res.notes.append("%s %s: kill command exit %d: %s" % (
                    tool, size, rc, tail(cmd.log_path, 3).strip()))
        if cmd is not None and cmd.poll() is None:
            self.res.notes.append("%s %s: kill command still running at the deadline" % (tool, size))
            self.run.stop(cmd, signal.SIGKILL)
        elif cmd is not None and cmd in self.run.popens:
            self.run.popens.remove(cmd)
        if launcher is not None and launcher.pid in cgone:
            self.res.add(tool, size, metric + " (launcher exited)", ms(cgone[launcher.pid] - t0))
        if survivors:
            log("  %s %s %s: %d survivor(s) after the deadline: %s" % (
                tool, size, metric, len(survivors), survivors[:10]))
            self.run.kill_ranks(survivors, self.marker)
        return len(survivors)

    # -- Coord -------------------------------------------------------------
    def coord(self, bins, n_agents):
        size = "%dx8" % n_agents
        world = n_agents * 8
        log("coord %s: starting coordd and %d agents" % (size, n_agents))
        cl = CoordCluster(self.run, bins, n_agents, size)
        try:
            cl.start()
            # baseline: one coordctl process doing one RPC (what any poll costs)
            for _ in range(5 if self.a.quick else 10):
                t0 = now()
                subprocess.run(self.ctl_jobs(cl), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30, env=self.run.env)
                self.res.add("coord", size, "coordctl jobs (exec + 1 RPC)", ms(now() - t0))
            # launch + kill (ranks honour SIGTERM)
            for rep in range(self.a.reps):
                self.coord_launch_kill(cl, size, world, "sleep", "kill (SIGTERM honoured)",
                                       measure_launch=True)
            # The same spec on the same nodes again (a resubmit, a sweep): the checks that
            # passed are reused (coordd --check-reuse-s). One unmeasured start records them.
            fixed = os.path.join(self.run.root, "stamps", "reused-%s" % size)
            for rep in range(self.a.reps + 1):
                if os.path.exists(fixed):
                    os.unlink(fixed)
                self.coord_launch_kill(cl, size, world, "sleep", "kill (SIGTERM honoured)",
                                       measure_launch=rep > 0, stamps=fixed,
                                       launch_metric="launch (checks reused)")
            for rep in range(self.a.reps):
                self.coord_launch_kill(cl, size, world, "sleep", "kill (SIGTERM honoured)",
                                       measure_launch=True, start_args=["--skip-checks"],
                                       launch_metric="launch (--skip-checks)")
            for rep in range(self.a.ignore_reps):
                self.coord_launch_kill(cl, size, world, "ignore",
                                       "kill (SIGTERM ignored, grace %g s)" % self.a.grace,
                                       measure_launch=False)
            for rep in range(self.a.fail_reps):
                self.coord_fail(cl, size, world)
        finally:
            cl.stop()
            left = self.run.strays()
            if left:
                self.res.notes.append("coord %s: %d process(es) left after stopping coordd and "
                                      "agents with SIGTERM: %s" % (
                                          size, len(left), "; ".join(cmdline(p)[:80] for p in left)))
                self.run.cleanup()

    def ctl_jobs(self, cl):
        return cl.ctl("jobs")

    def coord_start(self, cl, argv, follow=False, start_args=()):
        d = os.path.join(self.run.root, "specs")
        os.makedirs(d, exist_ok=True)
        spec = cl.spec(os.path.join(d, "%04d.json" % self.n), argv, self.a.grace)
        out = os.path.join(self.run.root, "logs", "start-%04d.out" % self.n)
        args = (["start", "--hosts", cl.hosts, "--config", spec] + (["--follow"] if follow else [])
                + list(start_args))
        t0 = now()
        p = self.run.spawn(cl.ctl(*args), "coordctl-start", stdout_path=out)
        return t0, p, out

    def job_id(self, p, out, timeout_s):
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError("coordctl start did not return within %d s:\n%s" % (timeout_s, tail(p.log_path)))
        with open(out) as f:
            lines = f.read().split()
        if p.returncode != 0 or not lines:
            raise BenchError("coordctl start: exit %d, stdout %r:\n%s" % (
                p.returncode, lines[:3], tail(p.log_path)))
        self.run.popens.remove(p)
        return lines[0]

    def coord_launch_kill(self, cl, size, world, mode, metric, measure_launch, stamps=None,
                          start_args=(), launch_metric="launch"):
        stamps = stamps or self.stamp_path()
        daemons = [q.pid for q in cl.agents + [cl.coordd]]
        cpu0, dcpu0 = cpu_busy_ms(), proc_cpu_ms(daemons)
        t0_real = time.time_ns()
        t0, p, out = self.coord_start(cl, [self.rank, stamps, mode], start_args=start_args)
        w = ExitWatch([], [p])
        st = wait_stamps(stamps, world, self.launch_timeout(world), p)
        cpu1, dcpu1 = cpu_busy_ms(), proc_cpu_ms(daemons)
        g = w.wait(now() + int(self.launch_timeout(world) * 1e9))
        w.close()
        job = self.job_id(p, out, 10)
        pids = [s[2] for s in st]
        if measure_launch and launch_metric != "launch":
            self.res.add("coord", size, launch_metric, ms(max(s[3] for s in st) - t0))
        elif measure_launch:
            self.res.add("coord", size, "launch", ms(max(s[3] for s in st) - t0))
            self.res.add("coord", size, "launch: CPU busy, all cores", cpu1 - cpu0)
            self.res.add("coord", size, "launch: CPU of coordd + agents", dcpu1 - dcpu0)
            if p.pid in g:
                self.res.add("coord", size, "launch (coordctl start returned)", ms(g[p.pid] - t0))
            self.coord_phases(cl, size, job, t0_real, st)
        if mode == "ignore":
            time.sleep(0.05)  # stamps come after signal(SIGTERM, SIG_IGN) anyway
        self.measure_kill("coord", size, metric, pids,
                          lambda: self.run.spawn(cl.ctl("kill", job), "coordctl-kill"),
                          self.a.grace)

    def coord_phases(self, cl, size, job, t0_real, st):
        """Where a launch's time goes, from coordd's log (wall clock, 1 ms)."""
        marks = {}
        try:
            with open(cl.coordd.log_path, errors="replace") as f:
                for line in f:
                    if ("job %s: " % job) not in line:
                        continue
                    for key, text in (("launching", "PENDING -> LAUNCHING"),
                                      ("running", "LAUNCHING -> RUNNING")):
                        if text in line:
                            ts = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%f")
                            marks[key] = ts.timestamp() * 1000.0
        except (OSError, ValueError):
            return
        if len(marks) < 2:
            return
        t0 = t0_real / 1e6
        first = min(s[4] for s in st) / 1e6
        last = max(s[4] for s in st) / 1e6
        self.res.add("coord", size, "phase: exec to coordd has the job", marks["launching"] - t0)
        self.res.add("coord", size, "phase: LAUNCHING to RUNNING (agents)",
                     marks["running"] - marks["launching"])
        self.res.add("coord", size, "phase: LAUNCHING to first rank stamp", first - marks["launching"])
        self.res.add("coord", size, "phase: first to last rank stamp", last - first)

    def coord_fail(self, cl, size, world):
        stamps = self.stamp_path()
        fail_rank = world - 1
        t0, p, out = self.coord_start(
            cl, [self.rank, stamps, "fail", str(fail_rank), str(self.a.fail_after_ms)], follow=True)
        w = ExitWatch([], [p])
        x = wait_stamps(stamps, 1, self.launch_timeout(world) + self.a.fail_after_ms / 1000,
                        p, kind="X", what="failing rank")[0]
        g = w.wait(now() + 30 * 10**9)
        w.close()
        if p.pid not in g:
            raise BenchError("coordctl start --follow did not end within 30 s of the rank's "
                             "failure:\n" + tail(p.log_path))
        rc = p.wait(5)
        self.run.popens.remove(p)
        self.res.add("coord", size, "exit detect (start --follow exited)", ms(g[p.pid] - x[3]))
        with open(out) as f:
            job = f.read().split()[0]
        stj = cl.status(job)
        if stj.get("state") != "FAILED" or rc == 0:
            self.res.notes.append("coord %s: failing job %s ended %s (coordctl exit %d)" % (
                size, job, stj.get("state"), rc))
        fail_real_ms = x[4] / 1e6
        fail = stj.get("failure") or {}
        if int(fail.get("time_ms", 0) or 0) > 0:
            self.res.add("coord", size, "exit detect (coordd failure.time_ms)",
                         int(fail["time_ms"]) - fail_real_ms)
        if int(stj.get("ended_ms", 0) or 0) > 0:
            self.res.add("coord", size, "exit detect (coordd ended_ms, FAILED)",
                         int(stj["ended_ms"]) - fail_real_ms)
        for r in stj.get("ranks", []):
            if int(r.get("rank", -1)) == fail_rank and int(r.get("end_time_ms", 0) or 0) > 0:
                self.res.add("coord", size, "exit detect (agent rank end_time_ms)",
                             int(r["end_time_ms"]) - fail_real_ms)
        # ranks all exited on their own; nothing to kill, but make sure
        self.run.kill_ranks([s[2] for s in read_stamps(stamps)], self.marker)

    # -- torchrun ----------------------------------------------------------
    def torchrun_argv(self, world, mode_args, monitor=None):
        argv = [sys.executable if self.a.python is None else self.a.python, self.tr_py,
                "--nnodes", "1", "--nproc_per_node", str(world), "--no_python",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                "--max_restarts", "0", "--log_dir", os.path.join(self.run.root, "torchelastic")]
        if monitor is not None:
            argv += ["--monitor_interval", str(monitor)]
        return argv + [self.rank] + mode_args

    def launcher_launch(self, tool, size, world, argv_fn, mode, metric_launch=True):
        stamps = self.stamp_path()
        argv = argv_fn(world, [stamps, mode])
        cpu0 = cpu_busy_ms()
        t0 = now()
        p = self.run.spawn(argv, tool)
        st = wait_stamps(stamps, world, self.launch_timeout(world), p)
        cpu1 = cpu_busy_ms()
        if metric_launch:
            self.res.add(tool, size, "launch", ms(max(s[3] for s in st) - t0))
            self.res.add(tool, size, "launch: CPU busy, all cores", cpu1 - cpu0)
        if p.poll() is not None:
            raise BenchError("%s exited (%s) while its ranks should sleep:\n%s" % (
                tool, p.returncode, tail(p.log_path)))
        return p, [s[2] for s in st], stamps

    def launcher_suite(self, tool, world, argv_fn, fail_argv_fns):
        size = "%d ranks" % world
        log("%s %s" % (tool, size))
        for rep in range(self.a.reps):
            p, pids, _ = self.launcher_launch(tool, size, world, argv_fn, "sleep")
            time.sleep(0.2)  # let the launcher settle into its monitor loop
            self.measure_kill(tool, size, "kill (SIGTERM honoured)", pids,
                              lambda: os.kill(p.pid, signal.SIGTERM) or None, 0, launcher=p)
            self.run.stop(p, signal.SIGKILL, 5)
        for rep in range(self.a.ignore_reps_launchers):
            p, pids, _ = self.launcher_launch(tool, size, world, argv_fn, "ignore", False)
            time.sleep(0.2)
            self.measure_kill(tool, size, "kill (SIGTERM ignored)", pids,
                              lambda: os.kill(p.pid, signal.SIGTERM) or None, 40, launcher=p)
            self.run.stop(p, signal.SIGKILL, 5)
        for rep in range(self.a.orphan_reps):
            p, pids, _ = self.launcher_launch(tool, size, world, argv_fn, "sleep", False)
            time.sleep(0.2)
            os.kill(p.pid, signal.SIGKILL)
            p.wait(10)
            self.run.popens.remove(p)
            time.sleep(2)
            orphans = [q for q in pids if proc_alive(q)]
            self.res.add(tool, size, "orphans 2 s after launcher SIGKILL", len(orphans))
            self.run.kill_ranks(orphans, self.marker)
            left = [q for q in self.run.strays()]
            if left:  # e.g. Open MPI's helpers
                self.res.notes.append("%s %s: after SIGKILL of the launcher, %d more process(es) "
                                      "of ours were left (cleaned up): %s" % (
                                          tool, size, len(left),
                                          "; ".join(cmdline(q)[:60] for q in left[:3])))
                self.run.cleanup()
        for label, fn in fail_argv_fns:
            for rep in range(self.a.fail_reps):
                stamps = self.stamp_path()
                argv = fn(world, [stamps, "fail", str(world - 1), str(self.a.fail_after_ms)])
                p = self.run.spawn(argv, tool)
                w = ExitWatch([], [p])
                x = wait_stamps(stamps, 1, self.launch_timeout(world) + self.a.fail_after_ms / 1000,
                                p, kind="X", what="failing rank")[0]
                g = w.wait(now() + 60 * 10**9)
                w.close()
                if p.pid not in g:
                    raise BenchError("%s did not exit within 60 s of a rank failing:\n%s" % (
                        tool, tail(p.log_path)))
                rc = p.wait(5)
                self.run.popens.remove(p)
                self.res.add(tool, size, label, ms(g[p.pid] - x[3]))
                if rc == 0:
                    self.res.notes.append("%s %s: launcher exited 0 although a rank exited 1" % (
                        tool, size))
                self.run.kill_ranks([s[2] for s in read_stamps(stamps)], self.marker)

    def torchrun(self, world):
        self.launcher_suite(
            "torchrun", world, lambda w, m: self.torchrun_argv(w, m),
            [("exit detect (torchrun exited)", lambda w, m: self.torchrun_argv(w, m)),
             ("exit detect (torchrun exited, --monitor_interval 0.1)",
              lambda w, m: self.torchrun_argv(w, m, 0.1))])

    def floor(self, world):
        """The floor on this machine: one process posix_spawn()s every rank."""
        size = "%d ranks" % world
        for rep in range(self.a.reps):
            stamps = self.stamp_path()
            envs = []
            for r in range(world):
                e = dict(self.run.env)
                e["RANK"] = str(r)
                envs.append(e)
            pids = []
            t0 = now()
            try:
                for r in range(world):
                    pids.append(os.posix_spawn(self.rank, [self.rank, stamps, "exit0"], envs[r]))
                st = wait_stamps(stamps, world, self.launch_timeout(world))
            finally:
                for pid in pids:
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
            self.res.add("floor", size, "launch", ms(max(s[3] for s in st) - t0))

    def mpirun_argv(self, world, mode_args):
        return [self.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                "-np", str(world), "-x", "OMP_NUM_THREADS", self.rank] + mode_args

    def mpirun_suite(self, world):
        self.launcher_suite("mpirun", world, self.mpirun_argv,
                            [("exit detect (mpirun exited)", self.mpirun_argv)])


# ---------------------------------------------------------------- report

ROWS = [
    ("launch", "launch: exec to last rank's start stamp"),
    ("launch (coordctl start returned)", "  coordctl start returned (job RUNNING)"),
    ("launch (checks reused)", "launch, checks reused (the same spec on the same nodes again)"),
    ("launch (--skip-checks)", "launch, coordctl start --skip-checks"),
    ("phase: exec to coordd has the job", "  phase: exec to coordd has the job (log, 1 ms)"),
    ("phase: LAUNCHING to RUNNING (agents)", "  phase: coordd LAUNCHING to RUNNING"),
    ("phase: LAUNCHING to first rank stamp", "  phase: LAUNCHING to first rank stamp"),
    ("phase: first to last rank stamp", "  phase: first to last rank stamp"),
    ("launch: CPU busy, all cores", "  CPU time used on both cores meanwhile"),
    ("launch: CPU of coordd + agents", "  of which coordd + agents"),
    ("kill (SIGTERM honoured)", "kill, ranks honour SIGTERM: to last rank gone"),
    ("kill (SIGTERM honoured) (command returned)", "  coordctl kill returned (confirmed clean)"),
    ("kill (SIGTERM honoured) (launcher exited)", "  launcher exited"),
    ("kill (SIGTERM ignored, grace {g} s)", "kill, ranks ignore SIGTERM (coord grace {g} s)"),
    ("kill (SIGTERM ignored, grace {g} s) (command returned)", "  coordctl kill returned"),
    ("kill (SIGTERM ignored)", "kill, ranks ignore SIGTERM (launcher's own policy)"),
    ("kill (SIGTERM ignored) (launcher exited)", "  launcher exited"),
    ("exit detect (coordd failure.time_ms)", "exit detect: coordd's failure time"),
    ("exit detect (coordd ended_ms, FAILED)", "exit detect: coordd's job FAILED time"),
    ("exit detect (agent rank end_time_ms)", "  agent's rank end time"),
    ("exit detect (start --follow exited)", "exit detect: start --follow exited"),
    ("exit detect (torchrun exited)", "exit detect: torchrun exited"),
    ("exit detect (torchrun exited, --monitor_interval 0.1)", "  same, --monitor_interval 0.1"),
    ("exit detect (mpirun exited)", "exit detect: mpirun exited"),
    ("coordctl jobs (exec + 1 RPC)", "coordctl jobs: exec + one RPC"),
]
COUNT_ROWS = [
    ("kill (SIGTERM honoured) survivors", "survivors, SIGTERM honoured (total)"),
    ("kill (SIGTERM ignored, grace {g} s) survivors", "survivors, SIGTERM ignored (total)"),
    ("kill (SIGTERM ignored) survivors", "survivors, SIGTERM ignored (total)"),
    ("orphans 2 s after launcher SIGKILL", "orphans 2 s after launcher SIGKILL (per rep)"),
]


def fmt(v):
    if v is None:
        return "-"
    return "%.0f" % v if v >= 100 else "%.1f" % v


def report(res, pairs, grace):
    """pairs: [(coord size label, world)]; markdown table, one per size."""
    out = []
    for size, world in pairs:
        cols = [("coord", size), ("torchrun", "%d ranks" % world), ("mpirun", "%d ranks" % world)]
        out.append("\n### %d ranks (coordctl: %s agents x 8 ranks; torchrun, mpirun: %d local ranks)\n"
                   % (world, size.split("x")[0], world))
        out.append("| metric (ms) | coordctl p50 / p99 (n) | torchrun p50 / p99 (n) | mpirun p50 / p99 (n) "
                   "| torchrun / coordctl (p50) | mpirun / coordctl (p50) |")
        out.append("|---|---|---|---|---|---|")
        base = {}
        for key, label in ROWS:
            key = key.format(g="%g" % grace)
            label = label.format(g="%g" % grace)
            cells = []
            p50s = {}
            for tool, sz in cols:
                v = res.get(tool, sz, key)
                if v:
                    p50s[tool] = pct(v, 50)
                    cells.append("%s / %s (%d)" % (fmt(pct(v, 50)), fmt(pct(v, 99)), len(v)))
                else:
                    cells.append("-")
            if all(c == "-" for c in cells):
                continue
            base[key] = p50s
            ratios = []
            cbase = p50s.get("coord")
            # ratio against the matching coordctl metric
            if key.startswith("exit detect") and "coord" not in p50s:
                cb = base.get("exit detect (start --follow exited)", {}).get("coord")
            elif key == "kill (SIGTERM ignored)":
                cb = base.get("kill (SIGTERM ignored, grace %g s)" % grace, {}).get("coord")
            else:
                cb = cbase
            for tool in ("torchrun", "mpirun"):
                if tool in p50s and cb:
                    ratios.append("%.1fx" % (p50s[tool] / cb))
                else:
                    ratios.append("")
            out.append("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(ratios)))
        for key, label in COUNT_ROWS:
            key = key.format(g="%g" % grace)
            cells = []
            for tool, sz in cols:
                v = res.get(tool, sz, key)
                if "orphans" in key:
                    cells.append("%s (%d reps)" % ("/".join(str(int(x)) for x in sorted(set(v))), len(v))
                                 if v else "-")
                else:
                    cells.append("%d in %d reps" % (sum(v), len(v)) if v else "-")
            if all(c == "-" for c in cells):
                continue
            out.append("| %s | %s | | |" % (label, " | ".join(cells)))
        fl = res.get("floor", "%d ranks" % world, "launch")
        if fl:
            out.append("\nFloor on this machine: one process posix_spawn()s the %d ranks "
                       "(from Python), exec to last stamp: p50 %s ms, p99 %s ms (n=%d)." % (
                           world, fmt(pct(fl, 50)), fmt(pct(fl, 99)), len(fl)))
            # The launch targets (issue 23), p50 against p50 of this run.
            mp = res.get("mpirun", "%d ranks" % world, "launch")
            checked = res.get("coord", size, "launch")
            if mp and checked:
                out.append("Target, with checks at most mpirun's launch: coordctl %s ms / mpirun "
                           "%s ms = %.2fx." % (fmt(pct(checked, 50)), fmt(pct(mp, 50)),
                                                pct(checked, 50) / pct(mp, 50)))
            for key, what in (("launch (checks reused)", "checks reused"),
                              ("launch (--skip-checks)", "--skip-checks")):
                v = res.get("coord", size, key)
                if v:
                    out.append("Target, %s within 1.2x of the floor: %s ms / %s ms = %.2fx." % (
                        what, fmt(pct(v, 50)), fmt(pct(fl, 50)), pct(v, 50) / pct(fl, 50)))
    out.append("\nRatios: the competitor's p50 divided by coordctl's p50 for the same metric "
               "(exit detection: against `coordctl start --follow` exiting, the client-visible equivalent of a launcher exiting; ignored SIGTERM: against coordctl "
               "with grace %g s). >1x means coordctl is faster." % grace)
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", help="build dir with bin/coordctl etc. (default: the newest "
                    "complete /work/main/build*)")
    ap.add_argument("--reps", type=int, default=20, help="launch+kill repetitions per size (20)")
    ap.add_argument("--sizes", default="8x8,32x8", help="agents x ranks per agent (8x8,32x8)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="subset of coord,torchrun,mpirun")
    ap.add_argument("--grace", type=float, default=2.0, help="coord kill_grace_s (2)")
    ap.add_argument("--ignore-reps", type=int, default=5,
                    help="coord kills of ranks ignoring SIGTERM per size (5)")
    ap.add_argument("--ignore-reps-launchers", type=int, default=1,
                    help="torchrun/mpirun kills of ranks ignoring SIGTERM (1; torchrun waits 30 s)")
    ap.add_argument("--orphan-reps", type=int, default=2, help="launcher SIGKILL tests (2)")
    ap.add_argument("--fail-reps", type=int, default=10, help="exit-detection reps (10)")
    ap.add_argument("--fail-after-ms", type=int, default=1000,
                    help="the failing rank's life (1000; longer than a launch)")
    ap.add_argument("--quick", action="store_true", help="few reps: a smoke test")
    ap.add_argument("--json", help="write raw samples and summary here")
    ap.add_argument("--python", help="python for torchrun (default: this one)")
    ap.add_argument("--coord-log-level", default="info",
                    help="--log-level of coordd and the agents (debug shows launch phases)")
    ap.add_argument("--agent-arg", action="append", default=[],
                    help="extra coord-agent argument (repeatable), e.g. --agent-arg=--cgroup-parent=none")
    ap.add_argument("--wait-idle", type=float, default=0,
                    help="wait up to S seconds for other load to stop before starting (0)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) for debugging")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.ignore_reps, a.ignore_reps_launchers = 3, 1, 0
        a.orphan_reps, a.fail_reps = 1, 2
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    for t in tools:
        if t not in TOOLS:
            ap.error("--tools: unknown %r" % t)
    sizes = []
    for s in a.sizes.split(","):
        try:
            n, per = s.lower().split("x")
            n, per = int(n), int(per)
        except ValueError:
            ap.error("--sizes: expected NxM, got %r" % s)
        if per != 8 or n < 1 or n > 250:
            ap.error("--sizes: ranks per agent must be 8 and agents 1..250, got %r" % s)
        sizes.append(n)

    # binaries first: fail before starting anything
    cc = shutil.which("cc")
    if not cc:
        raise BenchError("no C compiler `cc` on PATH (needed for bench/stamp_rank.c)")
    bins = None
    if "coord" in tools:
        build, bins = find_build(a.build)
        log("Coord binaries from %s/bin" % build)
    mpirun = None
    if "mpirun" in tools:
        mpirun = shutil.which("mpirun")
        if not mpirun:
            raise BenchError("mpirun not found (apt-get install openmpi-bin), or leave it out "
                             "with --tools")
    if "torchrun" in tools:
        py = a.python or sys.executable
        r = subprocess.run([py, "-c", "import torch.distributed.run"], capture_output=True,
                           timeout=120)
        if r.returncode != 0:
            raise BenchError("%s cannot import torch.distributed.run (run this with Debian's "
                             "/usr/bin/python3 and python3-torch): %s" % (
                                 py, r.stderr.decode()[-300:]))

    # A benchmark on a busy 2-core box measures the other load: say so, or wait.
    def background():
        c0 = cpu_busy_ms()
        time.sleep(1.0)
        return (cpu_busy_ms() - c0) / 1000.0  # cores busy
    bg = background()
    wait_until = time.monotonic() + a.wait_idle
    while bg > 0.15 and time.monotonic() < wait_until:
        log("machine busy (%.2f cores in use by others, load %s); waiting for it to be idle" % (
            bg, open("/proc/loadavg").read().split()[0]))
        time.sleep(5)
        bg = background()
    root = tempfile.mkdtemp(prefix="coord-launch-bench.")
    run = Runner(root)
    run.coord_log_level = a.coord_log_level
    run.agent_args = a.agent_arg
    res = Results()
    res.background_cores = bg
    if bg > 0.15:
        res.notes.append("the machine was busy before the run: %.2f cores used by other "
                         "processes; the figures include that contention" % bg)
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = 0
    try:
        rank_bin = os.path.join(root, "stamp_rank")
        r = subprocess.run([cc, "-O2", "-o", rank_bin, os.path.join(HERE, "stamp_rank.c")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError("cc bench/stamp_rank.c failed:\n" + r.stderr)
        os.makedirs(os.path.join(root, "stamps"))
        if bins:
            # a snapshot, so a rebuild during the run cannot swap binaries under it
            # (coord-agent finds coord-supervisor next to itself)
            os.makedirs(os.path.join(root, "bin"))
            for name in COORD_BINS:
                shutil.copy2(bins[name], os.path.join(root, "bin", name))
                bins[name] = os.path.join(root, "bin", name)
        b = Bench(a, run, res, rank_bin)
        b.mpirun = mpirun
        b.tr_py = os.path.join(root, "torchrun_py311.py")
        with open(b.tr_py, "w") as f:
            f.write(TORCHRUN_WRAPPER)
        # Ours too: whatever names our temp dir (agents and supervisors leave our tree).
        other = OtherLoad(ours=lambda pid, comm: root in cmdline(pid), ignore=("perf",))
        other.start()
        t_start = time.monotonic()
        for n in sizes:
            world = n * 8
            b.floor(world)
            # interleave tools per size so that drift (thermal, page cache) hits all alike
            for t in tools:
                try:
                    if t == "coord":
                        b.coord(bins, n)
                    elif t == "torchrun":
                        b.torchrun(world)
                    elif t == "mpirun":
                        b.mpirun_suite(world)
                except BenchError as e:
                    code = 1
                    msg = "%s at %d ranks failed: %s" % (t, world, e)
                    log("ERROR: " + msg)
                    res.notes.append(msg)
                    run.cleanup()
        elapsed = time.monotonic() - t_start
        other.stop_ev.set()
        other.join(5)
        if other.summary():
            res.notes.append("other load during the run: " + other.summary() +
                             " (a name seen now and then can be a Python thread of ours or "
                             "a short system task; steady cc1plus or test binaries mean "
                             "the figures include their contention)")
        pairs = [("%dx8" % n, n * 8) for n in sizes]
        table = report(res, pairs, a.grace)
        print("# Control-plane benchmark (%.0f s; %s)\n" % (elapsed, " ".join(sys.argv)))
        print("CPU in use by other processes just before the run: %.2f cores\n" % bg)
        print(table)
        if res.notes:
            print("\nNotes:")
            for n in res.notes:
                print("- " + n)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"argv": sys.argv, "elapsed_s": elapsed, "notes": res.notes,
                           "background_cores": bg,
                           "samples_ms": [{"tool": k[0], "size": k[1], "metric": k[2], "values": v,
                                           "p50": pct(v, 50), "p99": pct(v, 99)}
                                          for k, v in sorted(res.data.items())]}, f, indent=1)
    except BenchError as e:
        log("launch_bench: " + str(e))
        code = 2
    finally:
        left = run.cleanup()
        if left:
            log("launch_bench: had to kill %d leftover process(es) at the end" % len(left))
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
        log("launch_bench: " + str(e))
        sys.exit(2)
