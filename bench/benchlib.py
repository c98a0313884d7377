"""Helpers shared by the benchmark drivers in bench/: timestamped logging, the load
average and waiting for an idle machine, free ports, log tails, the process table, a
sampler of other load on the CPUs, the launcher of a gpt-rank job's ranks, and the
process harness of the launcher benches (Runner: what a bench starts it stops by PID;
/proc probes; the build to measure; the torchrun wrapper). Standard library only."""
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COORD_BINS = ("coordctl", "coordd", "coord-agent", "coord-supervisor")


class BenchError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def wait_idle(limit, threshold):
    """Waits up to `limit` s for the 1-minute load to drop below `threshold`;
    returns the load average it measured at the end."""
    if limit <= 0:
        return loadavg()
    deadline = time.monotonic() + limit
    while True:
        la = loadavg()
        if la[0] < threshold or time.monotonic() > deadline:
            if la[0] >= threshold:
                log(f"load still {la[0]:.2f} after {limit} s; measuring anyway")
            return la
        log(f"load {la[0]:.2f} >= {threshold}: waiting")
        time.sleep(10)


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, close)."""
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_ranks(argv, world, threads, tmp, tag, timeout):
    """Runs `argv` as ranks 0..world-1 of one gpt-rank job on this machine (env://,
    MASTER_ADDR 127.0.0.1, a free port, OMP_NUM_THREADS=threads), each logging to
    tmp/<tag>-rank<r>.log. Exits the bench with the log's tail if a rank fails or the
    job outlives `timeout` s; every rank still running then is killed by PID. Returns
    each rank's peak resident memory in bytes (ru_maxrss from wait4)."""
    port = free_port()
    procs, logs = [], []
    try:
        for rank in range(world):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), RANK=str(rank),
                       WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                       LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
            logs.append(os.path.join(tmp, "%s-rank%d.log" % (tag, rank)))
            with open(logs[-1], "w") as out:
                procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=out))
        peaks = [0] * world
        deadline = time.time() + timeout
        pending = {p.pid: i for i, p in enumerate(procs)}
        while pending:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                if time.time() > deadline:
                    sys.exit("%s: timed out after %.0f s" % (tag, timeout))
                time.sleep(0.2)
                continue
            if pid not in pending:
                continue
            i = pending.pop(pid)
            procs[i].returncode = os.waitstatus_to_exitcode(status)
            peaks[i] = usage.ru_maxrss * 1024
            if procs[i].returncode != 0:
                sys.exit("%s: rank %d failed:\n%s" % (tag, i, tail(logs[i], 40)))
    finally:
        for p in procs:
            if p.returncode is None and p.poll() is None:
                p.kill()
                p.wait()
    return peaks


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def proc_table():
    """pid -> (ppid, comm, state) for every process we can read."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        out[int(d)] = (int(rest[1]), st[st.find("(") + 1:st.rfind(")")], rest[0])
    return out


def descendants(roots, table=None):
    table = table if table is not None else proc_table()
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


KERNEL_THREADS = ("kworker", "ksoftirq", "rcu_", "migration", "kdamond")


class OtherLoad(threading.Thread):
    """Twice a second: which processes that are not the bench's own are on a CPU.
    The bench's own are this process and its descendants, plus those `ours(pid,
    comm)` claims (daemons that left the process tree); names starting with
    `ignore` (and kernel threads) are not counted either."""

    def __init__(self, ours=None, ignore=()):
        super().__init__(daemon=True)
        self.ours, self.ignore = ours, KERNEL_THREADS + tuple(ignore)
        self.stop_ev = threading.Event()
        self.samples = self.busy = 0
        self.names = {}

    def run(self):
        me = os.getpid()
        while not self.stop_ev.wait(0.5):
            table = proc_table()
            mine = set(descendants([me], table)) | {me}
            seen = set()
            for pid, (_, comm, state) in table.items():
                if state != "R" or pid in mine or comm.startswith(self.ignore):
                    continue
                if self.ours and self.ours(pid, comm):
                    continue
                seen.add(comm)
            self.samples += 1
            if seen:
                self.busy += 1
                for c in seen:
                    self.names[c] = self.names.get(c, 0) + 1

    def summary(self):
        """A line for the report; None before the first sample."""
        if not self.samples:
            return None
        top = sorted(self.names.items(), key=lambda kv: -kv[1])[:5]
        return "%d of %d half-second samples caught other processes on a CPU (%s)" % (
            self.busy, self.samples, ", ".join("%s %d" % kv for kv in top) or "none")


# --- processes: what a bench starts, it stops by PID ----------------------------


def pct(values, p):
    """Nearest-rank percentile (p99 of fewer than 100 samples is the maximum)."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def proc_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] not in "ZX"


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_busy_ms():
    """CPU time used on all cores so far (from /proc/stat; 10 ms ticks)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    return (sum(v[:8]) - v[3] - v[4]) * tick  # all but idle and iowait


def proc_cpu_ms(pids):
    """utime + stime of these processes (10 ms ticks)."""
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
            fields = st[st.rfind(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total * tick


def sigkill(pids):
    """SIGKILLs each pid (one already gone is skipped); returns how many were signalled."""
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def wait_gone(pids, timeout_s):
    """Polls (10 ms) until none of pids is alive, or timeout_s."""
    deadline = time.monotonic() + timeout_s
    while any(proc_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


class Runner:
    """Starts processes, remembers them, and kills what is left by PID."""

    def __init__(self, root):
        self.root = root
        self.popens = []
        self.env = dict(os.environ)
        self.env["OMP_NUM_THREADS"] = "1"
        self.env["TMPDIR"] = root  # torchelastic and Open MPI session dirs go here
        self.seq = 0

    def spawn(self, argv, name, env=None, stdout_path=None):
        self.seq += 1
        logp = os.path.join(self.root, "logs", "%03d-%s.log" % (self.seq, name))
        os.makedirs(os.path.dirname(logp), exist_ok=True)
        out = open(stdout_path or logp, "wb")
        err = open(logp, "ab") if stdout_path else subprocess.STDOUT
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=env or self.env, close_fds=True)
        finally:
            out.close()
            if stdout_path:
                err.close()
        p.log_path = logp
        p.name = name
        self.popens.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=5.0):
        """Signal one process we started; SIGKILL it if it outlives timeout."""
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    log("warning: pid %d (%s) did not die after SIGKILL" % (p.pid, p.name))
        if p in self.popens and p.poll() is not None:
            self.popens.remove(p)

    def kill_ranks(self, pids, marker):
        """SIGKILL rank pids that are still alive and still our rank program."""
        killed = sigkill(p for p in pids if proc_alive(p) and marker in cmdline(p))
        wait_gone(pids, 5)
        return killed

    def strays(self):
        """Processes whose command line names our temp dir: our descendants."""
        found = []
        me = os.getpid()
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != me and proc_alive(int(d)) and self.root in cmdline(int(d)):
                found.append(int(d))
        return found

    def cleanup(self):
        for p in list(self.popens):
            self.stop(p, signal.SIGTERM, 3.0)
        left = self.strays()
        if left:
            log("cleanup: killing %d leftover process(es) by PID: %s" % (
                len(left), ", ".join("%d (%s)" % (p, cmdline(p)[:60]) for p in left)))
            sigkill(left)
            wait_gone(left, 5)
        return left


def wait_port(proc, port_file, what, timeout_s=20):
    """The port a daemon wrote to port_file ("port" or "host:port"); fails fast if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("%s exited with %s before writing %s:\n%s" % (
                what, proc.returncode, port_file, tail(proc.log_path)))
        try:
            with open(port_file) as f:
                text = f.read().strip()
            if text:
                return int(text.replace(":", " ").split()[-1])
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    raise BenchError("%s wrote no port to %s within %d s:\n%s" % (
        what, port_file, timeout_s, tail(proc.log_path)))


def find_build(arg):
    if arg:
        cands = [arg]
    else:
        base = os.path.dirname(HERE)  # the checkout this script is in
        cands = [os.path.join(base, d) for d in sorted(os.listdir(base)) if d.startswith("build")]
    good = []
    for c in cands:
        bins = {b: os.path.join(c, "bin", b) for b in COORD_BINS}
        if all(os.access(p, os.X_OK) for p in bins.values()):
            good.append((max(os.path.getmtime(p) for p in bins.values()), c, bins))
    if not good:
        raise BenchError("no Coord binaries: need %s in %s" % (
            ", ".join(COORD_BINS), " or ".join(os.path.join(c, "bin") for c in cands) or "a build dir"))
    good.sort()
    return good[-1][1], good[-1][2]


# Debian's torch 1.13 on Python 3.11: Std.from_str iterates an IntFlag, which no
# longer yields the zero member NONE, so "0" parses to None and torchrun dies in
# to_map(). Patch only that parser, then run torchrun unchanged.
TORCHRUN_WRAPPER = r'''
import re, sys
from torch.distributed.elastic.multiprocessing import api as _api

def _from_str(cls, vm):
    if re.match(_api._VALUE_REGEX, vm):
        return cls(int(vm))
    if re.match(_api._MAPPING_REGEX, vm):
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError("%s does not match: <%s> or <%s>" % (vm, _api._VALUE_REGEX, _api._MAPPING_REGEX))

_api.Std.from_str = classmethod(_from_str)
from torch.distributed import run
run.main()
'''
