#!/usr/bin/env python3
"""fnd's benchmark suite: every figure of issue 8 in one run, each next to a baseline
measured in the same run and the ratio of the two. Prints one table; never judges a
number. Usage:
    suite.py [--fnd BUILD/fnd] [--quick] [--only SECTION,...] [--write-docs] [--out DIR]

Sections (in this order):
  gateway  GET /healthz against the minimal libuv + llhttp responder (bench_responder):
           p50/p99 at one connection, requests/s at 1, 8 and 64 connections.
  warm     warm sync invokes of native, Python and Node no-ops (min_warm = max_instances,
           so every request finds a warm worker): p50/p99/p99.9 at one connection and
           invocations/s at 1, 8, 64 connections, against the responder answering the
           same POST; the daemon's peak RSS under that load; RSS and PSS per worker;
           native at 64 connections again with --worker-scheduling normal (SCHED_OTHER
           workers), and at one connection with --busy-poll 0, against the defaults.
  cold     what a page of memory costs here (a fault, a copy-on-write fault, a populated
           page, against copying a mapped page: bench_pagefault) and a move into a
           cgroup (v1, as root: the first after a quiet spell against the next), then
           cold start to first response per runtime (each sample redeploys, so the next
           invoke needs a new worker), sandbox on and off, Python also without the
           zygote, against fork+exec /bin/true, python3 -c pass, node -e 0; and the
           step from one busy worker to two with a pre-warmed spare ready, against the
           same step without spares (--spare-workers 0).
  async    durable `Prefer: respond-async` accepts/s from two load generators (wrk with
           pipelining, and async_accept.py's Python processes) against one accept at a
           time (one fdatasync each).
  memory   daemon RSS idle (against the responder's), with 1,000 functions deployed
           through the API, daemon-side memory per warm worker, and RSS after a short
           and a long run of invocations (no growth reads as a ratio of 1.0).
The responder runs beside the daemon through the gateway and warm sections, and each
of their points is measured against it right before the daemon's.
Load comes from wrk (Debian) with tests/bench/load.lua, on 127.0.0.1, bounded in time.
--quick runs each point for a second, with 100 functions and 8 workers in the memory
section (the whole suite in under a minute, for CI);
--write-docs puts the results, the machine and the CDF plots into docs/. Exits 1 if
any figure could not be produced (a section failed), never because of a value.
"""
import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import async_accept  # noqa: E402
import invoke_latency  # noqa: E402
from benchlib import (BASELINE_LABELS, Responder, cgroup_move_ms, children_cpu_s, fndtest,  # noqa: E402
                      native_functions, pct, process_baselines, smaps_kb, use_fnd, wait_warm,
                      worker_memory_kb, wrk, wrk_count)

SECTIONS = ("gateway", "warm", "cold", "async", "memory")
RUNTIMES = ("native", "python3", "nodejs")
CONNS = (1, 8, 64)
# The targets, shown beside their figures (ratios are to the same-run baseline).
WARM_P50_TARGET = {"native": "<= 1.7x", "python3": "<= 2.5x", "nodejs": "<= 2.5x"}
THROUGHPUT_TARGET = {"native": ">= 0.70x", "python3": ">= 20,000 inv/s",
                     "nodejs": ">= 15,000 inv/s"}
COLD_TARGET = {"native": "<= 2x", "python3": "<= 5 ms (zygote)", "nodejs": "<= 1.2x"}
STEP_TARGET = {"native": "", "python3": "", "nodejs": "<= 2 ms (a spare ready)"}
DOCS = os.path.abspath(os.path.join(HERE, "..", "..", "docs"))
BEGIN, END = "<!-- suite results: begin -->", "<!-- suite results: end -->"


