#!/usr/bin/env python3
"""Soak test: mixed load on one daemon for --duration seconds, then a verdict.

The load, from a few client threads at once: synchronous invocations of a native echo
and a Python echo (the answer must be the request), redeploys of a function that is
invoked at the same time (both versions are fine, nothing else), a function that
crashes on every call (502), one that runs past its timeout (504), one that raises
(500), and deploys and deletes of short-lived functions. Any other answer, a wrong
body or a client-side error is an unexplained error.

Verdict, from the daemon's RSS and descriptor count sampled every second after a
warm-up: no unexplained errors; RSS of the last third of the run within 10% (plus
8 MiB) of the first third's; descriptors of the last third within 16 of the first
third's. Prints what it measured; exits 1 on failure.

    /usr/bin/python3 tests/soak/soak.py --fnd build/fnd --duration 600
"""
import argparse
import collections
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import fndtest  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fnd", default=fndtest.FND_BIN)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--clients", type=int, default=6)
    args = ap.parse_args()
    fndtest.FND_BIN = os.path.abspath(args.fnd)
    build = os.path.dirname(fndtest.FND_BIN)
    native = os.path.join(build, "tests", "functions", "native")
    py = os.path.join(fndtest.FUNCTIONS, "py")

    with tempfile.TemporaryDirectory(prefix="fnd-soak-") as tmp:
        d = fndtest.Daemon(os.path.join(tmp, "data"))
        try:
            ok = soak(d, args, native, py)
        finally:
            d.stop()  # also fails on a sanitizer report in the daemon's log
    return 0 if ok else 1


def soak(d, args, native, py):
    def deploy(name, runtime, handler, code, **cfg):
        r = d.deploy(name, runtime, handler, code, **cfg)
        assert r.status in (200, 201), r

    deploy("echo", "native", "probe.echo", native, max_instances=4)
    deploy("pyecho", "python3", "app.echo", py, max_instances=2)
    deploy("crash", "native", "probe.crash", native, max_instances=2)
    deploy("slow", "native", "probe.nap", native, timeout_ms=200, max_instances=2)
    deploy("boom", "python3", "app.boom", py, max_instances=1)
    deploy("flip", "native", "probe.echo", native, max_instances=2)

    counts = collections.Counter()
    errors = []
    lock = threading.Lock()
    stop = threading.Event()

    def note(kind, good, what):
        with lock:
            counts[kind] += 1
            if not good:
                errors.append((kind, what))

    def one(rng, n):
        pick = rng.random()
        if pick < 0.35:
            body = os.urandom(rng.randrange(1, 4096))
            r = d.invoke("echo", raw=body)
            note("echo", r.status == 200 and r.body == body, r)
        elif pick < 0.55:
            r = d.invoke("pyecho", {"n": n})
            note("pyecho", r.status == 200 and r.json()["event"] == {"n": n}, r)
        elif pick < 0.62:
            r = d.invoke("crash", raw="x")
            note("crash", r.status == 502 and r.json()["errorType"] == "Runtime.ExitError", r)
        elif pick < 0.68:
            r = d.invoke("slow", raw="1000")
            note("timeout", r.status == 504 and r.json()["errorType"] == "TimeoutError", r)
        elif pick < 0.74:
            r = d.invoke("boom", {"why": n})
            note("error", r.status == 500 and r.json()["errorType"] == "ValueError", r)
        elif pick < 0.90:
            r = d.invoke("flip", raw=b"%d" % n)
            # probe.echo answers the event; probe.nap (the other version) its worker's id
            note("flip", r.status == 200 and re.fullmatch(rb"\d+|[0-9a-f]{16}", r.body), r)
        elif pick < 0.95:
            handler = rng.choice(("probe.echo", "probe.nap"))
            r = d.deploy("flip", "native", handler, native, max_instances=2)
            # two clients may redeploy at once: the second is told so (409)
            note("redeploy", r.status in (200, 409), r)
        else:
            name = f"tmp{n % 3}"
            r = d.deploy(name, "native", "probe.echo", native)
            good = r.status in (200, 201, 409)
            r2 = d.invoke(name, raw="t")
            good = good and r2.status in (200, 404, 503)
            r3 = d.request("DELETE", f"/v1/functions/{name}")
            note("lifecycle", good and r3.status in (204, 404, 409), (r, r2, r3))

    def client(seed):
        rng = random.Random(seed)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                one(rng, n)
            except Exception as e:  # a client-side failure is an unexplained error
                note("exception", False, repr(e))

    samples = []  # (t, rss_kb, fds)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    warmup = min(10.0, args.duration * 0.15)
    while time.monotonic() - t0 < args.duration:
        time.sleep(1)
        now = time.monotonic() - t0
        if now >= warmup:
            samples.append((now, fndtest.rss_kb(d.pid), fndtest.fd_count(d.pid)))
    stop.set()
    for t in threads:
        t.join(timeout=60)

    third = max(1, len(samples) // 3)
    first, last = samples[:third], samples[-third:]
    rss_first = statistics.mean(s[1] for s in first) / 1024
    rss_last = statistics.mean(s[1] for s in last) / 1024
    fd_first = statistics.median(s[2] for s in first)
    fd_last = statistics.median(s[2] for s in last)
    total = sum(counts.values())
    print(f"soak: {args.duration:.0f} s, {total} operations "
          f"({total / args.duration:.0f}/s): {dict(sorted(counts.items()))}")
    print(f"soak: rss first third {rss_first:.1f} MiB, last third {rss_last:.1f} MiB; "
          f"fds first third {fd_first:.0f}, last third {fd_last:.0f}")
    ok = True
    if errors:
        ok = False
        print(f"soak: {len(errors)} unexplained errors, the first: {errors[:5]}")
    if rss_last > rss_first * 1.10 + 8:
        ok = False
        print("soak: RSS grew")
    if fd_last > fd_first + 16:
        ok = False
        print("soak: descriptors grew")
    for kind in ("echo", "pyecho", "crash", "timeout", "error", "flip", "redeploy"):
        if counts[kind] == 0 and args.duration >= 30:
            ok = False
            print(f"soak: no {kind} operation ran")
    print("soak: " + ("ok" if ok else "FAILED"))
    return ok


if __name__ == "__main__":
    sys.exit(main())
