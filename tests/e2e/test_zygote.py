"""The Python fork server: python3 workers are forked from a pre-started interpreter
and walk the same sandbox checklist as exec'd ones. Each test compares against a
daemon started with --zygote off, the exec path, as its positive control."""
import concurrent.futures
import os
import signal
import time

import pytest

from fndtest import BUILD_DIR, FUNCTIONS, alive, host_pid, worker_pids, zygote_pid

PY = os.path.join(FUNCTIONS, "py")
HOSTILE = os.path.join(FUNCTIONS, "hostile")


def runtime_cmdline(daemon, name):
    """The command line of the function's runtime process (pid 2 of its namespace)."""
    worker = worker_pids(daemon, name)[0]
    pid = host_pid(worker, 2) or worker  # without a pid namespace, the worker itself
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


@pytest.fixture
def both(start_daemon):
    """A daemon with the zygote and one without it."""
    with_zygote, without = start_daemon(), start_daemon("--zygote", "off")
    assert 'msg="zygote started" runtime=python3' in with_zygote.log()
    assert zygote_pid(with_zygote) and zygote_pid(without) is None
    return with_zygote, without


def test_python_workers_are_forked_from_the_zygote(both):
    for d, forked in zip(both, (True, False)):
        assert d.deploy("st", "python3", "app.state", PY).status == 201
        first, second = d.invoke("st").json(), d.invoke("st").json()
        assert first["worker"] == second["worker"] and second["calls"] == 2  # warm reuse
        # a forked worker keeps the zygote's command line; an exec'd one has its own
        assert (b"--zygote" in runtime_cmdline(d, "st")) == forked


def test_a_forked_worker_is_contained_like_an_exec_one(both):
    seen = []
    for d in both:
        for name, handler in (("who", "attack.whoami"), ("ps", "attack.processes"),
                              ("env", "attack.environment")):
            assert d.deploy(name, "python3", handler, HOSTILE).status == 201
        who = d.invoke("who").json()
        del who["Uid"], who["Gid"]  # one per worker
        ps = d.invoke("ps", {"pid": d.pid}).json()
        env = d.invoke("env").json()
        env.pop("AWS_LAMBDA_LOG_STREAM_NAME")  # names the worker
        env.pop("_X_AMZN_TRACE_ID", None)  # one per invocation
        seen.append((who, ps, env))
    forked, execd = seen
    assert forked == execd
    who, ps, env = forked
    assert who["CapEff"] == "0000000000000000" and who["Seccomp"] == "2"
    # SIGPIPE and SIGXFSZ ignored, SIGINT caught (KeyboardInterrupt), as at start-up
    assert int(who["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1))
    assert int(who["SigCgt"], 16) & 1 << (signal.SIGINT - 1) and who["SigBlk"] == "0" * 8
    assert ps["pids"] == [1, 2] and ps["signal"] == "ESRCH"
    assert "PYTHONDONTWRITEBYTECODE" in env and env["HOME"] == "/tmp"


def test_handler_errors_and_init_errors_through_the_zygote(both):
    d = both[0]
    assert d.deploy("boom", "python3", "app.boom", PY).status == 201
    r = d.invoke("boom", {"why": "z"})
    assert r.status == 500 and r.json()["errorMessage"] == "bad value: z"
    broken = os.path.join(FUNCTIONS, "broken")
    assert d.deploy("syn", "python3", "syntax.handler", broken).status == 201
    assert d.invoke("syn").json()["errorType"] == "Runtime.UserCodeSyntaxError"
    assert d.deploy("crash", "python3", "app.crash", PY).status == 201
    r = d.invoke("crash")
    assert r.status == 502 and "exit status 3" in r.json()["errorMessage"], r


def test_a_dead_zygote_falls_back_to_exec(both):
    d = both[0]
    pid = zygote_pid(d)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert d.deploy("st", "python3", "app.state", PY).status == 201
    assert d.invoke("st").json()["calls"] == 1  # served all the same
    assert 'msg="zygote failed"' in d.log()
    assert b"--zygote" not in runtime_cmdline(d, "st")
    assert d.invoke("st").json()["calls"] == 2


def test_the_zygote_stops_with_the_daemon(both):
    d = both[0]
    pid = zygote_pid(d)
    d.stop()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid)


def test_a_stalled_zygote_does_not_stall_the_daemon(start_daemon):
    """Workers start on the threadpool: a worker start waiting on a fork server that
    stopped answering (SIGSTOP) holds back that worker only, while the daemon serves
    everything else; the start completes when the zygote resumes."""
    d = start_daemon()
    native = os.path.join(BUILD_DIR, "tests", "functions", "native")
    assert d.deploy("st", "python3", "app.state", PY).status == 201
    assert d.deploy("nat", "native", "probe.echo", native).status == 201
    pid = zygote_pid(d)
    os.kill(pid, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(d.invoke, "st")
            time.sleep(0.3)  # its worker's start is now stuck on the zygote
            t0 = time.monotonic()
            assert d.request("GET", "/healthz", timeout=5).status == 200
            r = d.request("POST", "/v1/functions/nat/invoke", b"ping", timeout=5)
            assert r.status == 200 and r.body == b"ping"
            assert time.monotonic() - t0 < 3
            assert not waiting.done()
            os.kill(pid, signal.SIGCONT)
            r = waiting.result(timeout=30)
            assert r.status == 200 and r.json()["calls"] == 1, r
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGCONT)
    assert b"--zygote" in runtime_cmdline(d, "st")  # it was the zygote that started it
