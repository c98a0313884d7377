"""Helpers shared by the benchmark drivers in bench/: timestamped logging, the load
average and waiting for an idle machine, free ports, log tails. Standard library only."""
import socket
import sys
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


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"
