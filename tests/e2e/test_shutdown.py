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
