"""The invocation controller: scaling by queue depth, idle scale-down, min_warm,
back-pressure, fairness under a daemon-wide budget, and redeploys under load."""
import concurrent.futures
import os
import signal
import threading
import time

from fndtest import BUILD_DIR, FUNCTIONS, alive, wait_for, worker_pids

NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")
PY = os.path.join(FUNCTIONS, "py")


def state(d, name):
    return d.get(f"/v1/functions/{name}").json()["state"]


def live(st):
    i = st["instances"]
    return i["starting"] + i["idle"] + i["busy"]


def burst(d, name, n, raw):
    pool = concurrent.futures.ThreadPoolExecutor(n)
    futures = [pool.submit(d.invoke, name, None, raw) for _ in range(n)]
    return pool, futures


def test_burst_scales_in_one_step_and_runs_in_rounds(daemon):
    r = daemon.deploy("burst", "native", "probe.nap", NATIVE, max_instances=4)
    assert r.status == 201
    t0 = time.monotonic()
    pool, futures = burst(daemon, "burst", 10, "400")
    # all four workers are asked for at once, before the first one is even ready
    seen = wait_for(lambda: live(state(daemon, "burst")) == 4, timeout=1.0)
    assert seen, state(daemon, "burst")
    results = [f.result() for f in futures]
    took = time.monotonic() - t0
    pool.shutdown()
    assert all(r.status == 200 for r in results)
    assert len({r.body for r in results}) == 4  # exactly max_instances workers served
    assert 1.15 < took < 2.5, took  # ceil(10 / 4) = 3 rounds of 400 ms
    st = state(daemon, "burst")
    assert st["cold_starts"] == 4 and st["invocations"] == 10


def test_idle_workers_stop_down_to_min_warm(daemon):
    daemon.deploy("idle", "native", "probe.nap", NATIVE, max_instances=3, min_warm=1,
                  idle_timeout_ms=300)
    pool, futures = burst(daemon, "idle", 3, "200")
    assert all(f.result().status == 200 for f in futures)
    pool.shutdown()
    assert live(state(daemon, "idle")) == 3
    assert wait_for(lambda: live(state(daemon, "idle")) == 1, timeout=3)
    time.sleep(0.5)  # and it stays at min_warm
    st = state(daemon, "idle")
    assert live(st) == 1 and st["instances"]["idle"] == 1


def test_min_warm_at_deploy_after_crash_and_after_restart(daemon):
    daemon.deploy("warm", "native", "probe.nap", NATIVE, min_warm=2)
    assert wait_for(lambda: state(daemon, "warm")["instances"]["idle"] == 2)
    assert state(daemon, "warm")["invocations"] == 0  # started before any invocation
    pid = worker_pids(daemon, "warm")[0]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid))
    assert wait_for(lambda: state(daemon, "warm")["instances"]["idle"] == 2)
    st = state(daemon, "warm")  # three workers started, no invocation waited for one
    assert st["worker_starts"] == 3 and st["cold_starts"] == 0
    daemon.restart()
    assert wait_for(lambda: state(daemon, "warm")["instances"]["idle"] == 2)


def test_full_queue_gets_429_with_retry_after(daemon):
    daemon.deploy("narrow", "native", "probe.nap", NATIVE, max_instances=1, max_queue=2)
    pool, futures = burst(daemon, "narrow", 6, "500")
    results = [f.result() for f in futures]
    pool.shutdown()
    codes = sorted(r.status for r in results)
    assert codes.count(200) == 3 and codes.count(429) == 3, codes  # 1 running + 2 queued
    throttled = [r for r in results if r.status == 429][0]
    assert throttled.headers["retry-after"] == "1"
    assert throttled.json()["error"]["code"] == "too_many_requests"


def test_queue_wait_limit(daemon):
    # warm before the burst (min_warm): a cold start on a loaded machine may itself
    # outlast the 200 ms
    daemon.deploy("patient", "native", "probe.nap", NATIVE, max_instances=1, min_warm=1,
                  max_queue_wait_ms=200)
    assert wait_for(lambda: state(daemon, "patient")["instances"]["idle"] == 1, timeout=10)
    pool, futures = burst(daemon, "patient", 2, "800")
    codes = sorted(f.result().status for f in futures)
    pool.shutdown()
    assert codes == [200, 429], codes


def test_second_function_served_while_first_is_saturated(start_daemon):
    d = start_daemon("--max-workers", "2")
    d.deploy("hog", "native", "probe.nap", NATIVE, max_instances=4)
    d.deploy("other", "native", "probe.nap", NATIVE)
    pool, futures = burst(d, "hog", 8, "700")
    assert wait_for(lambda: state(d, "hog")["instances"]["busy"] == 2, timeout=2)
    t0 = time.monotonic()
    r = d.invoke("other", raw="1")
    waited = time.monotonic() - t0
    assert r.status == 200
    # one hog worker is handed over when it finishes (about 700 ms), not after the
    # hog's whole queue (four rounds, about 2.8 s)
    assert waited < 1.8, waited
    assert all(f.result().status == 200 for f in futures)
    pool.shutdown()
    stats = d.get("/v1/stats").json()
    assert stats["workers"]["starting"] + stats["workers"]["idle"] + stats["workers"]["busy"] <= 2


