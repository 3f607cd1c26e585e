"""Durable async invocations and idempotency keys (docs/eventlog.md), on both event log
backends: 202 only after the accept is durable, status polling, retries with backoff,
dead letters and redrive, idempotent sync and async calls, and 503 while the log is
read-only because its disk is full. Executions are counted by a HitCounter that the
test functions report to."""
import concurrent.futures
import glob
import json
import os
import subprocess
import time

import pytest

from fndtest import FUNCTIONS, HitCounter

ASYNC = os.path.join(FUNCTIONS, "async")
PREFER = {"Prefer": "respond-async"}


@pytest.fixture(params=["uring", "threadpool"])
def backend(request):
    return request.param


@pytest.fixture
def counter():
    with HitCounter() as c:
        yield c


def start(start_daemon, backend, *args, data=None):
    d = start_daemon("--eventlog-backend", backend, *args, data=data)
    assert f"backend={backend}" in d.log()
    return d


def deploy(d, name, handler, **config):
    r = d.deploy(name, "python3", handler, ASYNC, **config)
    assert r.status == 201, r


def submit(d, name, event, headers=None):
    return d.invoke(name, event, headers={**PREFER, **(headers or {})})


def wait_status(d, inv_id, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = d.get(f"/v1/invocations/{inv_id}")
        assert r.status == 200, r
        body = r.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{inv_id} stayed {body['status']}: {body}")


def log_bytes(d):
    """Non-zero bytes in the event log's segments: what has been written."""
    total = 0
    for p in glob.glob(os.path.join(d.data, "eventlog", "*.seg")):
        with open(p, "rb") as f:
            total += len(f.read().rstrip(b"\0"))
    return total


def test_accept_poll_succeeded(start_daemon, backend, counter):
    d = start(start_daemon, backend)
    deploy(d, "rec", "app.record")
    r = submit(d, "rec", {"counter": counter.port, "tag": "a"})
    assert r.status == 202, r
    inv = r.json()["invocation_id"]
    assert r.headers["location"] == f"/v1/invocations/{inv}"
    body = wait_status(d, inv, {"succeeded"})
    assert body["result"] == {"id": inv, "runs": 1, "tag": "a"}
    assert body["function"] == "rec" and body["error"] is None
    [attempt] = body["attempts"]
    assert attempt["outcome"] == "success" and attempt["ended"] >= attempt["started"]
    assert counter.count(inv) == 1
    # Unknown function: 404, and nothing reaches the log.
    before = log_bytes(d)
    assert submit(d, "nope", {}).status == 404
    assert d.get("/v1/invocations/00000000-0000-4000-8000-000000000000").status == 404
    assert log_bytes(d) == before
    # Sync invocations without a key never touch the disk.
    for _ in range(5):
        assert d.invoke("rec", {"counter": counter.port}).status == 200
    assert log_bytes(d) == before
    stats = d.get("/v1/stats").json()["async"]
    assert stats["backend"] == backend and stats["read_only"] is False


def test_retries_backoff_dead_letter_and_redrive(start_daemon, backend, counter):
    d = start(start_daemon, backend)
    deploy(d, "flaky", "app.flaky",
           retry={"max_attempts": 3, "base_delay_ms": 300, "max_delay_ms": 600})
    r = submit(d, "flaky", {"counter": counter.port, "fail": 3})
    assert r.status == 202, r
    inv = r.json()["invocation_id"]
    body = wait_status(d, inv, {"dead_letter"})
    attempts = body["attempts"]
    assert [a["outcome"] for a in attempts] == ["error"] * 3
    assert attempts[0]["error"]["errorType"] == "RuntimeError"
    assert body["error"]["errorMessage"] == "failure 3 of 3"
    # Exponential backoff with equal jitter: 150..300 ms, then 300..600 ms.
    gap1 = attempts[1]["started"] - attempts[0]["ended"]
    gap2 = attempts[2]["started"] - attempts[1]["ended"]
    assert 0.14 <= gap1 and 0.29 <= gap2, (gap1, gap2)
    assert counter.count(inv) == 3  # the same request id on every attempt
    dead = d.get("/v1/functions/flaky/dead-letters").json()["dead_letters"]
    assert [x["invocation_id"] for x in dead] == [inv]
    assert d.get("/v1/functions/nope/dead-letters").status == 404
    # Redrive: the fourth execution succeeds.
    r = d.request("POST", f"/v1/invocations/{inv}/retry")
    assert r.status == 202 and r.json()["invocation_id"] == inv
    body = wait_status(d, inv, {"succeeded"})
    assert body["result"] == {"id": inv, "runs": 4}
    assert len(body["attempts"]) == 4
    assert d.get("/v1/functions/flaky/dead-letters").json()["dead_letters"] == []
    assert d.request("POST", f"/v1/invocations/{inv}/retry").status == 409
    assert d.request("POST", "/v1/invocations/nope/retry").status == 404
    # All of it survives a restart.
    d.restart()
    body = wait_status(d, inv, {"succeeded"})
    assert len(body["attempts"]) == 4 and counter.count(inv) == 4


def test_event_age_sends_to_dead_letters(start_daemon, backend, counter):
    d = start(start_daemon, backend)
    deploy(d, "old", "app.flaky",
           retry={"max_attempts": 50, "base_delay_ms": 600, "max_delay_ms": 600,
                  "max_event_age_s": 1})
    inv = submit(d, "old", {"counter": counter.port, "fail": 100}).json()["invocation_id"]
    body = wait_status(d, inv, {"dead_letter"})
    assert 1 <= len(body["attempts"]) <= 4


def test_async_idempotency(start_daemon, backend, counter):
    d = start(start_daemon, backend)
    deploy(d, "rec", "app.record")
    event = {"counter": counter.port, "tag": "once"}
    key = {"Idempotency-Key": "order-42"}
    first = submit(d, "rec", event, key)
    assert first.status == 202
    inv = first.json()["invocation_id"]
    wait_status(d, inv, {"succeeded"})
    again = submit(d, "rec", event, key)
    assert again.status == 202 and again.json()["invocation_id"] == inv
    r = submit(d, "rec", {**event, "tag": "other"}, key)
    assert r.status == 422 and r.json()["error"]["code"] == "unprocessable"
    time.sleep(0.3)
    assert counter.count(inv) == 1  # one execution for two accepted requests
    # The same key on another function is another invocation.
    deploy(d, "rec2", "app.record")
    other = submit(d, "rec2", event, key).json()["invocation_id"]
    assert other != inv
    assert submit(d, "rec", event, {"Idempotency-Key": "k" * 256}).status == 400
    assert submit(d, "rec", event, {"Idempotency-Key": "k" * 255}).status == 202
    # Keys survive a restart.
    d.restart()
    again = submit(d, "rec", event, key)
    assert again.status == 202 and again.json()["invocation_id"] == inv
    assert submit(d, "rec", {**event, "tag": "x"}, key).status == 422
    time.sleep(0.3)
    assert counter.count(inv) == 1


def test_sync_idempotency(start_daemon, backend, counter):
    d = start(start_daemon, backend)
    deploy(d, "rec", "app.record")
    key = {"Idempotency-Key": "pay-1"}
    event = {"counter": counter.port, "ms": 1500}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(d.invoke, "rec", event, None, 30, key)
        deadline = time.monotonic() + 20
        while not counter.snapshot() and time.monotonic() < deadline:
            time.sleep(0.02)
        # While the first runs: 409 for sync, the async answer for async.
        busy = d.invoke("rec", event, headers=key)
        assert busy.status == 409 and busy.json()["error"]["code"] == "conflict"
        a = submit(d, "rec", event, key)
        assert a.status == 202
        first = running.result()
    assert first.status == 200
    inv = first.headers["x-request-id"]
    assert a.json()["invocation_id"] == inv
    assert first.json()["runs"] == 1
    replay = d.invoke("rec", event, headers=key)
    assert replay.status == 200 and replay.body == first.body
    assert replay.headers["x-request-id"] == inv
    assert replay.headers["idempotent-replayed"] == "true"
    assert d.invoke("rec", {**event, "ms": 1}, headers=key).status == 422
    assert counter.count(inv) == 1
    body = wait_status(d, inv, {"succeeded"})
    assert body["mode"] == "sync"
    d.restart()
    replay = d.invoke("rec", event, headers=key)
    assert replay.status == 200 and replay.body == first.body
    assert counter.count(inv) == 1


def test_full_disk_latches_read_only_then_recovers(start_daemon, backend, counter, tmp_path):
    mnt = tmp_path / "data"  # the data folder itself; the daemon's log stays outside
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    d = None
    try:
        d = start(start_daemon, backend, "--eventlog-segment-size", "64k",
                  data=str(mnt))
        deploy(d, "rec", "app.record")
        # Fill the disk, leaving less than one segment.
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"x" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        os.truncate(filler, os.path.getsize(filler) - 32 * 1024)
        # Accepts go on until the segment is full and the next cannot be preallocated.
        event = {"counter": counter.port, "pad": "p" * 4000}
        statuses = []
        for _ in range(40):
            statuses.append(submit(d, "rec", event).status)
            if statuses[-1] != 202:
                break
        assert statuses[-1] == 503, statuses
        assert set(statuses[:-1]) <= {202}
        assert submit(d, "rec", {"counter": counter.port}).status == 503
        assert d.invoke("rec", {"counter": counter.port},
                        headers={"Idempotency-Key": "k"}).status == 503
        assert d.invoke("rec", {"counter": counter.port}).status == 200  # sync still works
        assert d.get("/v1/stats").json()["async"]["read_only"] == "No space left on device"
        os.unlink(filler)  # space returns: the log probes and continues
        deadline = time.monotonic() + 20
        while submit(d, "rec", {"counter": counter.port}).status != 202:
            assert time.monotonic() < deadline, "the log stayed read-only"
            time.sleep(0.2)
        assert d.get("/v1/stats").json()["async"]["read_only"] is False
        d.stop()
    finally:
        if d:
            d.stop()
        subprocess.run(["umount", "-l", str(mnt)], check=False)
