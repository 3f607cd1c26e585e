"""Helpers shared by the benchmarks in tests/bench/: percentiles, the same-run process
baselines in a clean environment, the minimal HTTP responder, the wrk load generator
and the memory probes (/proc). Everything talks to 127.0.0.1 and is bounded in time;
every process started here is stopped by its PID."""
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import fndtest  # noqa: E402

# Baselines and the daemon run without NODE_EXTRA_CA_CERTS: Node reads the bundle at
# start-up, which would inflate `node -e 0` and every Node cold start alike.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
LOAD_LUA = os.path.join(HERE, "load.lua")


def use_fnd(path):
    """Points fndtest at the fnd binary path and its build folder."""
    fndtest.FND_BIN = os.path.abspath(path)
    fndtest.BUILD_DIR = os.path.dirname(fndtest.FND_BIN)


def native_functions():
    """The folder of the native test functions built next to fnd."""
    return os.path.join(fndtest.BUILD_DIR, "tests", "functions", "native")


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def time_command(argv, n):
    """Wall times in ms of n runs of argv (fork, exec, run, wait)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, env=CLEAN_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=60)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def process_baselines(n):
    """{runtime: samples}: the bare process start each runtime's cold start is compared
    with (fork+exec /bin/true, python3 -c pass, node -e 0)."""
    return {"native": time_command(["/bin/true"], n),
            "python3": time_command(["/usr/bin/python3", "-c", "pass"], n),
            "nodejs": time_command(["node", "-e", "0"], n)}


BASELINE_LABELS = {"native": "fork+exec /bin/true", "python3": "python3 -c pass",
                   "nodejs": "node -e 0"}


def cgroup_move_ms(samples, quiet_s=0.3):
    """How long a process takes to move into a cgroup v1 memory group: the first move
    after quiet_s without one, and a move right after it, in ms each (two lists).
    None without root or a v1 memory hierarchy. A worker's start makes the first."""
    base = "/sys/fs/cgroup/memory"
    if os.geteuid() != 0 or not os.path.exists(os.path.join(base, "cgroup.procs")):
        return None
    groups = [os.path.join(base, f"fnd-bench-{os.getpid()}-{n}") for n in "ab"]
    for g in groups:
        os.mkdir(g)
    first, next_ = [], []
    try:
        for _ in range(samples):
            time.sleep(quiet_s)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child moves itself, twice; only timing code runs here
                try:
                    t = [time.perf_counter()]
                    for g in groups:
                        with open(os.path.join(g, "cgroup.procs"), "w") as f:
                            f.write("0")
                        t.append(time.perf_counter())
                    os.write(w, f"{t[1] - t[0]} {t[2] - t[1]}".encode())
                finally:
                    os._exit(0)
            os.close(w)
            got = os.read(r, 100).split()
            os.close(r)
            os.waitpid(pid, 0)
            first.append(float(got[0]) * 1000)
            next_.append(float(got[1]) * 1000)
    finally:
        for g in groups:
            os.rmdir(g)
    return first, next_


class Responder:
    """The minimal libuv + llhttp responder (tests/bench/responder.c) on a free port."""

    def __init__(self, binary=None):
        binary = binary or os.path.join(fndtest.BUILD_DIR, "tests", "bench_responder")
        self.proc = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().split()  # "listening PORT", or EOF if it failed
        if len(line) != 2 or line[0] != "listening":
            self.stop()
            raise RuntimeError(f"{binary} did not start")
        self.port = int(line[1])

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()


def children_cpu_s():
    """CPU seconds (user + system) used so far by this process's waited-for children."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def wrk(port, path, conns, seconds, method="GET", body="", depth=1, limit=0, headers=(),
        threads=1):
    """Runs wrk against 127.0.0.1:port for at most seconds (or until each thread saw
    limit responses) and returns its summary: requests, rps, non2xx, errors, p50/p99/
    p999/max in ms, cdf [(percentile, ms)] and cpu_s (wrk's own CPU time). One wrk thread by default: on a small
    machine a second one competes with the daemon for the same cores."""
    argv = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
            "-s", LOAD_LUA, f"http://127.0.0.1:{port}{path}", "--", method, body, str(depth),
            str(limit), *headers]
    cpu0 = children_cpu_s()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    cpu = children_cpu_s() - cpu0
    lines = [l for l in out.stdout.splitlines() if l.startswith("WRK ")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    r = json.loads(lines[-1][4:])
    ms = {k: r[k] / 1000 for k in ("p50", "p99", "p999", "max")}
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return {"requests": r["requests"], "rps": r["requests"] / (r["duration_us"] / 1e6),
            "non2xx": r["non2xx"], "errors": errors, "cpu_s": cpu, **ms,
            "cdf": [(p, us / 1000) for p, us in r["cdf"]]}


def wrk_count(port, path, conns, target, max_seconds, **kw):
    """Runs wrk in steps until about target responses (bounded by max_seconds): wrk
    itself only stops at the end of its duration, so each step's duration is sized from
    the rate so far, and its per-thread budget keeps it from overshooting. The summed
    requests, non2xx and errors."""
    got = {"requests": 0, "non2xx": 0, "errors": 0}
    rate, deadline = None, time.monotonic() + max_seconds
    while got["requests"] < target and time.monotonic() < deadline:
        left = target - got["requests"]
        secs = 1 if rate is None else max(1, min(30, int(left / rate + 0.999)))
        r = wrk(port, path, conns, secs, limit=left, **kw)
        rate = max(r["rps"], 1.0)
        for k in got:
            got[k] += r[k]
    return got


def smaps_kb(pid):
    """{field: kB} of one process's /proc/<pid>/smaps_rollup (Rss, Pss, Private_Dirty...)."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                vals[k] = int(v.split()[0])
    return vals


def rss_pss_kb(pid):
    """(Rss, Pss) in kB of one process."""
    vals = smaps_kb(pid)
    return vals["Rss"], vals["Pss"]


def worker_memory_kb(d, name):
    """[(rss, pss)] in kB per worker of function name: each the sum over every process
    of that worker (its namespace's init and the runtime)."""
    out = []
    for pid in fndtest.worker_pids(d, name):
        rss = pss = 0
        for p in fndtest.worker_processes(pid):
            try:
                r, s = rss_pss_kb(p)
            except (OSError, KeyError):
                continue  # it ended meanwhile
            rss, pss = rss + r, pss + s
        out.append((rss, pss))
    return out


def wait_warm(d, name, n, timeout=60):
    """Waits (bounded) until function name has n idle workers; the number it has."""
    def idle():
        return d.get(f"/v1/functions/{name}").json()["state"]["instances"]["idle"]
    fndtest.wait_for(lambda: idle() >= n, timeout=timeout, step=0.05)
    return idle()