def test_redeploy_under_load_loses_nothing_and_mixes_nothing(daemon):
    daemon.deploy("rolling", "python3", "app.version", PY, env={"V": "1"}, max_instances=3)
    stop = time.monotonic() + 2.0
    results = []
    served = threading.Event()  # version 1 answered: on a busy machine a cold start is slow

    def client():
        out = []
        while time.monotonic() < stop or not served.is_set():
            out.append(daemon.invoke("rolling", {"ms": 20}))
            served.set()
        return out

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client) for _ in range(3)]
        served.wait(timeout=30)
        stop = max(stop, time.monotonic() + 2.0)
        for v in ("2", "3"):
            r = daemon.request("PUT", "/v1/functions/rolling",
                               {"runtime": "python3", "handler": "app.version",
                                "env": {"V": v}, "max_instances": 3})
            assert r.status == 200
            time.sleep(0.4)
        for c in clients:
            results.extend(c.result())
    assert results and all(r.status == 200 for r in results), \
        [r for r in results if r.status != 200][:3]
    bodies = [r.json() for r in results]
    assert all(b["start"] == b["end"] for b in bodies)
    assert {b["start"] for b in bodies} >= {"1", "3"}
    assert daemon.invoke("rolling", {"ms": 0}).json()["start"] == "3"


def test_memory_budget_evicts_least_recently_used_idle_workers(start_daemon):
    d = start_daemon("--memory-budget", "256M")
    d.deploy("old", "native", "probe.nap", NATIVE, memory_mb=128)
    d.deploy("new", "native", "probe.nap", NATIVE, memory_mb=128)
    pool, futures = burst(d, "old", 2, "200")
    old_pids = {f.result().body for f in futures}
    pool.shutdown()
    assert len(old_pids) == 2 and live(state(d, "old")) == 2  # the budget is now full
    stats = d.get("/v1/stats").json()
    assert stats["memory_mb"] == 256 and stats["memory_budget_mb"] == 256
    r = d.invoke("new", raw="1")  # needs room: one idle worker of "old" is evicted
    assert r.status == 200
    assert live(state(d, "old")) == 1 and live(state(d, "new")) == 1
    assert d.get("/v1/stats").json()["memory_mb"] <= 256
    assert d.invoke("old", raw="1").status == 200  # old still serves on its last worker


def test_scale_up_starts_a_spare_that_the_next_step_up_finds_warm(daemon):
    daemon.deploy("pre", "native", "probe.nap", NATIVE)
    first = daemon.invoke("pre", raw="1").body  # a cold start, and a spare beside it
    assert wait_for(lambda: state(daemon, "pre")["instances"]["idle"] == 2), state(daemon, "pre")
    # one at a time, invocations stay on the warm worker; the spare is left alone
    assert {daemon.invoke("pre", raw="1").body for _ in range(5)} == {first}
    # concurrency steps up to 2: the second invocation runs on the spare, no cold start
    pool, futures = burst(daemon, "pre", 2, "300")
    bodies = {f.result().body for f in futures}
    pool.shutdown()
    st = state(daemon, "pre")
    assert len(bodies) == 2 and first in bodies
    assert st["cold_starts"] == 1 and st["invocations"] == 8, st
    # the spare was used up, so another one replaces it
    assert wait_for(lambda: state(daemon, "pre")["worker_starts"] == 3), state(daemon, "pre")
    assert wait_for(lambda: state(daemon, "pre")["instances"]["idle"] == 3)


def test_spares_stay_within_max_instances_and_age_out(daemon):
    daemon.deploy("one", "native", "probe.nap", NATIVE, max_instances=1)
    assert daemon.invoke("one", raw="1").status == 200
    time.sleep(0.3)
    assert state(daemon, "one")["worker_starts"] == 1  # no room for a spare
    daemon.deploy("brief", "native", "probe.nap", NATIVE, idle_timeout_ms=300)
    assert daemon.invoke("brief", raw="1").status == 200
    assert wait_for(lambda: state(daemon, "brief")["worker_starts"] == 2)
    assert wait_for(lambda: live(state(daemon, "brief")) == 0, timeout=3)  # both idle out


def test_without_spares_the_next_step_up_is_a_cold_start(start_daemon):
    d = start_daemon("--spare-workers", "0")
    d.deploy("bare", "native", "probe.nap", NATIVE)
    assert d.invoke("bare", raw="1").status == 200
    time.sleep(0.3)
    assert state(d, "bare")["worker_starts"] == 1
    pool, futures = burst(d, "bare", 2, "300")
    assert all(f.result().status == 200 for f in futures)
    pool.shutdown()
    assert state(d, "bare")["cold_starts"] == 2
