"""GET /metrics: Prometheus text that promtool accepts, with values that move as
invocations, cold starts, throttles and HTTP requests happen, and per-function series
that go away with the function."""
import re
import shutil
import subprocess
import threading

PY = """import time
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("no")
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""


def scrape(d):
    r = d.get("/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.body.decode()


def value(text, name, **labels):
    """The sample of name with exactly these labels, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)\n"
    m = re.search("^" + pattern, text, re.M)
    return float(m.group(1)) if m else None


def promtool_check(text):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/deps installs the prometheus package"
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_metrics_move_and_validate(daemon, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(PY)
    before = scrape(daemon)
    promtool_check(before)
    for name in ("fnd_invocations_total", "fnd_invocation_duration_seconds",
                 "fnd_cold_starts_total", "fnd_cold_start_duration_seconds", "fnd_throttles_total",
                 "fnd_queue_depth", "fnd_workers", "fnd_retries_total", "fnd_dead_letters_total",
                 "fnd_eventlog_appends_total", "fnd_eventlog_bytes_total",
                 "fnd_eventlog_fsync_duration_seconds", "fnd_http_requests_total",
                 "fnd_http_connections", "fnd_process_resident_memory_bytes",
                 "fnd_process_open_fds", "fnd_uptime_seconds"):
        assert f"# TYPE {name} " in before, name
    assert value(before, "fnd_process_resident_memory_bytes") > 1e6
    assert value(before, "fnd_process_open_fds") > 3
    assert value(before, "fnd_functions") == 0

    assert daemon.deploy("m", "python3", "app.handler", str(code), max_instances=1,
                         max_queue=1).status == 201
    for _ in range(3):
        assert daemon.invoke("m", {}).status == 200
    assert daemon.invoke("m", {"fail": True}).status == 500
    text = scrape(daemon)
    promtool_check(text)
    assert value(text, "fnd_invocations_total", function="m", outcome="success") == 3
    assert value(text, "fnd_invocations_total", function="m", outcome="error") == 1
    assert value(text, "fnd_invocation_duration_seconds_count", function="m") == 4
    assert value(text, "fnd_invocation_duration_seconds_bucket", function="m", le="+Inf") == 4
    assert value(text, "fnd_cold_starts_total", runtime="python3") == 1
    assert value(text, "fnd_cold_start_duration_seconds_count", runtime="python3") == 1
    assert value(text, "fnd_cold_start_duration_seconds_sum", runtime="python3") > 0
    assert value(text, "fnd_workers", function="m", state="idle") == 1
    assert value(text, "fnd_queue_depth", function="m") == 0
    assert value(text, "fnd_functions") == 1
    assert value(text, "fnd_http_requests_total", route="/v1/functions/{name}/invoke",
                 status="200") == 3
    assert value(text, "fnd_http_requests_total", route="/v1/functions/{name}/invoke",
                 status="500") == 1
    assert value(text, "fnd_http_requests_total", route="/v1/functions/{name}", status="201") == 1
    # no invocation id ever becomes a label
    assert not re.search(r'"[0-9a-f]{8}-[0-9a-f]{4}-', text)

    # throttles: one runs, one waits in the queue (max_queue 1), the third is refused
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        daemon.invoke("m", {"sleep": 1.5}).status)) for _ in range(2)]
    for t in threads:
        t.start()
    import time
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        busy = value(scrape(daemon), "fnd_queue_depth", function="m")
        if busy == 1:
            break
        time.sleep(0.02)
    assert busy == 1
    assert daemon.invoke("m", {}).status == 429
    for t in threads:
        t.join(30)
    assert sorted(results) == [200, 200]
    text = scrape(daemon)
    assert value(text, "fnd_throttles_total", function="m") == 1
    assert value(text, "fnd_http_requests_total", route="/v1/functions/{name}/invoke",
                 status="429") == 1

    # a deleted function's series are gone
    assert daemon.request("DELETE", "/v1/functions/m").status == 204
    text = scrape(daemon)
    assert 'function="m"' not in text
    promtool_check(text)


def test_metrics_need_the_token(daemon):
    assert daemon.get("/metrics", auth=False).status == 401


FAILING = "def handler(event, context):\n    raise RuntimeError('always')\n"


def test_event_log_retries_and_dead_letters(daemon, tmp_path):
    import time
    code = tmp_path / "f"
    code.mkdir()
    (code / "app.py").write_text(FAILING)
    assert daemon.deploy("bad", "python3", "app.handler", str(code),
                         retry={"max_attempts": 2, "base_delay_ms": 50,
                                "max_delay_ms": 100}).status == 201
    before = scrape(daemon)
    appends0 = value(before, "fnd_eventlog_appends_total")
    r = daemon.invoke("bad", {}, headers={"Prefer": "respond-async"})
    assert r.status == 202
    inv = r.json()["invocation_id"]
    deadline = time.monotonic() + 30
    while daemon.get(f"/v1/invocations/{inv}").json()["status"] != "dead_letter":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    text = scrape(daemon)
    promtool_check(text)
    assert value(text, "fnd_retries_total", function="bad") == 1
    assert value(text, "fnd_dead_letters_total", function="bad") == 1
    assert value(text, "fnd_invocations_total", function="bad", outcome="error") == 2
    assert value(text, "fnd_eventlog_appends_total") >= appends0 + 3  # accept, starts, ends
    assert value(text, "fnd_eventlog_bytes_total") > 0
    assert value(text, "fnd_eventlog_fsync_duration_seconds_count") > 0
    backends = re.findall(r'^fnd_eventlog_backend\{backend="(\w+)"\} 1$', text, re.M)
    assert len(backends) == 1 and backends[0] in ("uring", "threadpool"), backends
