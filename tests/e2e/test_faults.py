"""Fault injection: workers killed, stopped or misbehaving under load, runtimes that
die while loading, and a daemon short of descriptors or disk, or started on a
read-only data folder. Each fault must end in a clean error for the invocations it
touches and leave the daemon serving everything else."""
import concurrent.futures
import http.client
import os
import random
import re
import base64
import signal
import socket
import subprocess
import threading
import time

import pytest

from fndtest import (BUILD_DIR, FND_BIN, FUNCTIONS, LAMBDA_ROLE, Daemon, alive, cpu_seconds,
                     fd_count, wait_for, worker_pids, zip_bytes)

NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")


def deploy(d, name, handler, code=NATIVE, runtime="native", **config):
    r = d.deploy(name, runtime, handler, code, **config)
    assert r.status in (200, 201), r
    return r


def state(d, name):
    return d.get(f"/v1/functions/{name}").json()["state"]


def test_random_sigkill_of_workers_under_load(daemon):
    deploy(daemon, "victim", "probe.nap", max_instances=4)
    statuses, errors, killed = [], [], set()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            r = daemon.invoke("victim", raw="30")
            statuses.append(r.status)
            if r.status == 502:
                # killed while running it, or (rarely) killed while idle just before
                # it was dispatched there, more often in a row than an undelivered
                # event is redispatched
                msg = r.json()["errorMessage"]
                if "signal: killed" not in msg and "could not send the event" not in msg:
                    errors.append(r)
            elif r.status != 200:
                errors.append(r)

    def killer():
        rng = random.Random(9)
        while not stop.is_set():
            time.sleep(0.1)
            live = [p for p in worker_pids(daemon, "victim") if alive(p)]
            if live:  # host pids: each ends its worker's whole pid namespace
                victim = rng.choice(live)
                killed.add(victim)
                os.kill(victim, signal.SIGKILL)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client) for _ in range(5)] + [pool.submit(killer)]
        time.sleep(4)
        stop.set()
        for f in futures:
            f.result(timeout=60)
    assert not errors, errors[:3]
    assert statuses.count(502) >= 3, "the killer hit nothing"
    assert statuses.count(200) > statuses.count(502)
    # every killed worker was replaced and accounted: nothing stays busy or starting
    st = wait_for(lambda: (lambda s: s if s["instances"]["busy"] == 0
                           and s["instances"]["starting"] == 0 else None)(state(daemon, "victim")))
    assert st, state(daemon, "victim")
    # and the daemon has seen every kill: no worker it lists is one that was killed (a
    # dying pid namespace's init still looks alive for a moment after the signal)
    assert wait_for(lambda: not killed & set(worker_pids(daemon, "victim")), timeout=10)
    assert daemon.invoke("victim", raw="1").status == 200


def test_invocation_for_a_worker_killed_while_idle_goes_to_another(daemon):
    """Idle workers die while their deaths are still unseen: the daemon is stopped
    (SIGSTOP), invocations arrive on open connections, then the workers are killed and
    reaped to zombies, and only then does the daemon run on. The requests come first in
    its loop, before the exits: they must get new workers (200), not a 502."""
    deploy(daemon, "idlekill", "probe.nap", max_instances=3)
    host, port = daemon.url.split("//")[1].split(":")
    for _ in range(4):
        with concurrent.futures.ThreadPoolExecutor(3) as pool:  # three warm idle workers
            assert all(r.status == 200 for r in pool.map(
                lambda _: daemon.invoke("idlekill", raw="150"), range(3)))
        assert wait_for(lambda: state(daemon, "idlekill")["instances"]["idle"] == 3)
        pids = worker_pids(daemon, "idlekill")
        conns = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(3)]
        for c in conns:
            c.connect()
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            for c in conns:
                c.request("POST", "/v1/functions/idlekill/invoke", body=b"1")
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            assert wait_for(lambda: not any(alive(p) for p in pids), timeout=10)
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        answers = [c.getresponse() for c in conns]
        bodies = [(a.status, a.read()) for a in answers]
        for c in conns:
            c.close()
        assert all(st == 200 for st, _ in bodies), bodies
        assert wait_for(lambda: not set(pids) & set(worker_pids(daemon, "idlekill")), timeout=10)


