#!/usr/bin/env python3
"""The controller under bursts, for native and Python functions. Prints a table;
never passes or fails. Usage: controller.py [--fnd BUILD/fnd] [--quick]

- scale-up: time from 0 workers to 16 warm workers when 16 invocations arrive at once
  (each sleeps, so every one needs its own worker), next to the same-run time of one
  cold start (the ideal is one cold start: all 16 start together);
- burst: throughput and p99 latency while 10 x max_instances clients invoke a no-op,
  next to the same function with one client;
- isolation: latency of an unrelated function while another is saturated (queue full,
  429s), next to its latency on an idle daemon.
All load comes from this process's threads, over 127.0.0.1, bounded in count.
"""
import argparse
import concurrent.futures
import http.client
import multiprocessing
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import fndtest, native_functions, pct, use_fnd  # noqa: E402


def client_loop(port, path, body, n, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        r.read()
        out.append(((time.perf_counter() - t0) * 1000, r.status))
    conn.close()


def run_clients(port, path, body, clients, per_client):
    results = []
    threads = [threading.Thread(target=client_loop, args=(port, path, body, per_client, results))
               for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


def hammer(port, stop, threads=16):
    """Saturates function "hot" from many connections until stop is set."""
    def loop():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            conn.request("POST", "/v1/functions/hot/invoke", body=b"50")
            conn.getresponse().read()
        conn.close()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def live_workers(d, name):
    i = d.get(f"/v1/functions/{name}").json()["state"]["instances"]
    return i["idle"] + i["busy"]


def scale_up(d, name, runtime, handler, code, sleep_event):
    d.deploy(name, runtime, handler, code, max_instances=16, idle_timeout_ms=100)
    # one cold start alone, as the baseline
    t0 = time.perf_counter()
    d.invoke(name, raw=sleep_event(0))
    one = (time.perf_counter() - t0) * 1000
    deadline = time.monotonic() + 10
    while live_workers(d, name) and time.monotonic() < deadline:
        time.sleep(0.05)  # back to zero workers
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        t0 = time.perf_counter()
        futures = [pool.submit(d.invoke, name, None, sleep_event(300)) for _ in range(16)]
        warm_at = None
        while warm_at is None and time.perf_counter() - t0 < 10:
            if live_workers(d, name) >= 16:
                warm_at = (time.perf_counter() - t0) * 1000
            time.sleep(0.002)
        for f in futures:
            f.result()
    return warm_at, one


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fnd", default=fndtest.FND_BIN)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    use_fnd(args.fnd)
    per_client = 20 if args.quick else 200
    native = native_functions()
    pydir = os.path.join(HERE, "..", "e2e", "functions", "py")
    kinds = {
        "native": ("native", "probe.nap", native, lambda ms: str(ms)),
        "python3": ("python3", "app.sleep", pydir, lambda ms: '{"ms": %d}' % ms),
    }
    print(f"fnd controller benchmark ({'quick' if args.quick else 'full'} run, {os.cpu_count()} cpus)")
    with tempfile.TemporaryDirectory() as tmp:
        d = fndtest.Daemon(os.path.join(tmp, "data"))
        try:
            print("scale-up: 0 -> 16 warm workers under a burst of 16 (vs one cold start):")
            for label, (rt, handler, code, ev) in kinds.items():
                warm_at, one = scale_up(d, f"scale-{label}", rt, handler, code, ev)
                if warm_at is None:  # the burst ended before all 16 were warm at once
                    print(f"  {label:<8} 16 workers never warm together (within 10 s)   "
                          f"one cold start {one:7.1f} ms")
                    continue
                print(f"  {label:<8} 16 workers warm after {warm_at:8.1f} ms   "
                      f"one cold start {one:7.1f} ms   ratio {warm_at / one:6.2f}x")

            print("burst of 10 x max_instances (4) clients on a no-op (vs one client):")
            for label, (rt, handler, code, ev) in kinds.items():
                name = f"burst-{label}"
                d.deploy(name, rt, handler, code, max_instances=4)
                path = f"/v1/functions/{name}/invoke"
                body = ev(0).encode()
                client_loop(d.port, path, body, 4, [])  # warm up
                one, t1 = run_clients(d.port, path, body, 1, per_client)
                many, t2 = run_clients(d.port, path, body, 40, per_client)
                ok = [ms for ms, st in many if st == 200]
                print(f"  {label:<8} 40 clients {len(many) / t2:8.0f} inv/s p99 {pct(ok, 99):7.2f} ms"
                      f" ({len(many) - len(ok)} refused)   1 client {len(one) / t1:7.0f} inv/s "
                      f"p99 {pct([m for m, _ in one], 99):6.2f} ms")

            print("isolation: an unrelated function while another is saturated:")
            d.deploy("victim", "native", "probe.echo", native)
            d.deploy("hot", "native", "probe.nap", native, max_instances=2, max_queue=10)
            vpath = "/v1/functions/victim/invoke"
            client_loop(d.port, vpath, b"x", 5, [])
            calm, _ = run_clients(d.port, vpath, b"x", 1, per_client)
            # The overload comes from a separate process, so that its threads do not
            # share an interpreter lock with the client that measures the victim.
            stop = multiprocessing.Event()
            hog = multiprocessing.Process(target=hammer, args=(d.port, stop))
            hog.start()
            time.sleep(0.5)
            busy, _ = run_clients(d.port, vpath, b"x", 1, per_client)
            stop.set()
            hog.join(30)
            c50, b50 = pct([m for m, _ in calm], 50), pct([m for m, _ in busy], 50)
            print(f"  victim p50 {b50:7.3f} ms p99 {pct([m for m, _ in busy], 99):7.3f} ms while "
                  f"'hot' is saturated; idle daemon p50 {c50:7.3f} ms   ratio {b50 / c50:5.2f}x")
        finally:
            d.stop()


if __name__ == "__main__":
    main()
