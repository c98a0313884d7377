#!/usr/bin/python3
"""Failure detection and restart benchmark: Coord (coordd + coord-agent with
launch.max_restarts) against torchrun --max_restarts, side by side in one run, with
the same world size and the same rank program (bench/restart_rank.c, compiled by
this script into its temp dir).

Failures injected (each --reps times, one after another in one long-lived job;
before each one the bench waits until every rank of the current restart count has
started and the job is RUNNING):

  rank exit  SIGKILL one rank.
  node loss  SIGSTOP one coord-agent (its ranks keep running; coordd stops hearing
             heartbeats); SIGCONT once coordd has decided (or after a bound), so the
             restart can complete. torchrun: two torchrun agents (c10d rendezvous,
             --nnodes 2, W/2 ranks each), SIGSTOP the one that does not host the
             store and watch the other within --node-window.
  hang       a file makes every rank stop writing progress records (COORD_PROGRESS_FD)
             while staying alive; Coord's launch.hang_timeout_s should fire. torchrun
             has no such watchdog: watched for --window seconds.

What is measured (CLOCK_REALTIME everywhere; coordd's timestamps are its wall clock
in ms on this same machine, so they compare with the ranks' stamps):

  decision        coordd's failure time_ms minus the injection (rank exit: SIGKILL;
                  node loss: SIGSTOP; hang: the last progress record + the timeout).
  first SIGTERM   the first `term` stamp of a surviving rank minus the injection:
                  detection + kill signal reaching a peer, seen from outside; the
                  comparable figure for torchrun, which has no decision timestamp.
  old gone        every rank of the failed generation has exited (pidfd_open(2) +
                  poll(2)): the kill confirmed, seen from outside.
  restart         the last `start` stamp of the next restart count minus the injection.
  coordd's own    occurred_ms, confirmed_gone_ms, relaunched_ms of the failure record
                  in `coordctl status --json` (snake_case or lowerCamelCase), "n/a"
                  where the build does not report them.

Run with Debian's /usr/bin/python3 (python3-torch provides torchrun; torchrun runs
under a wrapper that works around its Std.from_str crash on Python 3.11).
Everything started is stopped by PID (SIGSTOPped ones get SIGCONT first), also on
errors and Ctrl-C; the temp dir is removed unless --keep.

  /usr/bin/python3 bench/restart_bench.py --quick          # 2 agents x 2 ranks, a few minutes
  /usr/bin/python3 bench/restart_bench.py                  # 4 agents x 2 ranks = 8 ranks
  /usr/bin/python3 bench/restart_bench.py --nodes 8 --nproc 8 --reps 10   # a real box
"""

import argparse
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import tail, free_port, OtherLoad, proc_table  # noqa: E402
from benchlib import (Runner, BenchError, wait_port, proc_alive, cmdline, cpu_busy_ms, pct,  # noqa: E402
                      find_build, COORD_BINS, TORCHRUN_WRAPPER)

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("rank-exit", "node-loss", "hang")
TERMINAL = ("SUCCEEDED", "FAILED", "KILLED")
# A rank ends itself after this long: a safety net should the bench itself be SIGKILLed
# (every restart count lives seconds, far less than this).
RANK_LIFE_S = "300"

# The figures the task statement quotes for torchrun 1.13 on this machine.
QUOTED_TORCHRUN = [
    "a failed rank reaches its peers after 0.06 s (--monitor_interval 0.1) to 2.9 s "
    "(default --monitor_interval 5)",
    "failure to all ranks re-initialised: 8 s for 4 ranks, 14 s for 8 ranks",
]


def rt_ns():
    return time.time_ns()


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def fget(d, name):
    """An int64 field of a proto-JSON object by its snake_case name, also accepting
    lowerCamelCase; None when absent or 0 (proto3 leaves 0 out or prints "0")."""
    if not isinstance(d, dict):
        return None
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
    for k in (name, camel):
        v = d.get(k)
        if v not in (None, "", 0, "0"):
            try:
                return int(v)
            except (TypeError, ValueError):
                return None
    return None


# ---------------------------------------------------------------- stamps


class Stamps:
    """The ranks' stamp file, read incrementally (only whole lines)."""

    def __init__(self, d):
        self.dir = d
        self.path = os.path.join(d, "stamps")
        self.pos = 0
        self.lines = []  # (kind, rank, rc, pid or None, ns)

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.pos += end + 1
        for line in data[:end].decode(errors="replace").split("\n"):
            p = line.split()
            try:
                if p[0] == "start":
                    self.lines.append(("start", int(p[1]), int(p[2]), int(p[3]), int(p[4])))
                else:
                    self.lines.append((p[0], int(p[1]), int(p[2]), None, int(p[3])))
            except (IndexError, ValueError):
                log("warning: bad stamp line %r" % line)

    def starts(self, rc):
        """rank -> (pid, ns) of restart count rc (the latest stamp per rank)."""
        out = {}
        for k, rank, r, pid, ns in self.lines:
            if k == "start" and r == rc:
                out[rank] = (pid, ns)
        return out

    def rcs(self):
        return sorted({s[2] for s in self.lines if s[0] == "start"})

    def of(self, kind, rc):
        return [s for s in self.lines if s[0] == kind and s[2] == rc]

    def next_complete(self, rc, world):
        """The smallest restart count > rc with `world` ranks started, or None."""
        for r in self.rcs():
            if r > rc and len(self.starts(r)) >= world:
                return r
        return None

    def touch(self, name, text=""):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def remove(self, name):
        try:
            os.unlink(os.path.join(self.dir, name))
        except FileNotFoundError:
            pass


class Observation:
    def __init__(self):
        self.first_term = None  # ns of the first term stamp of the old restart count
        self.old_gone = None    # ns when the last old rank exited (all of them)
        self.next_rc = None
        self.restart = None     # ns of the last start stamp of next_rc
        self.aborted = None     # why the watch stopped early
        self.timed_out = False
        self.still_alive = []


# ---------------------------------------------------------------- results


class Results:
    def __init__(self):
        self.data = {}      # (size, tool, kind, metric) -> [ms]
        self.censored = {}  # (size, tool, kind, metric) -> [window ms] (not seen within)
        self.counts = {}    # (size, tool, kind, metric) -> [int]
        self.injected = {}  # (size, tool, kind) -> n
        self.notes = []

    def add(self, size, tool, kind, metric, value):
        if value is not None:
            self.data.setdefault((size, tool, kind, metric), []).append(value)

    def censor(self, size, tool, kind, metric, window_ms):
        self.censored.setdefault((size, tool, kind, metric), []).append(window_ms)

    def count(self, size, tool, kind, metric, value):
        self.counts.setdefault((size, tool, kind, metric), []).append(value)

    def note(self, msg):
        log("NOTE: " + msg)
        self.notes.append(msg)


# ---------------------------------------------------------------- Coord