def test_worker_that_stops_itself_times_out_and_the_next_call_works(daemon):
    deploy(daemon, "stopper", "faults.stop", timeout_ms=1000)
    assert daemon.invoke("stopper", raw="go").status == 200  # warm: learn its host pid
    stopped = worker_pids(daemon, "stopper")[0]
    t0 = time.monotonic()
    r = daemon.invoke("stopper", raw="stop")
    took = time.monotonic() - t0
    assert r.status == 504 and r.json()["errorType"] == "TimeoutError", r
    assert took < 5, took
    assert wait_for(lambda: re.search(r"stopping pid=(\d+)", daemon.log()), timeout=3), \
        "the function did not report that it stopped"
    assert wait_for(lambda: not alive(stopped)), "the stopped worker survived its timeout"
    r = daemon.invoke("stopper", raw="go")
    assert r.status == 200 and worker_pids(daemon, "stopper") != [stopped]


@pytest.mark.parametrize("handler,status,error_type,timeout_ms", [
    ("faults.flood", 502, "Runtime.ProtocolError", 3000),
    ("faults.partial", 504, "TimeoutError", 1000),
    ("faults.chatter", 504, "TimeoutError", 1000),
])
def test_worker_misusing_its_channel_or_output(daemon, handler, status, error_type, timeout_ms):
    name = handler.split(".")[1]
    deploy(daemon, name, handler, timeout_ms=timeout_ms)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(daemon.invoke, name, None, "x")
        # the daemon keeps answering while the worker misbehaves
        for _ in range(5):
            t0 = time.monotonic()
            assert daemon.get("/healthz").status == 200
            assert time.monotonic() - t0 < 1.0
        r = call.result(timeout=30)
    assert r.status == status and r.json()["errorType"] == error_type, r
    assert daemon.get("/healthz").status == 200


def test_worker_answering_twice_is_replaced(daemon):
    deploy(daemon, "twice", "faults.twice")
    r = daemon.invoke("twice", raw="x")
    assert r.status == 200 and r.body == b"first"
    # the second, unasked-for frame ended that worker: the next call needs a new one
    wait_for(lambda: state(daemon, "twice")["instances"]["idle"] == 0)
    assert daemon.invoke("twice", raw="x").body == b"first"
    assert state(daemon, "twice")["worker_starts"] >= 2


def start_failures(d, name):
    return len(re.findall(rf"msg=\"worker (?:start|init) failed\" fn={name} ", d.log()))


def test_runtime_exiting_during_init_is_not_retried_in_a_loop(daemon):
    code = os.path.join(FUNCTIONS, "initexit")
    deploy(daemon, "dies", "app.handler", code, runtime="python3", min_warm=1)
    r = daemon.invoke("dies", {})
    assert r.status == 502, r
    assert r.json()["errorType"] == "Runtime.ExitError", r
    assert "exit status 7" in r.json()["errorMessage"]
    first = start_failures(daemon, "dies")
    time.sleep(3)
    # min_warm wants a worker, but a failed start waits for a deploy or an invocation
    assert start_failures(daemon, "dies") - first <= 1, daemon.log()[-3000:]
    assert state(daemon, "dies")["cold_starts"] == 0
    assert daemon.get("/healthz").status == 200


def test_out_of_descriptors_accept_backs_off_and_recovers(tmp_path):
    d = Daemon(str(tmp_path / "data"), prefix=["prlimit", "--nofile=64"])
    socks = []
    try:
        # far more connections than descriptors: the daemon reaches EMFILE
        for _ in range(120):
            try:
                socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=2))
            except OSError:
                break
        # the daemon is at its limit, and what it cannot take it accepts and closes
        # (libuv's spare descriptor) instead of leaving it to retry accept forever
        assert wait_for(lambda: fd_count(d.pid) >= 60, timeout=5), fd_count(d.pid)
        assert wait_for(lambda: sum(map(closed_by_peer, socks)) > 0, timeout=5)
        # and says so (a warning: logged at once, not batched), with a count
        assert wait_for(lambda: refused_lines(d), timeout=10), d.log()[-2000:]
        before = cpu_seconds(d.pid)
        start = time.monotonic()
        for _ in range(3):  # keep it out of descriptors for a while: more refusals
            for _ in range(20):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=2))
                except OSError:
                    break
            time.sleep(0.7)
        elapsed = time.monotonic() - start
        spent = cpu_seconds(d.pid) - before
        assert spent < 0.5 * elapsed, f"the daemon spun at EMFILE: {spent:.2f} s of CPU in {elapsed:.1f} s"
        lines = refused_lines(d)
        assert sum(n for _, n in lines) > 0, lines
        # at most one line a second (the first came before this period began)
        assert len(lines) <= 2 + elapsed, lines
        # every connection the daemon closed is counted, the last ones too, within a
        # second after the last refusal (well within the 10 s header timeout)
        closed = sum(map(closed_by_peer, socks))
        assert wait_for(lambda: sum(n for _, n in refused_lines(d)) == closed, timeout=5), \
            (closed, refused_lines(d))
        for s in socks:
            s.close()
        socks.clear()
        assert wait_for(lambda: _healthy(d), timeout=10), d.log()[-2000:]
    finally:
        for s in socks:
            s.close()
        d.stop()