class Params:
    def __init__(self, quick):
        self.quick = quick
        self.seconds = 1 if quick else 5          # per wrk point
        self.n_cold = 5 if quick else 50          # cold starts per runtime and config
        self.n_step = 3 if quick else 20          # step-up samples per runtime and config
        self.n_base = 5 if quick else 50          # runs of each process baseline
        self.async_total = 4000 if quick else 200000
        self.async_serial = 100 if quick else 2000
        self.functions = 100 if quick else 1000   # deployed for the daemon's RSS
        self.workers = 8 if quick else 32         # for daemon-side memory per worker
        self.short_run, self.long_run = (5000, 20000) if quick else (100000, 1000000)
        self.warm_workers = 4                     # min_warm = max_instances of the no-ops


class Table:
    """Rows of (section, figure, value, unit, baseline label, baseline value, ratio,
    note, target): the target is the issue's, printed beside the figure, never judged."""

    def __init__(self):
        self.rows = []
        self.failed = []  # (section, error)

    def add(self, section, figure, value, unit, base_label="", base=None, note="", target=""):
        ratio = value / base if value is not None and base else None
        self.rows.append((section, figure, value, unit, base_label, base, ratio, note, target))

    def missing(self):
        return [r for r in self.rows if r[2] is None or r[2] != r[2]]

    @staticmethod
    def fmt(v, unit):
        if v is None or v != v:
            return "MISSING"
        if unit == "ms":
            return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
        if unit in ("req/s", "inv/s", "accepts/s"):
            return f"{v:,.0f} {unit}"
        if unit == "kB":
            return f"{v / 1024:.1f} MB" if v >= 10240 else f"{v:,.0f} kB"
        if unit.startswith("µs"):
            return f"{v:.2f} {unit}"
        return f"{v:g} {unit}"

    def cells(self, r):
        section, figure, value, unit, base_label, base, ratio, note, target = r
        b = f"{base_label} {self.fmt(base, unit)}" if base_label else ""
        return (figure + (f" ({note})" if note else ""), self.fmt(value, unit), b,
                f"{ratio:.2f}x" if ratio is not None else "", target)

    def print(self):
        w = [max(len(self.cells(r)[i]) for r in self.rows) for i in range(5)] if self.rows else [0] * 5
        head = ("figure", "value", "baseline (same run)", "ratio", "target")
        w = [max(a, len(h)) for a, h in zip(w, head)]
        line = "  ".join(h.ljust(n) for h, n in zip(head, w))
        print(line)
        print("-" * len(line))
        section = None
        for r in self.rows:
            if r[0] != section:
                section = r[0]
                print(f"[{section}]")
            c = self.cells(r)
            print("  ".join([c[0].ljust(w[0]), c[1].rjust(w[1]), c[2].ljust(w[2]), c[3].rjust(w[3]),
                             c[4]]).rstrip())
        for section, err in self.failed:
            print(f"[{section}] FAILED: {err}")

    def markdown(self):
        out = ["| section | figure | value | baseline (same run) | ratio | target |",
               "| --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            out.append("| " + " | ".join((r[0], *self.cells(r))) + " |")
        return "\n".join(out)


def conns(c):
    return f"{c} connection" + ("s" if c != 1 else "")


def progress(msg):
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def ok_note(r):
    """A note for a wrk run that saw refusals or socket errors, else ""."""
    bad = []
    if r["non2xx"]:
        bad.append(f"{r['non2xx']} non-2xx")
    if r["errors"]:
        bad.append(f"{r['errors']} socket errors")
    return ", ".join(bad)


def cpu_note(cpu_s, requests, note):
    """note, plus the load generator's CPU time per request."""
    us = cpu_s / requests * 1e6 if requests else float("nan")
    return ", ".join(x for x in (f"client {us:.1f} µs CPU per request", note) if x)


def page_costs():
    """{figure: ns per 4 KiB page} from bench_pagefault (tests/bench/pagefault.c)."""
    binary = os.path.join(fndtest.BUILD_DIR, "tests", "bench_pagefault")
    out = subprocess.run([binary, "16"], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


class PeakRSS:
    """Samples a process's RSS every 50 ms in a thread until stopped; keeps the peak."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop_ = pid, None, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_.is_set():
            try:
                rss = fndtest.rss_kb(self.pid)
                self.peak = rss if self.peak is None else max(self.peak, rss)
            except OSError:
                pass
            self.stop_.wait(0.05)

    def stop(self):
        self.stop_.set()
        self.thread.join(5)
        return self.peak


class Suite:
    def __init__(self, p, tmp):
        self.p, self.tmp, self.t = p, tmp, Table()
        self.fns = invoke_latency.write_functions(os.path.join(tmp, "code"))
        self.responder = None    # the minimal responder, running through gateway and warm
        self.cdf_warm = {}       # label -> [(percentile, ms)]
        self.cdf_cold = {}       # label -> sorted samples (ms)
        self.base = None         # process baselines
        self.load_peak = None
        self.responder_rss = None
        self.daemons = 0
        self.warm_rps = {}       # runtime -> inv/s at the most connections
        self.warm_p50_native = None

    def daemon(self, flags=()):
        self.daemons += 1
        return fndtest.Daemon(os.path.join(self.tmp, f"data-{self.daemons}"), list(flags))

    def start_responder(self):
        progress("minimal responder")
        self.responder = Responder()
        self.responder_rss = smaps_kb(self.responder.pid)
        wrk(self.responder.port, "/healthz", 1, 1)  # warm-up

    def baseline(self, method, c):
        """wrk's result against the responder at c connections, measured now: right
        before the daemon's figure it is compared with. Measured once up front, the
        baseline was minutes older than the later runtimes' figures, and the one-
        connection latency of these machines drifts by up to 2x in minutes."""
        if method == "GET":
            return wrk(self.responder.port, "/healthz", c, self.p.seconds)
        return wrk(self.responder.port, "/invoke", c, self.p.seconds, "POST", "{}")

    # --- sections ------------------------------------------------------------------

    def gateway(self, d):
        progress("gateway: GET /healthz")
        base = self.baseline("GET", 1)
        r = wrk(d.port, "/healthz", 1, self.p.seconds)
        for k, label in (("p50", "p50"), ("p99", "p99")):
            self.t.add("gateway", f"GET /healthz {label}, 1 connection", r[k], "ms",
                       "responder", base[k], ok_note(r))
        for c in CONNS:
            if c != 1:
                base = self.baseline("GET", c)
                r = wrk(d.port, "/healthz", c, self.p.seconds)
            self.t.add("gateway", f"GET /healthz, {conns(c)}", r["rps"], "req/s",
                       "responder", base["rps"], ok_note(r))

    def warm(self, d):
        n = self.p.warm_workers
        for rt in RUNTIMES:
            code, handler = self.fns[rt]
            r = d.deploy(f"warm-{rt}", rt, handler, code, max_instances=n, min_warm=n,
                         max_queue=10000)
            assert r.status == 201, r
        for rt in RUNTIMES:
            name = f"warm-{rt}"
            progress(f"warm: {rt}")
            got = wait_warm(d, name, n)
            cold_note = f"only {got} of {n} workers warm at the start" if got < n else ""
            path = f"/v1/functions/{name}/invoke"
            wrk(d.port, path, 1, 1, "POST", "{}")  # warm-up: every code path touched once
            base = self.baseline("POST", 1)
            r = wrk(d.port, path, 1, self.p.seconds, "POST", "{}")
            self.cdf_warm[f"{rt} no-op"] = r["cdf"]
            self.cdf_warm.setdefault("minimal responder", base["cdf"])
            if rt == "native":
                self.warm_p50_native = r["p50"]
            note = ", ".join(x for x in (ok_note(r), cold_note) if x)
            for k, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
                self.t.add("warm", f"{rt} no-op {label}, 1 connection", r[k], "ms",
                           "responder", base[k], note,
                           WARM_P50_TARGET[rt] if k == "p50" else "")
            for c in CONNS:
                if c != 1:
                    base = self.baseline("POST", c)
                    peak = PeakRSS(d.pid) if c == CONNS[-1] else None
                    r = wrk(d.port, path, c, self.p.seconds, "POST", "{}")
                    if peak:
                        v = peak.stop()
                        self.load_peak = v if self.load_peak is None else max(self.load_peak, v)
                        self.warm_rps[rt] = r["rps"]
                self.t.add("warm", f"{rt} no-op, {conns(c)}", r["rps"], "inv/s",
                           "responder", base["rps"], ok_note(r),
                           THROUGHPUT_TARGET[rt] if c == CONNS[-1] else "")
        for rt in RUNTIMES:
            mem = worker_memory_kb(d, f"warm-{rt}")
            rss = sum(m[0] for m in mem) / len(mem) if mem else None
            pss = sum(m[1] for m in mem) / len(mem) if mem else None
            self.t.add("warm", f"{rt} worker RSS, mean of {len(mem)}", rss, "kB")
            self.t.add("warm", f"{rt} worker PSS, mean of {len(mem)}", pss, "kB")

    def native_without(self, flags, conns_):
        """wrk's result for the native no-op at conns_ connections on a daemon started
        with flags (a default turned off), set up as the warm section's."""
        n = self.p.warm_workers
        d = self.daemon(flags)
        try:
            code, handler = self.fns["native"]
            assert d.deploy("warm-native", "native", handler, code, max_instances=n,
                            min_warm=n, max_queue=10000).status == 201
            wait_warm(d, "warm-native", n)
            path = "/v1/functions/warm-native/invoke"
            wrk(d.port, path, conns_, 1, "POST", "{}")
            return wrk(d.port, path, conns_, self.p.seconds, "POST", "{}")
        finally:
            d.stop()

    def warm_defaults(self):
        """What two defaults give the native no-op, each against a daemon without it:
        SCHED_BATCH workers at the most connections (sandbox.c), and busy polling at one
        connection (busy_poll.c)."""
        if "native" not in self.warm_rps:
            return
        c = CONNS[-1]
        progress("warm: native, workers SCHED_OTHER")
        r = self.native_without(("--worker-scheduling", "normal"), c)
        self.t.add("warm", f"native no-op, {conns(c)}, workers SCHED_BATCH (the default)",
                   self.warm_rps["native"], "inv/s", "workers SCHED_OTHER", r["rps"], ok_note(r))
        progress("warm: native, no busy polling")
        r = self.native_without(("--busy-poll", "0"), 1)
        self.t.add("warm", "native no-op p50, 1 connection, busy polling 100 us (the default)",
                   self.warm_p50_native, "ms", "no busy polling", r["p50"], ok_note(r))

    def cold(self, d_on):
        progress("cold: what a page of memory costs")
        pages = page_costs()
        for key, label in (("fault", "first write to a fresh page (page fault)"),
                           ("cow", "first write to a page shared with the parent, in a "
                                   "forked child (copy-on-write fault)"),
                           ("populate", "a fresh page populated by madvise(MADV_POPULATE_WRITE)")):
            self.t.add("cold", label, pages[key] / 1000, "µs per page",
                       "copying a mapped page", pages["copy"] / 1000)
        progress("cold: what a move into a cgroup costs")
        moves = cgroup_move_ms(3 if self.p.quick else 10)
        if moves:
            self.t.add("cold", "a move into a cgroup v1 memory group, the first after 0.3 s, p50",
                       pct(moves[0], 50), "ms", "a move right after it", pct(moves[1], 50))
        progress("cold: process baselines")
        self.base = process_baselines(self.p.n_base)
        configs = [("sandbox on", None, RUNTIMES),
                   ("sandbox off", ["--sandbox", "off"], RUNTIMES),
                   ("sandbox on, zygote off", ["--zygote", "off"], ("python3",))]
        for label, flags, runtimes in configs:
            d = d_on if flags is None else self.daemon(flags)
            try:
                for rt in runtimes:
                    progress(f"cold: {rt}, {label}")
                    code, handler = self.fns[rt]
                    name = f"cold-{rt}"
                    r = d.deploy(name, rt, handler, code)
                    assert r.status == 201, r
                    s = invoke_latency.cold(d, name, rt, handler, self.p.n_cold)
                    if flags is None:
                        self.cdf_cold[rt] = sorted(s)
                    for q in (50, 99):
                        self.t.add("cold", f"{rt} p{q}, {label}", pct(s, q), "ms",
                                   BASELINE_LABELS[rt], pct(self.base[rt], q), "",
                                   COLD_TARGET[rt] if q == 50 and flags is None else "")
            finally:
                if d is not d_on:
                    d.stop()
        # Pre-warming: the step from one busy worker to two, with the spare the daemon
        # keeps by default against the cold start it pays without one.
        bare = self.daemon(["--spare-workers", "0"])
        try:
            for rt in RUNTIMES:
                progress(f"cold: {rt}, step up to 2 workers")
                code = self.fns[rt][0]
                n = self.p.n_step
                with_spare, floor = invoke_latency.step_up(d_on, f"step-{rt}", rt, code, n)
                without, _ = invoke_latency.step_up(bare, f"step-{rt}", rt, code, n,
                                                    floors=False)
                for q in (50, 99):
                    self.t.add("cold", f"{rt} step up to 2 workers p{q}, a spare ready",
                               pct(with_spare, q), "ms", "without spares", pct(without, q),
                               "", STEP_TARGET[rt] if q == 50 else "")
                self.t.add("cold", f"{rt} the same step p50, both workers warm already",
                           pct(floor, 50), "ms", "a spare ready", pct(with_spare, 50))
        finally:
            bare.stop()

    def async_(self):
        d = self.daemon()
        try:
            async_accept.deploy_parked(d)
            async_accept.http_serial(d.port, 20, "parked")  # warm-up
            progress("async: wrk, pipelined")
            r = wrk(d.port, "/v1/functions/parked/invoke", 32, self.p.seconds, "POST",
                    '{"n": 1}', depth=8, headers=["Prefer: respond-async"])
            progress("async: Python load processes")
            cpu0 = children_cpu_s()
            ok, bad, wall, _ = async_accept.http_group_commit(d.port, "parked",
                                                              self.p.async_total)
            py_cpu = children_cpu_s() - cpu0
            progress("async: one at a time")
            serial = async_accept.http_serial(d.port, self.p.async_serial, "parked")
        finally:
            d.stop()
        one = 1000 / (sum(serial) / len(serial))
        # The client's CPU per accept tells which generator leaves more of the machine
        # to the daemon: the one to trust when their rates differ.
        self.t.add("async", "durable accepts, wrk 32 connections x pipeline 8", r["rps"],
                   "accepts/s", "one at a time", one,
                   cpu_note(r["cpu_s"], r["requests"], ok_note(r)))
        self.t.add("async", "durable accepts, 2 Python processes x 16 x pipeline 8",
                   ok / wall, "accepts/s", "one at a time", one,
                   cpu_note(py_cpu, ok + bad, f"{bad} refused" if bad else ""))

    def memory(self):
        if self.responder_rss is None:
            r = Responder()
            self.responder_rss = smaps_kb(r.pid)
            r.stop()
        d = self.daemon()
        try:
            time.sleep(0.5)
            idle = fndtest.rss_kb(d.pid)
            base = self.responder_rss
            self.t.add("memory", "daemon RSS idle", idle, "kB", "responder", base["Rss"],
                       target="<= 5 MB")
            # Most of the RSS is shared libraries' pages (clean, shared with every process
            # that maps them): the proportional share and the private writes tell apart
            # what is the daemon's own.
            mine = smaps_kb(d.pid)
            self.t.add("memory", "daemon PSS idle", mine["Pss"], "kB", "responder", base["Pss"])
            self.t.add("memory", "daemon private dirty memory idle", mine["Private_Dirty"], "kB",
                       "responder", base["Private_Dirty"])
            if self.load_peak is not None:
                self.t.add("memory", "daemon RSS peak under load (64 connections)",
                           self.load_peak, "kB", "idle", idle)
            progress(f"memory: deploying {self.p.functions} functions")
            native = native_functions()
            for i in range(self.p.functions):
                r = d.deploy(f"f{i:04d}", "native", "probe.echo", native)
                assert r.status == 201, r
            many = fndtest.rss_kb(d.pid)
            self.t.add("memory", f"daemon RSS, {self.p.functions} functions", many, "kB",
                       "idle", idle, target="<= 15 MB")

            progress(f"memory: {self.p.workers} warm workers")
            before = fndtest.rss_kb(d.pid)
            n = self.p.workers
            r = d.deploy("pool", "native", "probe.echo", native, max_instances=n, min_warm=n)
            assert r.status == 201, r
            got = wait_warm(d, "pool", n, timeout=120)
            after = fndtest.rss_kb(d.pid)
            self.t.add("memory", f"daemon-side memory per worker ({got} warm)",
                       (after - before) / got if got else None, "kB", target="<= 16 kB")

            progress("memory: a run of invocations")
            r = d.deploy("grow", "native", "probe.echo", native, max_instances=2, min_warm=2)
            assert r.status == 201, r
            wait_warm(d, "grow", 2)
            path = "/v1/functions/grow/invoke"
            bound = 900 if not self.p.quick else 60
            first = wrk_count(d.port, path, 8, self.p.short_run, bound, method="POST", body="{}")
            short = fndtest.rss_kb(d.pid)
            second = wrk_count(d.port, path, 8, self.p.long_run - first["requests"], bound,
                               method="POST", body="{}")
            total = first["requests"] + second["requests"]
            long_ = fndtest.rss_kb(d.pid)
            self.t.add("memory", f"daemon RSS after {total:,} invocations", long_, "kB",
                       f"after {first['requests']:,}", short,
                       ok_note({k: first[k] + second[k] for k in ("non2xx", "errors")}),
                       target="no growth (1.00x)")
        finally:
            d.stop()

    def run(self, only):
        def guarded(section, fn, *a):
            if section not in only:
                return
            try:
                fn(*a)
            except Exception as e:  # the table still prints; the run exits 1
                traceback.print_exc()
                self.t.failed.append((section, f"{type(e).__name__}: {e}"))

        if {"gateway", "warm"} & set(only):  # both compare with the responder
            guarded("gateway" if "gateway" in only else "warm", self.start_responder)
        if {"gateway", "warm", "cold"} & set(only):
            d = self.daemon()  # one daemon, sandbox on, for these three
            try:
                if self.responder:
                    guarded("gateway", self.gateway, d)
                    guarded("warm", self.warm, d)
                    self.responder.stop()
                guarded("cold", self.cold, d)
            finally:
                d.stop()
                if self.responder:
                    self.responder.stop()
            guarded("warm", self.warm_defaults)
        guarded("async", self.async_)
        guarded("memory", self.memory)


# --- plots and docs ----------------------------------------------------------------

def plot(out_dir, name, title, xlabel, series):
    """A CDF (x: latency, log scale; y: fraction) of {label: [(percentile, ms)]} as an
    SVG via gnuplot; returns its path."""
    data = os.path.join(out_dir, name + ".dat")
    svg = os.path.join(out_dir, name + ".svg")
    with open(data, "w") as f:
        for label, pts in series.items():
            f.write(f'"{label}"\n')
            for p, ms in pts:
                f.write(f"{max(ms, 0.001)} {p / 100}\n")
            f.write("\n\n")
    lines = ", ".join(f"'{data}' index {i} using 1:2 with lines lw 2 title columnheader(1)"
                      for i in range(len(series)))
    script = (f"set terminal svg size 800,480 dynamic font 'sans,11'\nset output '{svg}'\n"
              f"set title '{title}'\nset logscale x\nset xlabel '{xlabel}'\n"
              "set ylabel 'fraction of requests'\nset yrange [0:1]\nset grid\n"
              f"set key bottom right\nplot {lines}\n")
    subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
    os.unlink(data)
    return svg


def plots(s, out_dir):
    made = []
    if s.cdf_warm:
        made.append(plot(out_dir, "bench-warm-cdf", "warm invoke latency, 1 connection",
                         "latency (ms)", s.cdf_warm))
    if s.cdf_cold:
        cold = {f"{rt}, sandbox on": [((i + 1) / len(v) * 100, ms) for i, ms in enumerate(v)]
                for rt, v in s.cdf_cold.items()}
        made.append(plot(out_dir, "bench-cold-cdf", "cold start to first response",
                         "latency (ms)", cold))
    return made


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cpus ({model}), Linux {platform.release()}"


def write_docs(s, command, started, load, took, svgs):
    path = os.path.join(DOCS, "benchmarks.md")
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise RuntimeError(f"{path} has no {BEGIN} ... {END} block")
    imgs = "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in svgs)
    block = (f"{BEGIN}\nRun of {started:%Y-%m-%d %H:%M} UTC on {machine()}; load average "
             f"{load} at the start; {took / 60:.1f} minutes.\n\n```sh\n{command}\n```\n\n"
             f"{s.t.markdown()}\n\n{imgs}\n{END}")
    head, rest = text.split(BEGIN, 1)
    with open(path, "w") as f:
        f.write(head + block + rest.split(END, 1)[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fnd", default=fndtest.FND_BIN)
    ap.add_argument("--quick", action="store_true", help="about a second per point, for CI")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--write-docs", action="store_true",
                    help="write the results and plots into docs/")
    ap.add_argument("--out", help="folder for the plots (default: docs/ with --write-docs, "
                                  "else none)")
    args = ap.parse_args()
    # A suite stopped with SIGTERM unwinds like one stopped with ^C: the finally blocks
    # stop every daemon and responder it started, which would otherwise outlive it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    use_fnd(args.fnd)
    only = [x for x in args.only.split(",") if x]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    started = datetime.datetime.now(datetime.timezone.utc)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    t0 = time.monotonic()
    p = Params(args.quick)
    with tempfile.TemporaryDirectory(prefix="fnd-bench-") as tmp:
        s = Suite(p, tmp)
        s.run(only)
    took = time.monotonic() - t0
    out_dir = args.out or (DOCS if args.write_docs else None)
    svgs = []
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        try:
            svgs = plots(s, out_dir)
        except (OSError, subprocess.SubprocessError) as e:
            s.t.failed.append(("plots", str(e)))
    print(f"fnd benchmark suite ({'quick' if p.quick else 'full'} run, {machine()}, load "
          f"average {load} at the start, {took:.0f} s)")
    s.t.print()
    for svg in svgs:
        print(f"plot: {svg}")
    if args.write_docs:
        command = "/usr/bin/python3 tests/bench/suite.py --fnd build/fnd" + \
                  (" --quick" if p.quick else "") + " --write-docs"
        write_docs(s, command, started, load, took, svgs)
        print(f"results written to {os.path.join(DOCS, 'benchmarks.md')}")
    missing = s.t.missing()
    if missing or s.t.failed or (out_dir and len(svgs) < 2 and
                                 {"warm", "cold"} <= set(only)):
        print(f"{len(missing)} figures missing, {len(s.t.failed)} sections failed",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
