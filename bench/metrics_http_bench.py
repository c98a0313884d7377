#!/usr/bin/python3
"""What /metrics and the status page cost coordd: its CPU while N agents x P ranks
report progress, first with nobody reading anything, then with a real Prometheus
scraping coordd and every agent each second and a second client fetching coordd's
/metrics each second, then with that and the status page's own polls on top: every
second the API calls job.html makes (/api/jobs/JOB, .../progress, .../resources) and
index.html's /api/jobs, and a log search across every rank every 10 s.

The ranks are bench/progress_rank.c (compiled by this script into its temp dir): each
writes a gpt-rank-like progress record every --record-ms and sleeps otherwise, so the
load on coordd is its heartbeats and progress records, and nothing else competes for
the CPUs more than a real rank's reporting would.

Measured per phase (--seconds each, after --settle seconds): coordd's utime + stime
(/proc/<pid>/stat) as a share of one core; the agents' mean; coordd's /metrics page
size; the page's fetch time seen by the poller (median, p99); Prometheus's own
scrape_duration_seconds for coordd (its query API); the status page's poll (its four
API calls together: bytes and time, median and p99) and the search's time.

  /usr/bin/python3 bench/metrics_http_bench.py --build build-nocuda                 # 8 x 8 = 64 ranks
  /usr/bin/python3 bench/metrics_http_bench.py --build build-nocuda --nodes 2 --nproc 2 --seconds 10
Everything started is stopped by PID; the temp dir is removed unless --keep.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import log, free_port, loadavg  # noqa: E402
from benchlib import Runner, BenchError, wait_port, proc_cpu_ms  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BINS = ("coordd", "coord-agent", "coord-supervisor", "coordctl")


def get(url, timeout=5):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return body, time.monotonic() - t0


class Poller(threading.Thread):
    """GETs every url in turn every period seconds until stopped (a page's poll); keeps
    each round's total fetch time and bytes."""

    def __init__(self, urls, period):
        super().__init__(daemon=True)
        self.urls, self.period = ([urls] if isinstance(urls, str) else urls), period
        self.times, self.errors, self.size = [], 0, 0
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            t_next = time.monotonic() + self.period
            try:
                size, total = 0, 0.0
                for url in self.urls:
                    body, dt = get(url)
                    size, total = size + len(body), total + dt
                self.times.append(total)
                self.size = size
            except OSError:
                self.errors += 1
            self.stop_event.wait(max(0.0, t_next - time.monotonic()))


def quantiles(times):
    """(median, p99) in ms."""
    t = sorted(times)
    if not t:
        return float("nan"), float("nan")
    return 1000 * statistics.median(t), 1000 * t[int(0.99 * (len(t) - 1))]


def cpu_share(pids, seconds_fn):
    """CPU used by pids over the phase, as a fraction of one core."""
    c0, t0 = proc_cpu_ms(pids), time.monotonic()
    seconds_fn()
    return (proc_cpu_ms(pids) - c0) / 1000.0 / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build dir holding bin/coordd etc.")
    ap.add_argument("--nodes", type=int, default=8, help="agents (127.0.0.2, ...)")
    ap.add_argument("--nproc", type=int, default=8, help="ranks per agent")
    ap.add_argument("--record-ms", type=int, default=1000,
                    help="each rank's progress record period (one per iteration)")
    ap.add_argument("--seconds", type=float, default=60, help="length of each phase")
    ap.add_argument("--settle", type=float, default=10, help="wait before measuring a phase")
    ap.add_argument("--poll", type=float, default=1.0, help="Prometheus and page period (s)")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    bins = {b: os.path.join(os.path.abspath(a.build), "bin", b) for b in BINS}
    for b, p in bins.items():
        if not os.access(p, os.X_OK):
            raise BenchError("%s missing: build the tree first" % p)
    if not os.access(a.prometheus, os.X_OK):
        raise BenchError("%s missing (Debian: prometheus; scripts/install-deps.sh)" % a.prometheus)

    root = tempfile.mkdtemp(prefix="metrics-bench-")
    run = Runner(root)
    try:
        rank_bin = os.path.join(root, "progress_rank")
        subprocess.run(["cc", "-O2", "-o", rank_bin, os.path.join(HERE, "progress_rank.c")],
                       check=True)
        # coordd and the agents, each with its HTTP endpoint on its own address.
        pf, hpf = os.path.join(root, "coordd.port"), os.path.join(root, "coordd.http")
        coordd = run.spawn([bins["coordd"], "--listen", "127.0.0.1:0", "--state-dir",
                            os.path.join(root, "coordd"), "--port-file", pf, "--http-listen",
                            "127.0.0.1:0", "--http-port-file", hpf, "--log-level", "warning"],
                           "coordd")
        agents, hosts, agent_http = [], [], []
        for i in range(a.nodes):
            addr = "127.0.0.%d" % (i + 2)
            d = os.path.join(root, "agent%d" % i)
            agents.append(run.spawn([bins["coord-agent"], "--listen", addr + ":0", "--state-dir", d,
                                     "--port-file", d + ".port", "--http-listen", addr + ":0",
                                     "--http-port-file", d + ".http", "--log-level", "warning"],
                                    "agent%d" % i))
        coordd_addr = "127.0.0.1:%d" % wait_port(coordd, pf, "coordd")
        coordd_http = "127.0.0.1:%d" % wait_port(coordd, hpf, "coordd (http)")
        for i, p in enumerate(agents):
            d = os.path.join(root, "agent%d" % i)
            hosts.append("127.0.0.%d:%d" % (i + 2, wait_port(p, d + ".port", "agent %d" % i)))
            agent_http.append("127.0.0.%d:%d" % (i + 2, wait_port(p, d + ".http", "agent %d" % i)))
        with open(os.path.join(root, "hosts"), "w") as f:
            f.write("\n".join(hosts) + "\n")
        spec = os.path.join(root, "job.json")
        with open(spec, "w") as f:
            json.dump({"name": "metrics-bench", "launch": {
                "nproc_per_node": a.nproc, "kill_grace_s": 2,
                "command": [rank_bin, str(a.record_ms), str(int(4 * (a.seconds + a.settle) + 120))]}}, f)
        ctl = [bins["coordctl"], "--coordinator", coordd_addr]
        p = subprocess.run(ctl + ["start", "--hosts", os.path.join(root, "hosts"), "--config", spec,
                                  "--skip-checks"], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise BenchError("coordctl start: %s %s" % (p.stdout, p.stderr))
        job = p.stdout.split("\n")[0]
        log("job %s: %d agents x %d ranks, a record every %d ms per rank" % (
            job, a.nodes, a.nproc, a.record_ms))
        agent_pids = [x.pid for x in agents]

        def phase(name):
            log("%s: settling %.0f s, then measuring %.0f s" % (name, a.settle, a.seconds))
            time.sleep(a.settle)
            la = loadavg()[0]
            out = {"coordd": cpu_share([coordd.pid], lambda: time.sleep(a.seconds))}
            out["load1"] = la
            return out

        # Phase 1: nobody reads /metrics.
        quiet = phase("quiet")
        quiet_agents = cpu_share(agent_pids, lambda: time.sleep(min(10, a.seconds))) / a.nodes

        # Phase 2: Prometheus scrapes everything, the "page" polls coordd.
        prom_port = free_port()
        cfg = os.path.join(root, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: %gs\n  scrape_timeout: %gs\nscrape_configs:\n"
                    "  - job_name: coordd\n    static_configs:\n      - targets: [\"%s\"]\n"
                    "  - job_name: coord-agent\n    static_configs:\n      - targets: [%s]\n" % (
                        a.poll, a.poll, coordd_http, ", ".join('"%s"' % x for x in agent_http)))
        prom = run.spawn([a.prometheus, "--config.file=" + cfg,
                          "--storage.tsdb.path=" + os.path.join(root, "prom-data"),
                          "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"],
                         "prometheus")
        page = Poller("http://%s/metrics" % coordd_http, a.poll)
        page.start()
        polled = phase("polled")
        polled_agents = cpu_share(agent_pids, lambda: time.sleep(min(10, a.seconds))) / a.nodes

        # Phase 3: the status page too (job.html's and index.html's polls, a search).
        api = "http://%s/api/jobs" % coordd_http
        web = Poller([api, api + "/" + job, api + "/" + job + "/progress",
                      api + "/" + job + "/resources"], a.poll)
        search = Poller(api + "/" + job + "/logs/search?q=iteration&max_matches=100", 10.0)
        web.start()
        search.start()
        with_page = phase("page")
        web.stop_event.set()
        search.stop_event.set()
        web.join()
        search.join()
        page.stop_event.set()
        page.join()
        q = urllib.parse.quote('quantile_over_time(0.5, scrape_duration_seconds{job="coordd"}[1m])')
        try:
            body, _ = get("http://127.0.0.1:%d/api/v1/query?query=%s" % (prom_port, q))
            res = json.loads(body)["data"]["result"]
            scrape_ms = float(res[0]["value"][1]) * 1000 if res else float("nan")
        except (OSError, ValueError, KeyError, IndexError):
            scrape_ms = float("nan")
        run.stop(prom)
        subprocess.run(ctl + ["kill", job], capture_output=True, timeout=60)

        times = sorted(page.times)
        ranks = a.nodes * a.nproc
        print("\n| phase | coordd CPU (% of a core) | agent CPU (mean, %) | load1 |")
        print("|---|---|---|---|")
        print("| %d ranks report, nobody reads /metrics | %.2f | %.2f | %.2f |" % (
            ranks, 100 * quiet["coordd"], 100 * quiet_agents, quiet["load1"]))
        print("| + Prometheus (coordd, %d agents) and a /metrics poller, every %g s | %.2f | %.2f | %.2f |" % (
            a.nodes, a.poll, 100 * polled["coordd"], 100 * polled_agents, polled["load1"]))
        print("| + the status page's API poll every %g s, a log search every 10 s | %.2f | | %.2f |" % (
            a.poll, 100 * with_page["coordd"], with_page["load1"]))
        print("\ncoordd /metrics: %d bytes; fetch by the poller median %.1f ms, p99 %.1f ms (%d fetches, "
              "%d errors); Prometheus scrape_duration_seconds (median) %.1f ms" % (
                  page.size, 1000 * statistics.median(times) if times else float("nan"),
                  1000 * times[int(0.99 * (len(times) - 1))] if times else float("nan"),
                  len(times), page.errors, scrape_ms))
        med, p99 = quantiles(web.times)
        smed, sp99 = quantiles(search.times)
        print("status page poll (4 API calls): %d bytes; median %.1f ms, p99 %.1f ms (%d polls, "
              "%d errors); log search over %d ranks: median %.1f ms, p99 %.1f ms (%d searches, "
              "%d errors)" % (web.size, med, p99, len(web.times), web.errors, ranks, smed, sp99,
                              len(search.times), search.errors))
    finally:
        left = run.cleanup()
        if left:
            log("cleanup killed %d leftover process(es)" % len(left))
        if a.keep:
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        log("error: %s" % e)
        sys.exit(1)
