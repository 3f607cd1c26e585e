"""Graceful shutdown: on SIGTERM the listener closes, running invocations finish (up to
--shutdown-grace), then workers stop; a second signal exits at once. Also
--print-config and the config file."""
import os
import signal
import socket
import subprocess
import threading
import time

from fndtest import FND_BIN

PY = """import time
def handler(event, context):
    print("sleeping", event.get("sleep", 0), flush=True)
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0)}
"""


def slow_fn(d, tmp_path):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(PY)
    assert d.deploy("slow", "python3", "app.handler", str(code), timeout_ms=20000).status == 201
    assert d.invoke("slow", {}).status == 200  # warm


def start_invocation(d, seconds):
    out = {}
    t = threading.Thread(target=lambda: out.update(r=d.invoke("slow", {"sleep": seconds},
                                                               timeout=60)))
    t.start()
    deadline = time.monotonic() + 10
    while f'text="sleeping {seconds}"' not in d.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f'text="sleeping {seconds}"' in d.log()  # it is running on the worker now
    return t, out


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def test_sigterm_lets_running_invocations_finish(start_daemon, tmp_path):
    d = start_daemon()
    slow_fn(d, tmp_path)
    t, out = start_invocation(d, 2)
    t0 = time.monotonic()
    os.kill(d.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while not refused(d.port) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert refused(d.port), "the listener stays open during the grace period"
    t.join(30)
    assert out["r"].status == 200 and out["r"].json() == {"slept": 2}
    assert d.proc.wait(timeout=30) == 0
    assert time.monotonic() - t0 >= 1.0
    log = d.log()
    assert "msg=stopping signal=SIGTERM pending=1" in log and "msg=stopped" in log


def test_grace_period_ends_and_second_signal_exits(start_daemon, tmp_path):
    d = start_daemon("--shutdown-grace", "300")
    slow_fn(d, tmp_path)
    t, out = start_invocation(d, 10)
    t0 = time.monotonic()
    os.kill(d.pid, signal.SIGTERM)
    t.join(30)
    assert out["r"].status == 503  # cancelled when the grace period ran out
    assert d.proc.wait(timeout=30) == 0
    assert time.monotonic() - t0 < 8
    assert "grace period over, cancelling" in d.log()

    d2 = start_daemon(data=str(tmp_path / "second"))
    slow_fn(d2, tmp_path)
    t, out = start_invocation(d2, 10)
    os.kill(d2.pid, signal.SIGTERM)
    time.sleep(0.3)
    os.kill(d2.pid, signal.SIGINT)
    assert d2.proc.wait(timeout=10) == 1
    t.join(30)
    assert "second signal, exiting now" in d2.log()


def test_print_config_and_config_file(tmp_path):
    conf = tmp_path / "fnd.conf"
    conf.write_text("# a comment\nmax-workers = 12\n  log-format=json\nshutdown-grace = 2500\n")
    out = subprocess.run([FND_BIN, "serve", "--config", str(conf), "--max-workers", "13",
                          "--print-config"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" = ", 1) for line in out.stdout.splitlines())
    assert lines["max-workers"] == "13"  # the command line wins over the file
    assert lines["log-format"] == "json" and lines["shutdown-grace"] == "2500"
    assert lines["auth-token"] == "(unset)" and lines["listen"] == "127.0.0.1:8080"
    # what --print-config prints is itself a valid config file
    again = tmp_path / "again.conf"
    again.write_text("\n".join(l for l in out.stdout.splitlines()
                               if not l.startswith(("auth-token", "config ="))) + "\n")
    out2 = subprocess.run([FND_BIN, "serve", "--config", str(again), "--print-config"],
                          capture_output=True, text=True, timeout=10)
    assert out2.returncode == 0, out2.stderr
    assert out2.stdout.replace(f"config = {again}", "config = ") == \
        out.stdout.replace(f"config = {conf}", "config = ")
    conf.write_text("max-workers = lots\n")
    bad = subprocess.run([FND_BIN, "serve", "--config", str(conf)], capture_output=True,
                         text=True, timeout=10)
    assert bad.returncode == 2 and "fnd.conf:1: --max-workers: must be a number" in bad.stderr
    conf.write_text("no-such-thing = 1\n")
    bad = subprocess.run([FND_BIN, "serve", "--config", str(conf)], capture_output=True,
                         text=True, timeout=10)
    assert bad.returncode == 2 and "unknown setting 'no-such-thing'" in bad.stderr


def test_sigterm_under_load_answers_in_flight_and_keeps_every_accepted(start_daemon):
    """SIGTERM while sync clients and async submissions are running: every request the
    daemon answers gets 200, 202 or 503 (a clean refusal while draining), the daemon
    exits 0 within its grace period, and after a restart on the same data folder every
    invocation that got 202 runs to success."""
    import http.client
    import json
    from fndtest import BUILD_DIR
    d = start_daemon("--shutdown-grace", "10000")
    native = os.path.join(BUILD_DIR, "tests", "functions", "native")
    assert d.deploy("echo", "native", "probe.echo", native, max_instances=2).status == 201
    assert d.invoke("echo", {"warm": 1}).status == 200
    stop = threading.Event()
    statuses, accepted, lock = [], [], threading.Lock()

    def client(prefer_async):
        headers = {"Content-Type": "application/json"}
        if prefer_async:
            headers["Prefer"] = "respond-async"
        while not stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
                for _ in range(200):
                    c.request("POST", "/v1/functions/echo/invoke", body=b'{"n": 1}',
                              headers=headers)
                    r = c.getresponse()
                    body = r.read()
                    with lock:
                        statuses.append(r.status)
                        if r.status == 202:
                            accepted.append(json.loads(body)["invocation_id"])
                    if r.getheader("Connection", "").lower() == "close" or stop.is_set():
                        break
                c.close()
            except OSError:
                time.sleep(0.01)  # refused or closed: the listener is gone
            except http.client.HTTPException:
                time.sleep(0.01)  # a keep-alive connection closed between requests

    threads = [threading.Thread(target=client, args=(i % 2 == 1,)) for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(accepted) >= 200 and statuses.count(200) >= 200:
                break
        time.sleep(0.05)
    os.kill(d.pid, signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    stop.set()
    for t in threads:
        t.join(30)
    d.stop()
    assert statuses.count(200) >= 200 and len(accepted) >= 200, (len(statuses), len(accepted))
    assert set(statuses) <= {200, 202, 503}, sorted(set(statuses))
    d.start()
    for inv_id in accepted:
        deadline = time.monotonic() + 60
        while True:
            r = d.get(f"/v1/invocations/{inv_id}")
            assert r.status == 200, (inv_id, r)
            if r.json()["status"] == "succeeded":
                break
            assert time.monotonic() < deadline, (inv_id, r.json())
            time.sleep(0.05)
