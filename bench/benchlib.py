"""Helpers shared by the benchmark drivers in bench/: timestamped logging, the load
average and waiting for an idle machine, free ports, log tails, the process table
a sampler of other load on the CPUs, and
the launcher of a gpt-rank job's ranks. Standard library only."""
import os
import socket
import subprocess
import sys
import threading
import time


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