def refused_lines(d):
    """The daemon's warnings about accepts refused for lack of descriptors: (line, count)."""
    return [(m.group(0), int(m.group(1))) for m in
            re.finditer(r"level=warn msg=\"accept failed: out of descriptors\".*refused=(\d+)",
                        d.log())]


def closed_by_peer(s):
    s.settimeout(0.01)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def _healthy(d):
    try:
        return d.get("/healthz", timeout=2).status == 200
    except OSError:
        return False


def root_only():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")


def mount_tmpfs(path, options):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)


def umount(path):
    subprocess.run(["umount", "-l", path], check=False)


def test_read_only_data_folder_is_a_clear_start_up_error(tmp_path):
    root_only()
    data = str(tmp_path / "ro")
    mount_tmpfs(data, "size=1m,ro")
    try:
        p = subprocess.run([FND_BIN, "serve", "--listen", "127.0.0.1:0", "--data", data],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert p.returncode != 0
        err = p.stderr.decode()
        assert "read-only file system" in err.lower(), err
        assert "level=error" in err
    finally:
        umount(data)


def test_full_disk_refuses_deploys_cleanly_and_recovers(tmp_path):
    root_only()
    data = str(tmp_path / "small")
    mount_tmpfs(data, "size=4m")
    d = None
    try:
        d = Daemon(data)
        small = zip_bytes({"app.py": "def handler(e, c):\n    return {'v': 1}\n"})
        deploy(d, "keep", "app.handler", small, runtime="python3")
        assert d.invoke("keep", {}).json() == {"v": 1}
        filler = os.path.join(data, "filler")
        with open(filler, "wb") as f:  # take every block that is left
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        big = zip_bytes({"app.py": "def handler(e, c):\n    return {'v': 2}\n",
                         "blob.bin": os.urandom(256 * 1024)})
        for name in ("keep", "fresh"):
            r = d.deploy(name, "python3", "app.handler", big)
            assert r.status == 507, r
            assert r.json()["error"]["code"] == "insufficient_storage", r
            assert "no space left on device" in r.json()["error"]["message"].lower(), r
        # the Lambda API's error shape, with the same status
        r = d.request("POST", "/2015-03-31/functions", {
            "FunctionName": "fresh", "Runtime": "python3.12", "Handler": "app.handler",
            "Role": LAMBDA_ROLE, "Code": {"ZipFile": base64.b64encode(big).decode()}})
        assert r.status == 507, r
        assert r.headers["x-amzn-errortype"] == "ServiceException", r
        assert r.json()["Type"] == "Service", r
        assert "no space left on device" in r.json()["message"].lower(), r
        # nothing half-written became current, and the old version still serves
        assert d.get("/v1/functions/fresh").status == 404
        assert d.get("/v1/functions/keep").json()["version"] == 1
        assert d.invoke("keep", {}).json() == {"v": 1}
        d.restart()
        assert [f["name"] for f in d.get("/v1/functions").json()["functions"]] == ["keep"]
        os.unlink(filler)  # space returns
        r = d.deploy("keep", "python3", "app.handler", big)
        assert r.status == 200, r
        assert d.invoke("keep", {}).json() == {"v": 2}
    finally:
        if d:
            d.stop()
        umount(data)


def test_a_runtime_that_cannot_be_started_fails_the_invocation_at_once(start_daemon):
    """A worker whose process cannot be created (here: no interpreter at the configured
    path, so the exec step fails) fails the invocation waiting for it with the step's
    error, instead of leaving it queued; the daemon keeps serving."""
    d = start_daemon("--python", "/nonexistent/python3")
    deploy(d, "nopy", "app.handler", os.path.join(FUNCTIONS, "py"), runtime="python3")
    t0 = time.monotonic()
    r = d.invoke("nopy", {})
    assert time.monotonic() - t0 < 5
    assert r.status == 502 and r.json()["errorType"] == "Runtime.StartError", r
    assert "No such file or directory" in r.json()["errorMessage"], r
    assert d.get("/healthz").status == 200
    assert state(d, "nopy")["cold_starts"] == 0
