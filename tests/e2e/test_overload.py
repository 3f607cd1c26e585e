"""Overload: offered load far above a function's capacity. The excess must be refused
fast with 429 and Retry-After, the queue and the daemon's memory must stay bounded, and
a function that is not overloaded must keep its normal latency."""
import concurrent.futures
import os
import statistics
import threading
import time

from fndtest import BUILD_DIR, rss_kb

NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")


def test_far_above_capacity_gets_fast_429s_and_others_stay_fast(monkeypatch, start_daemon):
    # in the sanitizer build, freed memory waits in a quarantine that would read as growth
    monkeypatch.setenv("ASAN_OPTIONS", "quarantine_size_mb=8")
    daemon = start_daemon()
    # capacity: 2 workers x 200 ms, and 4 may wait: about 10 invocations a second
    assert daemon.deploy("hot", "native", "probe.nap", NATIVE, max_instances=2,
                         max_queue=4).status == 201
    assert daemon.deploy("cool", "native", "probe.echo", NATIVE).status == 201
    assert daemon.invoke("cool", raw="warm").status == 200
    before = rss_kb(daemon.pid)
    stop = threading.Event()
    hot = []  # (status, seconds, retry-after)

    def flood():
        while not stop.is_set():
            t0 = time.monotonic()
            r = daemon.invoke("hot", raw="200")
            hot.append((r.status, time.monotonic() - t0, r.headers.get("retry-after")))

    cool = []
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        flooders = [pool.submit(flood) for _ in range(32)]
        time.sleep(0.5)
        for _ in range(40):
            t0 = time.monotonic()
            r = daemon.invoke("cool", raw="ping")
            cool.append(time.monotonic() - t0)
            assert r.status == 200 and r.body == b"ping"
            time.sleep(0.05)
        peak = rss_kb(daemon.pid)
        queued = daemon.get("/v1/functions/hot").json()["state"]
        stop.set()
        for f in flooders:
            f.result(timeout=60)

    throttled = [h for h in hot if h[0] == 429]
    served = [h for h in hot if h[0] == 200]
    assert {h[0] for h in hot} <= {200, 429}, {h[0] for h in hot}
    assert len(throttled) > 5 * len(served), (len(throttled), len(served))
    assert all(h[2] == "1" for h in throttled)  # Retry-After on every refusal
    assert statistics.median(h[1] for h in throttled) < 0.2
    # the function that is not overloaded keeps its latency
    assert statistics.median(cool) < 0.1, statistics.median(cool)
    assert max(cool) < 2.0, max(cool)
    # bounded: the queue never passes max_queue, the daemon's memory barely moves
    assert queued["queue_depth"] <= 4, queued
    assert (peak - before) / 1024 < 30, f"{(peak - before) / 1024:.0f} MiB"
    assert daemon.get("/healthz").status == 200