class CoordRig:
    """coordd + N agents on 127.0.0.x, port 0, with the bench's heartbeat settings."""

    def __init__(self, bench, n_agents):
        self.b, self.run, self.n = bench, bench.run, n_agents
        self.dir = tempfile.mkdtemp(prefix="coord-", dir=self.run.root)
        self.coordd = None
        self.agents = []
        self.addr = None
        self.hosts = os.path.join(self.dir, "hosts")

    def start(self):
        a, bins = self.b.a, self.b.bins
        pf = os.path.join(self.dir, "coordd.port")
        self.coordd = self.run.spawn(
            [bins["coordd"], "--listen", "127.0.0.1:0", "--state-dir", os.path.join(self.dir, "coordd"),
             "--port-file", pf, "--heartbeat-ms", str(a.heartbeat_ms),
             "--missed-heartbeats", str(a.missed_heartbeats), "--log-level", a.coord_log_level],
            "coordd")
        pfs = []
        for i in range(self.n):
            ad = os.path.join(self.dir, "agent%d" % i)
            self.agents.append(self.run.spawn(
                [bins["coord-agent"], "--listen", "127.0.0.%d:0" % (i + 2), "--state-dir", ad,
                 "--port-file", ad + ".port", "--log-level", a.coord_log_level] + a.agent_arg,
                "agent%d" % i))
            pfs.append(ad + ".port")
        self.addr = "127.0.0.1:%d" % wait_port(self.coordd, pf, "coordd")
        lines = ["127.0.0.%d:%d" % (i + 2, wait_port(p, f, "coord-agent %d" % i))
                 for i, (p, f) in enumerate(zip(self.agents, pfs))]
        with open(self.hosts, "w") as f:
            f.write("\n".join(lines) + "\n")

    def ctl(self, *args):
        return [self.b.bins["coordctl"], "--coordinator", self.addr] + list(args)

    def status(self, job):
        try:
            p = subprocess.run(self.ctl("status", job, "--json"), capture_output=True, text=True,
                               timeout=20, env=self.run.env)
        except subprocess.TimeoutExpired:
            raise BenchError("coordctl status %s --json did not answer within 20 s" % job)
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise BenchError("coordctl status %s --json: exit %d, not JSON: %s %s" % (
                job, p.returncode, p.stdout[:300], p.stderr[:300]))

    def start_job(self, stamps, max_restarts):
        a = self.b.a
        spec = os.path.join(stamps.dir, "job.json")
        with open(spec, "w") as f:
            json.dump({"name": "restart-bench", "launch": {
                "nproc_per_node": self.b.nproc, "command": [self.b.rank_bin, stamps.dir, RANK_LIFE_S],
                "max_restarts": max_restarts, "restart_backoff_s": 0,
                "hang_timeout_s": a.hang_timeout, "kill_grace_s": a.kill_grace,
                "env": {"OMP_NUM_THREADS": "1"}}}, f)
        try:
            p = subprocess.run(self.ctl("start", "--hosts", self.hosts, "--config", spec, "--skip-checks"),
                               capture_output=True, text=True, timeout=120, env=self.run.env)
        except subprocess.TimeoutExpired:
            raise BenchError("coordctl start did not return within 120 s")
        words = p.stdout.split()
        if p.returncode != 0 or not words:
            raise BenchError("coordctl start: exit %d: %s %s" % (p.returncode, p.stdout[-300:],
                                                                 p.stderr[-500:]))
        return words[0]

    def kill_job(self, job):
        try:
            p = subprocess.run(self.ctl("kill", job), capture_output=True, text=True, timeout=60,
                               env=self.run.env)
            if p.returncode != 0:
                log("coordctl kill %s: exit %d: %s" % (job, p.returncode, (p.stdout + p.stderr)[-300:]))
        except subprocess.TimeoutExpired:
            log("coordctl kill %s did not return within 60 s" % job)

    def log_lines_since(self, offset):
        """(new offset, new whole lines) of coordd's log."""
        try:
            with open(self.coordd.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return offset, []
        end = data.rfind(b"\n")
        if end < 0:
            return offset, []
        return offset + end + 1, data[:end].decode(errors="replace").split("\n")

    def log_size(self):
        try:
            return os.path.getsize(self.coordd.log_path)
        except OSError:
            return 0

    def stop(self):
        for p in self.agents + [self.coordd]:
            if p is not None:
                self.b.cont(p.pid)
                self.run.stop(p, signal.SIGTERM, 5.0)


def failures_of(st):
    f = st.get("failures")
    return f if isinstance(f, list) else None


def failure_kind_ok(rec, kind):
    """Whether coordd's failure record names the kind of failure injected."""
    k = str(rec.get("kind", ""))
    msg = str(rec.get("message", ""))
    if kind == "rank-exit":
        return "RANK_EXIT" in k or "signal 9" in msg or str(rec.get("signal")) == "9"
    if kind == "node-loss":
        return "NODE_LOST" in k or " lost" in msg
    return "HANG" in k or msg.startswith("hang")


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, a, run, res, rank_bin, bins):
        self.a, self.run, self.res, self.rank_bin, self.bins = a, run, res, rank_bin, bins
        self.stopped = set()  # pids we SIGSTOPped and have not SIGCONTed yet
        self.stampdirs = []
        self.n = 0
        self.rng = random.Random(a.seed)

    def pause(self, period_s):
        """Before an injection: --settle, plus a random phase within the period the
        launcher polls at (torchrun's monitor interval, coordd's heartbeat), so that
        no launcher is always hit at the same point of its cycle."""
        time.sleep(self.a.settle + self.rng.uniform(0, period_s))

    # -- plumbing ------------------------------------------------------------
    def new_stamps(self, what):
        self.n += 1
        d = os.path.join(self.run.root, "stamps", "%03d-%s" % (self.n, what))
        os.makedirs(d)
        self.stampdirs.append(d)
        return Stamps(d)

    def stop_proc(self, pid):
        os.kill(pid, signal.SIGSTOP)
        self.stopped.add(pid)

    def cont(self, pid):
        if pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.stopped.discard(pid)

    def cont_all(self):
        for pid in list(self.stopped):
            self.cont(pid)

    def finish_all(self):
        """Every rank of every run ends itself (exit 0) within 100 ms."""
        for d in self.stampdirs:
            try:
                with open(os.path.join(d, "finish"), "w"):
                    pass
            except OSError:
                pass

    def victim(self, rep):
        return (rep * (self.nproc + 1) + 1) % self.world

    def wait_ready(self, stamps, min_rc, timeout_s, check=None, procs=()):
        """Until every rank of one restart count >= min_rc has started and is alive and
        check(rc) (if given) agrees; returns (rc, {rank: (pid, ns)})."""
        deadline = time.monotonic() + timeout_s
        last_check, why = 0.0, ""
        while True:
            stamps.read()
            for rc in reversed(stamps.rcs()):
                if rc < min_rc:
                    break
                st = stamps.starts(rc)
                if len(st) < self.world:
                    continue
                if not all(proc_alive(pid) for pid, _ in st.values()):
                    why = "a rank of restart count %d is gone" % rc
                    break
                if check is None:
                    return rc, st
                if time.monotonic() - last_check >= 0.2:
                    last_check = time.monotonic()
                    ok, why = check(rc)
                    if ok:
                        return rc, st
                break
            for p in procs:
                if p.poll() is not None:
                    raise BenchError("%s exited (%s) while waiting for its ranks:\n%s" % (
                        p.name, p.returncode, tail(p.log_path)))
            if time.monotonic() > deadline:
                have = {rc: len(stamps.starts(rc)) for rc in stamps.rcs()}
                raise BenchError("no restart count >= %d with all %d ranks running within %.0f s "
                                 "(ranks started per restart count: %s)%s" % (
                                     min_rc, self.world, timeout_s, have or "none",
                                     ("; " + why) if why else ""))
            time.sleep(0.01)

    def observe(self, stamps, rc, old_pids, timeout_s, tick=None, exclude_rank=None):
        """After a failure was injected into restart count rc: until every rank of a
        later restart count has started and every old rank has exited (or timeout,
        or tick(obs) returns a reason to stop)."""
        obs = Observation()
        fds, gone = {}, {}
        poller = select.poll()
        for pid in old_pids:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                gone[pid] = rt_ns()
                continue
            fds[fd] = pid
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                for fd, _ in poller.poll(10):
                    t = rt_ns()
                    pid = fds.pop(fd)
                    poller.unregister(fd)
                    os.close(fd)
                    gone[pid] = t
                stamps.read()
                if obs.first_term is None:
                    terms = [s[4] for s in stamps.of("term", rc) if s[1] != exclude_rank]
                    if terms:
                        obs.first_term = min(terms)
                if obs.next_rc is None:
                    obs.next_rc = stamps.next_complete(rc, self.world)
                if obs.next_rc is not None and not fds:
                    break
                if tick is not None:
                    why = tick(obs)
                    if why:
                        obs.aborted = why
                        break
                if time.monotonic() > deadline:
                    obs.timed_out = True
                    break
        finally:
            for fd in fds:
                os.close(fd)
        if not fds:
            obs.old_gone = max(gone.values()) if gone else None
        obs.still_alive = list(fds.values())
        if obs.next_rc is not None:
            obs.restart = max(ns for _, ns in stamps.starts(obs.next_rc).values())
        return obs

    # -- the floor -------------------------------------------------------------
    def floor(self, size):
        """The rank program's own start-up: one process posix_spawn()s W ranks."""
        for rep in range(3 if self.a.quick else 5):
            stamps = self.new_stamps("floor")
            pids = []
            t0 = rt_ns()
            try:
                for r in range(self.world):
                    env = dict(self.run.env, RANK=str(r))
                    pids.append(os.posix_spawn(self.rank_bin, [self.rank_bin, stamps.dir, "60"], env))
                rc, st = self.wait_ready(stamps, 0, 30)
                self.res.add(size, "floor", "startup", "last",
                             (max(ns for _, ns in st.values()) - t0) / 1e6)
                self.res.add(size, "floor", "startup", "first",
                             (min(ns for _, ns in st.values()) - t0) / 1e6)
            finally:
                stamps.touch("finish")
                for pid in pids:
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass

    # -- Coord -------------------------------------------------------------------
    def coord(self, size):
        tool = "coord"
        a = self.a
        plan = [(k, r) for k in ("rank-exit", "hang", "node-loss") if k in self.kinds
                for r in range(a.reps)]
        if "node-loss" in self.kinds and self.nodes < 2:
            self.res.note("coord %s: node loss needs at least 2 agents; skipped" % size)
            plan = [x for x in plan if x[0] != "node-loss"]
        log("coord %s: coordd + %d agents, heartbeat %d ms x %d, hang_timeout_s %d, "
            "kill_grace_s %g; %d injections" % (size, self.nodes, a.heartbeat_ms,
                                                 a.missed_heartbeats, a.hang_timeout,
                                                 a.kill_grace, len(plan)))
        rig = CoordRig(self, self.nodes)
        job = stamps = None
        jobs = []
        try:
            rig.start()
            for kind, rep in plan:
                if job is None:
                    stamps = self.new_stamps("coord")
                    job = rig.start_job(stamps, max_restarts=3 * len(plan) + 5)
                    jobs.append(job)
                    log("coord %s: job %s" % (size, job))
                    min_rc = 0
                last = {}

                def check(rc):
                    st = rig.status(job)
                    last["st"] = st
                    state, gen = st.get("state"), int(st.get("generation", 0) or 0)
                    if state in TERMINAL:
                        raise BenchError("job %s is %s: %s" % (job, state, (st.get("failure") or {})
                                                              .get("message", st.get("message"))))
                    return (state == "RUNNING" and gen == rc,
                            "job %s is %s in generation %d" % (job, state, gen))
                try:
                    rc, st = self.wait_ready(stamps, min_rc, a.restart_timeout, check)
                except BenchError as e:
                    self.res.note("coord %s: %s rep %d: job not ready: %s" % (size, kind, rep, e))
                    rig.kill_job(job)
                    job = None
                    continue
                self.pause(a.heartbeat_ms / 1000.0)
                self.res.injected[(size, tool, kind)] = self.res.injected.get((size, tool, kind), 0) + 1
                try:
                    ok, next_rc = getattr(self, "coord_" + kind.replace("-", "_"))(
                        size, rig, job, stamps, rc, st, last["st"], rep)
                except BenchError as e:
                    ok, next_rc = False, None
                    self.res.note("coord %s: %s rep %d: %s" % (size, kind, rep, e))
                self.cont_all()
                if not ok:
                    rig.kill_job(job)
                    job = None
                else:
                    min_rc = next_rc
        finally:
            self.cont_all()
            if stamps is not None:
                stamps.touch("finish")
            for j in jobs:
                rig.kill_job(j)
            rig.stop()
            deadline = time.monotonic() + 3
            left = self.run.strays()
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = self.run.strays()
            if left:
                self.res.note("coord %s: %d process(es) left after coordctl kill and stopping coordd "
                              "and the agents: %s" % (size, len(left),
                                                      "; ".join(cmdline(p)[:100] for p in left[:5])))
                self.run.cleanup()

    def coord_tick(self, rig, job, extra=None):
        """A tick for observe(): extra(obs) first; every second, whether the job ended."""
        state = {"t": time.monotonic()}

        def tick(obs):
            if extra is not None:
                extra(obs)
            if time.monotonic() - state["t"] >= 1.0:
                state["t"] = time.monotonic()
                st = rig.status(job)
                if st.get("state") in TERMINAL:
                    return "job %s ended %s: %s" % (job, st.get("state"), (st.get("failure") or {})
                                                    .get("message", st.get("message")))
            return None
        return tick

    def coord_after(self, size, kind, rig, job, stamps, rc, before, t_event, obs, extra_ref=None):
        """Common bookkeeping after one Coord injection; returns (ok, next_rc)."""
        tool = "coord"
        st = rig.status(job)
        fl = failures_of(st)
        nb = len(failures_of(before) or [])
        if fl is not None:
            new = fl[nb:]
        else:
            f = st.get("failure") or {}
            new = [f] if (fget(f, "time_ms") or 0) >= t_event / 1e6 - 5 else []
        ev_ms = t_event / 1e6
        if not new:
            self.res.note("coord %s: %s: no failure record in status after the injection "
                          "(state %s, generation %s)" % (size, kind, st.get("state"), st.get("generation")))
            rec = {}
        else:
            rec = new[0]
            if fl is not None and len(new) > 1:
                self.res.note("coord %s: %s: one injection gave %d failure records: %s" % (
                    size, kind, len(new), " | ".join(str(x.get("message"))[:120] for x in new)))
            if not failure_kind_ok(rec, kind):
                self.res.note("coord %s: %s injected but coordd recorded: %s" % (
                    size, kind, str(rec.get("message"))[:200]))
        self.res.count(size, tool, kind, "records", len(new) if fl is not None else None)
        dec = fget(rec, "time_ms")
        occ = fget(rec, "occurred_ms")
        conf = fget(rec, "confirmed_gone_ms")
        rel = fget(rec, "relaunched_ms")
        self.res.add(size, tool, kind, "decided", dec - ev_ms if dec else None)
        self.res.add(size, tool, kind, "decided-occurred", dec - occ if dec and occ else None)
        if kind == "hang" and occ:
            self.res.add(size, tool, kind, "occurred-vs-stamp", occ - (ev_ms - self.a.hang_timeout * 1000))
        self.res.add(size, tool, kind, "confirmed", conf - ev_ms if conf else None)
        self.res.add(size, tool, kind, "relaunched", rel - ev_ms if rel else None)
        if obs.first_term:
            self.res.add(size, tool, kind, "first-term", (obs.first_term - t_event) / 1e6)
        if obs.old_gone:
            self.res.add(size, tool, kind, "old-gone", (obs.old_gone - t_event) / 1e6)
        if obs.restart:
            self.res.add(size, tool, kind, "restart", (obs.restart - t_event) / 1e6)
            base = dec
            if kind == "node-loss" and extra_ref and extra_ref.get("cont"):
                base = max(dec or 0, extra_ref["cont"] / 1e6)
            if base:
                self.res.add(size, tool, kind, "after-decision", obs.restart / 1e6 - base)
            if obs.first_term and obs.old_gone:
                # from the kill reaching the ranks (node loss: the stopped node's ranks can
                # only be killed once its agent runs again) to the last one gone
                k0 = obs.first_term
                if kind == "node-loss" and extra_ref and extra_ref.get("cont"):
                    k0 = max(k0, extra_ref["cont"])
                self.res.add(size, tool, kind, "grace-needed", max(0, obs.old_gone - k0) / 1e6)
            self.res.count(size, tool, kind, "restarts used", obs.next_rc - rc)
        if obs.next_rc is None or obs.old_gone is None:
            what = []
            if obs.next_rc is None:
                what.append("no restart count > %d had all %d ranks started" % (rc, self.world))
            if obs.old_gone is None:
                what.append("%d old rank(s) still alive: %s" % (len(obs.still_alive), obs.still_alive[:8]))
            self.res.note("coord %s: %s: %s %s (state %s, generation %s, restarts %s; failure: %s)" % (
                size, kind, " and ".join(what),
                obs.aborted or ("within %.0f s" % self.a.restart_timeout),
                st.get("state"), st.get("generation"), st.get("restarts"),
                str((st.get("failure") or {}).get("message"))[:200]))
            return False, None
        return True, obs.next_rc

    def coord_rank_exit(self, size, rig, job, stamps, rc, st, before, rep):
        victim = self.victim(rep)
        pid = st[victim][0]
        old = [p for p, _ in st.values()]
        t = rt_ns()
        os.kill(pid, signal.SIGKILL)
        obs = self.observe(stamps, rc, old, self.a.restart_timeout, self.coord_tick(rig, job),
                           exclude_rank=victim)
        log("coord %s: rank exit %d (rank %d): first SIGTERM %s ms, restart %s ms" % (
            size, rep, victim, msf(obs.first_term, t), msf(obs.restart, t)))
        return self.coord_after(size, "rank-exit", rig, job, stamps, rc, before, t, obs)

    def coord_hang(self, size, rig, job, stamps, rc, st, before, rep):
        old = [p for p, _ in st.values()]
        t_inject = rt_ns()
        stamps.touch("hang", str(rc))

        def extra(obs):
            if obs.first_term is not None:
                stamps.remove("hang")
        obs = self.observe(stamps, rc, old, self.a.restart_timeout + self.a.hang_timeout,
                           self.coord_tick(rig, job, extra))
        stamps.remove("hang")
        hangs = stamps.of("hang", rc)
        lp = [s[4] for s in hangs if s[4] > 0]
        if len(hangs) < self.world or not lp:
            self.res.note("coord %s: hang rep %d: only %d of %d ranks stamped when they stopped "
                          "writing progress" % (size, rep, len(hangs), self.world))
            lp = lp or [t_inject]
        t_event = max(lp) + self.a.hang_timeout * 10**9  # the timeout expires
        log("coord %s: hang %d: first SIGTERM %s ms after the timeout, restart %s ms" % (
            size, rep, msf(obs.first_term, t_event), msf(obs.restart, t_event)))
        return self.coord_after(size, "hang", rig, job, stamps, rc, before, t_event, obs)

    def coord_node_loss(self, size, rig, job, stamps, rc, st, before, rep):
        idx = (rep + 1) % self.nodes
        agent = rig.agents[idx]
        old = [p for p, _ in st.values()]
        offset = rig.log_size()
        ref = {"cont": None, "off": offset, "seen": None, "decided": None}
        # SIGCONT --node-down s after coordd has decided (its log says the job left
        # RUNNING, or a rank got SIGTERM), or after a bound well past the heartbeat budget.
        budget_s = self.a.heartbeat_ms * self.a.missed_heartbeats / 1000.0
        down = self.a.node_down
        t_mono = time.monotonic()
        bound = t_mono + max(3 * budget_s, budget_s + 10) + down
        needle = "job %s: RUNNING -> " % job

        def extra(obs):
            if ref["cont"] is not None:
                return
            now_m = time.monotonic()
            if ref["decided"] is None:
                ref["off"], lines = rig.log_lines_since(ref["off"])
                if any(needle in ln for ln in lines) or obs.first_term is not None:
                    ref["decided"] = now_m
            if (ref["decided"] is not None and now_m >= ref["decided"] + down) or now_m > bound:
                if ref["decided"] is None:
                    ref["seen"] = "had not decided within %.0f s" % (bound - t_mono)
                self.cont(agent.pid)
                ref["cont"] = rt_ns()
        t = rt_ns()
        self.stop_proc(agent.pid)
        try:
            obs = self.observe(stamps, rc, old, self.a.restart_timeout + budget_s + down,
                               self.coord_tick(rig, job, extra))
        finally:
            self.cont(agent.pid)
        if ref["cont"] is None:
            ref["cont"] = rt_ns()
        if ref["seen"]:
            self.res.note("coord %s: node loss rep %d (agent %d SIGSTOPped): coordd %s; SIGCONT sent" % (
                size, rep, idx, ref["seen"]))
        self.res.add(size, "coord", "node-loss", "sigcont", (ref["cont"] - t) / 1e6)
        if obs.restart:
            self.res.add(size, "coord", "node-loss", "restart-after-cont", (obs.restart - ref["cont"]) / 1e6)
        log("coord %s: node loss %d (agent %d): SIGCONT after %s ms, restart %s ms" % (
            size, rep, idx, msf(ref["cont"], t), msf(obs.restart, t)))
        return self.coord_after(size, "node-loss", rig, job, stamps, rc, before, t, obs, ref)

    # -- torchrun ------------------------------------------------------------------
    def torchrun_base(self, monitor):
        return [self.a.python or sys.executable, self.tr_py, "--max_restarts",
                str(3 * self.a.reps + 5), "--monitor_interval", "%g" % monitor, "--no_python",
                "--log_dir", os.path.join(self.run.root, "torchelastic")]

    def torchrun(self, size, monitor):
        tool = "torchrun-%g" % monitor
        a = self.a
        if not ({"rank-exit", "hang"} & set(self.kinds)):
            return
        stamps = self.new_stamps("torchrun")
        argv = self.torchrun_base(monitor) + ["--standalone", "--nnodes", "1", "--nproc_per_node",
                                              str(self.world), self.rank_bin, stamps.dir, RANK_LIFE_S]
        log("torchrun %s, --monitor_interval %g" % (size, monitor))
        p = self.run.spawn(argv, "torchrun")
        try:
            rc, st = self.wait_ready(stamps, 0, 60 + self.world * 0.5, procs=[p])
            if "rank-exit" in self.kinds:
                for rep in range(a.reps):
                    self.pause(monitor)
                    victim = self.victim(rep)
                    old = [q for q, _ in st.values()]
                    self.res.injected[(size, tool, "rank-exit")] = \
                        self.res.injected.get((size, tool, "rank-exit"), 0) + 1
                    t = rt_ns()
                    os.kill(st[victim][0], signal.SIGKILL)
                    obs = self.observe(stamps, rc, old, a.restart_timeout + monitor,
                                       lambda o: ("torchrun exited (%s)" % p.returncode)
                                       if p.poll() is not None else None, exclude_rank=victim)
                    log("%s %s: rank exit %d (rank %d): first SIGTERM %s ms, restart %s ms" % (
                        tool, size, rep, victim, msf(obs.first_term, t), msf(obs.restart, t)))
                    k = "rank-exit"
                    if obs.first_term:
                        self.res.add(size, tool, k, "first-term", (obs.first_term - t) / 1e6)
                    if obs.old_gone:
                        self.res.add(size, tool, k, "old-gone", (obs.old_gone - t) / 1e6)
                    if obs.restart:
                        self.res.add(size, tool, k, "restart", (obs.restart - t) / 1e6)
                        self.res.count(size, tool, k, "restarts used", obs.next_rc - rc)
                        if obs.first_term:
                            self.res.add(size, tool, k, "after-decision", (obs.restart - obs.first_term) / 1e6)
                            if obs.old_gone:
                                self.res.add(size, tool, k, "grace-needed",
                                             (obs.old_gone - obs.first_term) / 1e6)
                    if obs.next_rc is None or obs.old_gone is None:
                        raise BenchError("rank exit rep %d: restart not complete (%s; %d old rank(s) "
                                         "alive):\n%s" % (rep, obs.aborted or "timed out",
                                                          len(obs.still_alive), tail(p.log_path)))
                    rc, st = self.wait_ready(stamps, obs.next_rc, 30, procs=[p])
            if "hang" in self.kinds:
                self.pause(monitor)
                self.res.injected[(size, tool, "hang")] = 1
                old = [q for q, _ in st.values()]
                t = rt_ns()
                stamps.touch("hang", str(rc))
                obs = self.observe(stamps, rc, old, a.window,
                                   lambda o: "torchrun exited" if p.poll() is not None else None)
                stamps.remove("hang")
                hangs = stamps.of("hang", rc)
                if len(hangs) < self.world:
                    self.res.note("%s %s: hang: only %d of %d ranks stamped the hang" % (
                        tool, size, len(hangs), self.world))
                if obs.first_term or obs.next_rc is not None:
                    self.res.add(size, tool, "hang", "first-term",
                                 (obs.first_term - t) / 1e6 if obs.first_term else None)
                    self.res.note("%s %s: torchrun reacted to the hang (first SIGTERM %s ms after "
                                  "the hang began)" % (tool, size, msf(obs.first_term, t)))
                else:
                    for m in ("decided", "first-term", "restart"):
                        self.res.censor(size, tool, "hang", m, a.window * 1000)
                    log("%s %s: hang not detected within %g s" % (tool, size, a.window))
        except BenchError as e:
            self.res.note("%s %s: %s" % (tool, size, e))
        finally:
            self.end_torchrun(stamps, [p], tool, size)

    def end_torchrun(self, stamps, procs, tool, size):
        for q in procs:
            self.cont(q.pid)
        stamps.touch("finish")
        deadline = time.monotonic() + 20
        for q in procs:
            try:
                q.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.res.note("%s %s: torchrun pid %d did not exit within 20 s of its ranks "
                              "finishing; stopped by PID" % (tool, size, q.pid))
            self.run.stop(q, signal.SIGTERM, 5)
        stamps.read()
        pids = [s[3] for s in stamps.lines if s[0] == "start"]
        left = [q for q in pids if proc_alive(q) and self.rank_bin in cmdline(q)]
        for q in left:
            try:
                os.kill(q, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            self.res.note("%s %s: %d rank(s) outlived torchrun; killed by PID" % (tool, size, len(left)))

    def torchrun_node_loss(self, size, monitor):
        tool = "torchrun-%g" % monitor
        a = self.a
        if self.world % 2 or self.world < 2:
            self.res.note("%s %s: node loss needs an even world size (two torchrun agents); "
                          "not measured" % (tool, size))
            return
        stamps = self.new_stamps("torchrun2")
        port = free_port()
        half = self.world // 2
        base = self.torchrun_base(monitor) + [
            "--nnodes", "2", "--nproc_per_node", str(half), "--rdzv_backend", "c10d",
            "--rdzv_endpoint", "127.0.0.1:%d" % port, "--rdzv_id", "restart-bench-%d" % self.n]
        log("%s %s: node loss, 2 torchrun agents x %d ranks (c10d rendezvous)" % (tool, size, half))
        host = self.run.spawn(base + ["--rdzv_conf", "is_host=1", self.rank_bin, stamps.dir, RANK_LIFE_S], "torchrun-a")
        time.sleep(0.3)
        other = self.run.spawn(base + ["--rdzv_conf", "is_host=0", self.rank_bin, stamps.dir, RANK_LIFE_S], "torchrun-b")
        procs = [host, other]
        try:
            rc, st = self.wait_ready(stamps, 0, 90 + self.world * 0.5, procs=procs)
            table = proc_table()
            mine = {r for r, (pid, _) in st.items() if table.get(pid, (0,))[0] == host.pid}
            theirs = {r for r, (pid, _) in st.items() if table.get(pid, (0,))[0] == other.pid}
            if len(mine) != half or len(theirs) != half:
                raise BenchError("cannot tell which ranks belong to which torchrun (%d + %d of %d)" % (
                    len(mine), len(theirs), self.world))
            self.pause(monitor)
            self.res.injected[(size, tool, "node-loss")] = 1
            t = rt_ns()
            self.stop_proc(other.pid)
            deadline = time.monotonic() + a.node_window
            seen = None
            while time.monotonic() < deadline:
                stamps.read()
                terms = [s[4] for s in stamps.of("term", rc) if s[1] in mine]
                if terms:
                    seen = min(terms)
                    break
                if stamps.next_complete(rc, 1) is not None:
                    seen = min(s[4] for s in stamps.lines if s[0] == "start" and s[2] > rc)
                    break
                if host.poll() is not None:
                    seen = rt_ns()
                    self.res.note("%s %s: the surviving torchrun exited (%s) while its peer was "
                                  "stopped" % (tool, size, host.returncode))
                    break
                time.sleep(0.02)
            self.cont(other.pid)
            if seen is not None:
                self.res.add(size, tool, "node-loss", "first-term", (seen - t) / 1e6)
                log("%s %s: node loss noticed after %.0f ms" % (tool, size, (seen - t) / 1e6))
            else:
                for m in ("decided", "first-term", "restart"):
                    self.res.censor(size, tool, "node-loss", m, a.node_window * 1000)
                log("%s %s: node loss not noticed within %g s" % (tool, size, a.node_window))
        except BenchError as e:
            self.res.note("%s %s: node loss not measured: %s" % (tool, size, e))
        finally:
            self.end_torchrun(stamps, procs, tool, size)


def msf(ns, t0):
    return "-" if ns is None else "%.0f" % ((ns - t0) / 1e6)


# ---------------------------------------------------------------- report

ROWS = [
    ("rank-exit", "decided", "detection: coordd decided (failure time_ms)", True),
    ("rank-exit", "decided-occurred", "  coordd's own: time_ms - occurred_ms", True),
    ("rank-exit", "first-term", "detection + SIGTERM at the first peer (term stamp)", False),
    ("rank-exit", "old-gone", "kill confirmed: last old rank exited (pidfd)", False),
    ("rank-exit", "confirmed", "  coordd's confirmed_gone_ms", True),
    ("rank-exit", "restart", "restart: last new rank's start stamp", False),
    ("rank-exit", "relaunched", "  coordd's relaunched_ms", True),
    ("rank-exit", "after-decision", "  relaunch after the decision (torchrun: after its first SIGTERM)", False),
    ("node-loss", "decided", "detection: coordd decided (failure time_ms)", True),
    ("node-loss", "decided-occurred", "  coordd's own: time_ms - occurred_ms (last heartbeat)", True),
    ("node-loss", "first-term", "detection + SIGTERM at the first rank (torchrun: surviving agent's ranks)", False),
    ("node-loss", "sigcont", "  (bench sent SIGCONT to the agent)", False),
    ("node-loss", "old-gone", "kill confirmed: last old rank exited (pidfd)", False),
    ("node-loss", "confirmed", "  coordd's confirmed_gone_ms", True),
    ("node-loss", "restart", "restart: last new rank's start stamp", False),
    ("node-loss", "relaunched", "  coordd's relaunched_ms", True),
    ("node-loss", "restart-after-cont", "  restart after the SIGCONT", False),
    ("node-loss", "after-decision", "  relaunch after max(decision, SIGCONT)", False),
    ("hang", "decided", "detection: coordd decided, after the timeout expired", True),
    ("hang", "decided-occurred", "  coordd's own: time_ms - occurred_ms", True),
    ("hang", "occurred-vs-stamp", "  coordd's occurred_ms - the ranks' last progress stamp (not after the timeout)", True),
    ("hang", "first-term", "detection + SIGTERM at the first rank, after the timeout", False),
    ("hang", "old-gone", "kill confirmed: last old rank exited, after the timeout", False),
    ("hang", "confirmed", "  coordd's confirmed_gone_ms, after the timeout", True),
    ("hang", "restart", "restart: last new rank's start stamp, after the timeout", False),
    ("hang", "relaunched", "  coordd's relaunched_ms, after the timeout", True),
    ("hang", "after-decision", "  relaunch after the decision", False),
]
EVENT = {"rank-exit": "SIGKILL of one rank", "node-loss": "SIGSTOP of one agent",
         "hang": "the hang timeout expiring (last progress record + launch.hang_timeout_s)"}


def fmt(v):
    if v is None:
        return "-"
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v


def cell(res, key):
    v = res.data.get(key, [])
    c = res.censored.get(key, [])
    parts = []
    if v:
        parts.append("%s / %s (%d)" % (fmt(pct(v, 50)), fmt(max(v)), len(v)))
    if c:
        parts.append("not seen in %g s (%d)" % (max(c) / 1000.0, len(c)))
    return " + ".join(parts)


def ratio(res, key_t, key_c):
    c = res.data.get(key_c, [])
    if not c or pct(c, 50) <= 0:
        return ""
    t = res.data.get(key_t, [])
    if t:
        return "%.1fx" % (pct(t, 50) / pct(c, 50))
    cz = res.censored.get(key_t, [])
    if cz:
        return "> %.0fx" % (min(cz) / pct(c, 50))
    return ""


def report(res, sizes, tools, a):
    out = []
    trs = [t for t in tools if t.startswith("torchrun")]
    for size, nodes, nproc in sizes:
        world = nodes * nproc
        out.append("\n### %d ranks (Coord: %d agents x %d ranks; torchrun: 1 agent x %d ranks, "
                   "node loss: 2 agents x %d)\n" % (world, nodes, nproc, world, world // 2))
        hdr = "| failure | metric, ms after the failure (p50 / max (n)) | Coord |"
        sep = "|---|---|---|"
        for t in trs:
            hdr += " torchrun, monitor %s s | torchrun / Coord |" % t.split("-", 1)[1]
            sep += "---|---|"
        out.append(hdr)
        out.append(sep)
        for kind, metric, label, coord_only in ROWS:
            if kind not in a.kinds:
                continue
            ck = (size, "coord", kind, metric)
            ccell = cell(res, ck)
            if not ccell and coord_only and res.injected.get((size, "coord", kind)):
                ccell = "n/a"
            tcells = []
            for t in trs:
                tk = (size, t, kind, metric)
                tc = cell(res, tk)
                if not tc and metric == "decided" and res.injected.get((size, t, kind)):
                    tc = "n/a (no timestamp)"
                tcells.append((tc or "-", ratio(res, tk, ck)))
            if not ccell and all(tc == "-" for tc, _ in tcells):
                continue
            row = "| %s | %s | %s |" % (kind, label, ccell or "-")
            for tc, r in tcells:
                row += " %s | %s |" % (tc, r)
            out.append(row)
        # counts
        for kind in a.kinds:
            cells = []
            for t in ["coord"] + trs:
                v = res.counts.get((size, t, kind, "restarts used"), [])
                cells.append(",".join(str(x) for x in v) if v else "-")
            if any(c != "-" for c in cells):
                row = "| %s | restarts used per failure (each rep) | %s |" % (kind, cells[0])
                for c in cells[1:]:
                    row += " %s | |" % c
                out.append(row)
            v = [x for x in res.counts.get((size, "coord", kind, "records"), []) if x is not None]
            if v:
                out.append("| %s | coordd failure records per injection | %s |%s" % (
                    kind, ",".join(str(x) for x in v), " - | |" * len(trs)))
        fl = res.data.get((size, "floor", "startup", "last"), [])
        if fl:
            out.append("\nRank program start-up floor (one Python process posix_spawn()s the %d ranks, "
                       "to the last start stamp): p50 %s ms, max %s ms (n=%d); it is inside every "
                       "restart figure on both sides." % (world, fmt(pct(fl, 50)), fmt(max(fl)), len(fl)))
        # targets
        out.append("\nTargets (Coord, this run):\n")
        out.append("| target | measured p50 / max | met (max) |")
        out.append("|---|---|---|")

        def tgt(label, key, limit):
            v = res.data.get(key, [])
            if not v:
                out.append("| %s | n/a | - |" % label)
                return
            out.append("| %s | %s / %s ms | %s |" % (label, fmt(pct(v, 50)), fmt(max(v)),
                                                  "yes" if max(v) < limit else "NO"))
        if "rank-exit" in a.kinds:
            tgt("rank-exit detection < 100 ms (coordd decision - SIGKILL)",
                (size, "coord", "rank-exit", "decided"), 100)
        if "node-loss" in a.kinds:
            tgt("node-loss detection < 3 s (coordd decision - SIGSTOP)",
                (size, "coord", "node-loss", "decided"), 3000)
        if "hang" in a.kinds:
            tgt("hang detection within 1 s of the timeout", (size, "coord", "hang", "decided"), 1000)
        for kind in a.kinds:
            g = res.data.get((size, "coord", kind, "grace-needed"), [])
            extra = max(g) if g else 0
            tgt("%s: restart after the decision%s < 1 s + grace needed (max %s ms: first SIGTERM%s "
                "to last old rank gone)" % (kind, " (or SIGCONT)" if kind == "node-loss" else "",
                                            fmt(extra), " or SIGCONT" if kind == "node-loss" else ""),
                (size, "coord", kind, "after-decision"), 1000 + extra)
    return "\n".join(out)


# ---------------------------------------------------------------- main


def get_bins(arg, root, wait_s=120):
    """Snapshot Coord's binaries into root/bin; waits (and retries) while a rebuild has
    one missing or half-written."""
    deadline = time.monotonic() + wait_s
    last = None
    while True:
        try:
            build, bins = find_build(arg)
            dst = os.path.join(root, "bin")
            os.makedirs(dst, exist_ok=True)
            out = {}
            for name in COORD_BINS:
                shutil.copy2(bins[name], os.path.join(dst, name))
                out[name] = os.path.join(dst, name)
            for name in ("coordd", "coord-agent", "coordctl"):
                r = subprocess.run([out[name], "--help"], capture_output=True, timeout=20)
                if r.returncode not in (0, 1, 2) or b"usage" not in (r.stdout + r.stderr).lower() \
                        and b"options" not in (r.stdout + r.stderr).lower():
                    raise BenchError("%s --help failed (exit %d)" % (name, r.returncode))
            return build, out
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            last = e
        if time.monotonic() > deadline:
            raise BenchError("no usable Coord binaries within %d s: %s" % (wait_s, last))
        log("Coord binaries not usable yet (%s); retrying" % last)
        time.sleep(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", help="build dir with bin/coordd etc. (default: the newest complete "
                    "/work/main/build*)")
    ap.add_argument("--nodes", type=int, default=4, help="Coord agents (4)")
    ap.add_argument("--nproc", type=int, default=2, help="ranks per agent (2); torchrun runs "
                    "nodes x nproc ranks")
    ap.add_argument("--sizes", help="several sizes, NODESxNPROC,... (overrides --nodes/--nproc)")
    ap.add_argument("--reps", type=int, default=5, help="injections per failure kind (5)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="subset of " + ",".join(KINDS))
    ap.add_argument("--tools", default="coord,torchrun", help="subset of coord,torchrun")
    ap.add_argument("--monitor-intervals", default="5,0.1",
                    help="torchrun --monitor_interval values, one column each (5,0.1)")
    ap.add_argument("--heartbeat-ms", type=int, default=500, help="coordd --heartbeat-ms (500)")
    ap.add_argument("--missed-heartbeats", type=int, default=4, help="coordd --missed-heartbeats (4)")
    ap.add_argument("--hang-timeout", type=int, default=2, help="launch.hang_timeout_s (2)")
    ap.add_argument("--kill-grace", type=float, default=1, help="launch.kill_grace_s (1)")
    ap.add_argument("--window", type=float, default=10,
                    help="how long torchrun is watched for noticing a hang (10 s; quick 5)")
    ap.add_argument("--node-window", type=float, default=20,
                    help="how long the surviving torchrun is watched after its peer is SIGSTOPped "
                    "(20 s: past c10d's 3 x 5 s keep-alive; quick 8)")
    ap.add_argument("--restart-timeout", type=float, default=60,
                    help="longest wait for one restart to complete (60 s)")
    ap.add_argument("--node-down", type=float, default=0,
                    help="Coord node loss: keep the agent stopped this long after coordd decided "
                    "(0: SIGCONT at once, a node that comes back)")
    ap.add_argument("--wait-idle", type=float, default=0,
                    help="wait up to S seconds for other load to stop before starting (0)")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="pause after all ranks are up before injecting (0.5 s)")
    ap.add_argument("--seed", type=int, default=1,
                    help="seed of the random injection phase (1)")
    ap.add_argument("--quick", action="store_true",
                    help="2 agents x 2 ranks, 2 reps, short windows: a smoke test of a few minutes")
    ap.add_argument("--json", help="write raw samples here")
    ap.add_argument("--python", help="python for torchrun (default: this one)")
    ap.add_argument("--coord-log-level", default="info", help="coordd/agent --log-level (info)")
    ap.add_argument("--agent-arg", action="append", default=[],
                    help="extra coord-agent argument (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    a = ap.parse_args()
    if a.quick:
        if "--nodes" not in sys.argv and not a.sizes:
            a.nodes = 2
        if "--nproc" not in sys.argv and not a.sizes:
            a.nproc = 2
        if "--reps" not in sys.argv:
            a.reps = 2
        if "--window" not in sys.argv:
            a.window = 5
        if "--node-window" not in sys.argv:
            a.node_window = 8
    a.kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    for k in a.kinds:
        if k not in KINDS:
            ap.error("--kinds: unknown %r" % k)
    tools_in = [t.strip() for t in a.tools.split(",") if t.strip()]
    for t in tools_in:
        if t not in ("coord", "torchrun"):
            ap.error("--tools: unknown %r" % t)
    monitors = [float(x) for x in a.monitor_intervals.split(",") if x.strip()]
    tools = (["coord"] if "coord" in tools_in else []) + \
        (["torchrun-%g" % m for m in monitors] if "torchrun" in tools_in else [])
    sizes = []
    for s in (a.sizes.split(",") if a.sizes else ["%dx%d" % (a.nodes, a.nproc)]):
        try:
            n, p = (int(x) for x in s.lower().split("x"))
        except ValueError:
            ap.error("--sizes: expected NODESxNPROC, got %r" % s)
        if n < 1 or n > 250 or p < 1:
            ap.error("--sizes: 1..250 agents and at least 1 rank each, got %r" % s)
        sizes.append(("%dx%d" % (n, p), n, p))
    if a.reps < 1:
        ap.error("--reps must be >= 1")

    cc = shutil.which("cc")
    if not cc:
        raise BenchError("no C compiler `cc` on PATH (needed for bench/restart_rank.c)")
    if "torchrun" in tools_in:
        py = a.python or sys.executable
        r = subprocess.run([py, "-c", "import torch.distributed.run"], capture_output=True, timeout=120)
        if r.returncode != 0:
            raise BenchError("%s cannot import torch.distributed.run (run this with Debian's "
                             "/usr/bin/python3 and python3-torch): %s" % (py, r.stderr.decode()[-300:]))

    def background():
        c0 = cpu_busy_ms()
        time.sleep(1.0)
        return (cpu_busy_ms() - c0) / 1000.0  # cores busy
    bg = background()
    wait_until = time.monotonic() + a.wait_idle
    while bg > 0.15 and time.monotonic() < wait_until:
        log("machine busy (%.2f cores in use by others); waiting for it to be idle" % bg)
        time.sleep(5)
        bg = background()
    root = tempfile.mkdtemp(prefix="coord-restart-bench.")
    run = Runner(root)
    res = Results()
    if bg > 0.15:
        res.note("the machine was busy before the run: %.2f cores used by other processes; the "
                 "figures include that contention" % bg)
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = 0
    b = None
    try:
        bins = None
        if "coord" in tools_in:
            build, bins = get_bins(a.build, root)
            log("Coord binaries from %s/bin (snapshot in the temp dir)" % build)
        rank_bin = os.path.join(root, "restart_rank")
        r = subprocess.run([cc, "-O2", "-Wall", "-o", rank_bin, os.path.join(HERE, "restart_rank.c")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError("cc bench/restart_rank.c failed:\n" + r.stderr)
        os.makedirs(os.path.join(root, "stamps"))
        b = Bench(a, run, res, rank_bin, bins)
        b.kinds = a.kinds
        b.tr_py = os.path.join(root, "torchrun_py311.py")
        with open(b.tr_py, "w") as f:
            f.write(TORCHRUN_WRAPPER)
        other = OtherLoad(ours=lambda pid, comm: root in cmdline(pid), ignore=("perf",))
        other.start()
        t_start = time.monotonic()
        try:
            for size, nodes, nproc in sizes:
                b.nodes, b.nproc, b.world = nodes, nproc, nodes * nproc
                b.floor(size)
                for t in tools_in:
                    try:
                        if t == "coord":
                            b.coord(size)
                        else:
                            for m in monitors:
                                b.torchrun(size, m)
                            if "node-loss" in a.kinds:
                                for m in monitors:
                                    b.torchrun_node_loss(size, m)
                    except BenchError as e:
                        code = 1
                        res.note("%s at %s failed: %s" % (t, size, e))
                        b.cont_all()
                        b.finish_all()
                        run.cleanup()
        except (KeyboardInterrupt, SystemExit) as e:
            code = 130
            res.note("interrupted (%s): the report covers what was measured before" % (
                type(e).__name__))
            b.cont_all()
            b.finish_all()
        elapsed = time.monotonic() - t_start
        other.stop_ev.set()
        other.join(5)
        if other.summary():
            res.notes.append("other load during the run: " + other.summary())
        print("# Failure detection and restart: Coord vs torchrun (%.0f s)\n" % elapsed)
        print("Command: `%s`\n" % shlex.join(["/usr/bin/python3" if sys.executable == "/usr/bin/python3"
                                              else sys.executable] + sys.argv))
        print("Settings: coordd --heartbeat-ms %d --missed-heartbeats %d (node-loss budget %d ms; "
              "the stopped agent gets SIGCONT %g s after coordd decided); "
              "launch.hang_timeout_s %d, kill_grace_s %g, restart_backoff_s 0; torchrun 1.13 "
              "--max_restarts, --standalone (node loss: c10d rendezvous, 2 agents); %d rep(s) per "
              "kind, each injected %g s + a random phase within the launcher's poll period "
              "(coordd heartbeat, torchrun --monitor_interval) after all ranks are up; torchrun "
              "watched %g s for a hang, %g s for a lost peer. CPU in use by others "
              "before the run: %.2f cores; %d cores." % (
                  a.heartbeat_ms, a.missed_heartbeats, a.heartbeat_ms * a.missed_heartbeats,
                  a.node_down, a.hang_timeout, a.kill_grace, a.reps, a.settle, a.window,
                  a.node_window, bg, os.cpu_count()))
        print("\nTimes are ms from the failure: %s." % "; ".join(
            "%s: %s" % (k, EVENT[k]) for k in a.kinds))
        print(report(res, sizes, tools, a))
        print("\nRatios: torchrun's p50 over Coord's p50 for the same row; \"> Nx\" where torchrun "
              "did not react within its window. >1x means Coord is faster.")
        if "torchrun" in tools_in:
            print("\nCross-check, figures the task statement quotes for torchrun 1.13 on this "
                  "machine (their rank program is not this one: this bench's rank is a small C "
                  "program, so its restarts contain almost no rank start-up):")
            for q in QUOTED_TORCHRUN:
                print("- " + q)
            for size, nodes, nproc in sizes:
                parts = []
                for t in tools:
                    if not t.startswith("torchrun"):
                        continue
                    ft = res.data.get((size, t, "rank-exit", "first-term"), [])
                    rs = res.data.get((size, t, "rank-exit", "restart"), [])
                    if ft or rs:
                        parts.append("monitor %s s: first peer SIGTERM p50 %s ms, all ranks "
                                     "restarted p50 %s ms" % (t.split("-", 1)[1],
                                                              fmt(pct(ft, 50)), fmt(pct(rs, 50))))
                if parts:
                    print("- this run, %d ranks: %s" % (nodes * nproc, "; ".join(parts)))
        if res.notes:
            print("\nNotes:")
            for n in res.notes:
                print("- " + n)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"argv": sys.argv, "elapsed_s": elapsed, "notes": res.notes,
                           "samples_ms": [{"size": k[0], "tool": k[1], "kind": k[2], "metric": k[3],
                                           "values": v} for k, v in sorted(res.data.items())],
                           "censored_ms": [{"size": k[0], "tool": k[1], "kind": k[2], "metric": k[3],
                                            "windows": v} for k, v in sorted(res.censored.items())],
                           "counts": [{"size": k[0], "tool": k[1], "kind": k[2], "metric": k[3],
                                       "values": v} for k, v in sorted(res.counts.items())]},
                          f, indent=1)
    except BenchError as e:
        log("restart_bench: " + str(e))
        code = 2
    finally:
        if b is not None:
            b.cont_all()
            b.finish_all()
            time.sleep(0.3)  # ranks see the finish file within 100 ms
        left = run.cleanup()
        if left:
            log("restart_bench: had to kill %d leftover process(es) at the end" % len(left))
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
        log("restart_bench: " + str(e))
        sys.exit(2)
