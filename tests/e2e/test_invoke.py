"""Invoking functions of every runtime: results, warm reuse, errors, timeouts,
crashes, init failures, concurrency and output capture."""
import concurrent.futures
import http.client
import os
import re
import time

from fndtest import (BUILD_DIR, FUNCTIONS, WRAPPER, alive, proc_status, wait_for,
                     worker_pids, worker_processes)

PY = os.path.join(FUNCTIONS, "py")
NODE = os.path.join(FUNCTIONS, "node")
NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def deploy(d, name, runtime, handler, code, **config):
    r = d.deploy(name, runtime, handler, code, **config)
    assert r.status == 201, r


def test_examples_all_runtimes(daemon):
    ex = os.path.join(BUILD_DIR, "examples")
    deploy(daemon, "hp", "python3", "handler.handler", os.path.join(ex, "hello-python"))
    deploy(daemon, "hn", "nodejs", "index.handler", os.path.join(ex, "hello-node"))
    deploy(daemon, "hc", "native", "hello.handler", os.path.join(ex, "hello-c"))
    r = daemon.invoke("hp", {"name": "py"})
    assert r.status == 200 and r.json()["message"] == "Hello, py!"
    assert UUID.match(r.headers["x-request-id"]) and r.json()["request_id"] == r.headers["x-request-id"]
    r = daemon.invoke("hn", {"name": "node"})
    assert r.status == 200 and r.json()["message"] == "Hello, node!"
    assert r.json()["requestId"] == r.headers["x-request-id"]
    r = daemon.invoke("hc", raw="c")
    assert r.status == 200 and r.json() == {"message": "Hello, c!", "function": "hc"}


def test_python_context_and_env(daemon):
    deploy(daemon, "ctx", "python3", "app.echo", PY, env={"GREETING": "hi"}, memory_mb=256)
    r = daemon.invoke("ctx", {"k": [1, 2]})
    body = r.json()
    assert body["event"] == {"k": [1, 2]}
    assert body["function_name"] == "ctx" and body["memory"] == 256
    assert body["arn"].endswith(":function:ctx")
    assert 0 < body["remaining"] <= 3000
    assert body["env"] == {"GREETING": "hi", "HOME": "/tmp", "AWS_REGION": "us-east-1"}
    assert daemon.invoke("ctx", raw="").json()["event"] == {}
    r = daemon.invoke("ctx", raw="{broken")
    assert r.status == 400


def test_warm_reuse_keeps_module_state(daemon):
    deploy(daemon, "st", "python3", "app.state", PY)
    a, b, c = (daemon.invoke("st").json() for _ in range(3))
    py_worker = a["worker"]
    assert a["worker"] == b["worker"] == c["worker"]
    assert [a["calls"], b["calls"], c["calls"]] == [1, 2, 3]
    deploy(daemon, "nst", "nodejs", "index.state", NODE)
    a, b = daemon.invoke("nst").json(), daemon.invoke("nst").json()
    assert a["worker"] == b["worker"] and b["calls"] == a["calls"] + 1
    state = daemon.get("/v1/functions/st").json()["state"]
    assert state["cold_starts"] == 1 and state["invocations"] == 3
    # the first scale-up also started a spare, which the warm worker leaves alone
    assert wait_for(lambda: daemon.get("/v1/functions/st").json()["state"]["instances"]["idle"] == 2)
    assert daemon.invoke("st").json() == {"worker": py_worker, "calls": 4}


def test_handler_exceptions(daemon):
    deploy(daemon, "pyboom", "python3", "app.boom", PY)
    r = daemon.invoke("pyboom", {"why": "test"})
    assert r.status == 500 and r.headers["fn-error"] == "Unhandled"
    body = r.json()
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad value: test"
    assert any("boom" in line for line in body["stackTrace"])
    deploy(daemon, "nboom", "nodejs", "index.boom", NODE)
    r = daemon.invoke("nboom")
    assert r.status == 500 and r.json()["errorType"] == "TypeError"
    assert r.json()["errorMessage"] == "node went boom"
    deploy(daemon, "cfail", "native", "probe.fail", NATIVE)
    r = daemon.invoke("cfail", raw="xyz")
    assert r.status == 500 and r.json() == {"errorType": "ProbeError",
                                             "errorMessage": "failed on xyz", "stackTrace": []}
    # the worker survives a handled error
    assert daemon.invoke("pyboom").status == 500
    assert daemon.get("/v1/functions/pyboom").json()["state"]["cold_starts"] == 1


def test_node_styles(daemon):
    deploy(daemon, "ncb", "nodejs", "index.callback", NODE)
    assert daemon.invoke("ncb", {"a": 1}).json() == {"style": "callback", "event": {"a": 1}}
    deploy(daemon, "nesm", "nodejs", "esm.handler", NODE)
    assert daemon.invoke("nesm", {"b": 2}).json() == {"module": "esm", "event": {"b": 2}}


def test_timeout_kills_the_group_and_recovers(daemon, tmp_path):
    deploy(daemon, "slow", "python3", "app.orphan", PY, timeout_ms=1000)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        pending = pool.submit(daemon.invoke, "slow", {})
        started = {}  # every process of the worker, once its grandchild runs
        while not pending.done() and "sleep" not in started.values():
            pids = worker_pids(daemon, "slow")
            started = worker_processes(pids[0]) if pids else {}
            time.sleep(0.02)
        r = pending.result()
        took = time.monotonic() - t0
    assert "sleep" in started.values(), "the grandchild was never seen running"
    assert r.status == 504, r
    assert r.headers["fn-error"] == "Unhandled"
    assert r.json()["errorType"] == "TimeoutError"
    assert r.json()["errorMessage"] == "Task timed out after 1.00 seconds"
    assert 0.9 < took < 2.5
    assert re.search(r"text=\"?grandchild=(\d+)", daemon.log()), "no grandchild reported"
    deadline = time.monotonic() + 5
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = {p: c for p, c in started.items() if alive(p)}
    assert not survivors, f"processes the function started survived the timeout: {survivors}"
    deploy(daemon, "quick", "python3", "app.sleep", PY, timeout_ms=1000)
    assert daemon.invoke("quick", {"ms": 10}).status == 200
    r = daemon.request("PUT", "/v1/functions/slow",
                       {"runtime": "python3", "handler": "app.sleep", "timeout_ms": 1000})
    assert r.status == 200
    assert daemon.invoke("slow", {"ms": 10}).status == 200  # fresh worker after the kill


def test_crash_then_recover(daemon):
    deploy(daemon, "pycrash", "python3", "app.crash", PY)
    r = daemon.invoke("pycrash")
    assert r.status == 502 and r.headers["fn-error"] == "Unhandled"
    assert r.json()["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in r.json()["errorMessage"]
    deploy(daemon, "ccrash", "native", "probe.crash", NATIVE)
    r = daemon.invoke("ccrash")
    assert r.status == 502 and "signal: aborted" in r.json()["errorMessage"], r
    # recovery: the same function keeps serving on a fresh worker
    deploy(daemon, "cnap", "native", "probe.nap", NATIVE)
    first = daemon.invoke("cnap", raw="1").body
    assert daemon.invoke("ccrash").status == 502
    assert daemon.invoke("cnap", raw="1").body == first  # an unrelated warm worker is untouched
    r = daemon.request("PUT", "/v1/functions/pycrash",
                       {"runtime": "python3", "handler": "app.state"})
    assert daemon.invoke("pycrash").status == 200


def test_init_errors(daemon):
    broken = os.path.join(FUNCTIONS, "broken")
    deploy(daemon, "imp", "python3", "app.handler", broken)
    r = daemon.invoke("imp")
    assert r.status == 502 and r.json()["errorType"] == "Runtime.ImportModuleError", r
    assert "no_such_module_anywhere" in r.json()["errorMessage"]
    deploy(daemon, "syn", "python3", "syntax.handler", broken)
    assert daemon.invoke("syn").json()["errorType"] == "Runtime.UserCodeSyntaxError"
    deploy(daemon, "nohandler", "python3", "app.nope", PY)
    assert daemon.invoke("nohandler").json()["errorType"] == "Runtime.HandlerNotFound"
    deploy(daemon, "nosym", "native", "probe.nope", NATIVE)
    assert daemon.invoke("nosym").json()["errorType"] == "Runtime.HandlerNotFound"
    deploy(daemon, "nomod", "nodejs", "missing.handler", NODE)
    assert daemon.invoke("nomod").json()["errorType"] == "Runtime.ImportModuleError"
    assert daemon.get("/healthz").status == 200


def test_concurrency_bounded_by_max_instances(daemon):
    deploy(daemon, "par", "native", "probe.nap", NATIVE, max_instances=2)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        t0 = time.monotonic()
        results = list(pool.map(lambda _: daemon.invoke("par", raw="300"), range(4)))
        took = time.monotonic() - t0
    assert all(r.status == 200 for r in results)
    workers = {r.body for r in results}
    assert len(workers) == 2  # two workers, each reused
    assert 0.55 < took < 2.0  # two rounds of 300 ms, not one and not four


def test_output_is_attributed(daemon):
    deploy(daemon, "talk", "python3", "app.talk", PY)
    r = daemon.invoke("talk", {"tag": "t-123"})
    rid = r.headers["x-request-id"]
    # both lines: the two pipes are read in separate callbacks, and info lines are
    # written once per loop iteration
    wait_for(lambda: sum("t-123" in l for l in daemon.log().splitlines()) >= 2, timeout=10)
    lines = [l for l in daemon.log().splitlines() if "t-123" in l]
    assert any("stream=stdout" in l and f"request_id={rid}" in l and "fn=talk" in l for l in lines)
    assert any("stream=stderr" in l and f"request_id={rid}" in l for l in lines)


def test_threads_and_subprocesses_work(daemon):
    deploy(daemon, "thr", "python3", "app.threads", PY)
    assert daemon.invoke("thr").json() == {"squares": [0, 1, 4, 9], "subprocess": "sub"}


def test_redeploy_drains_old_version(daemon):
    deploy(daemon, "rd", "native", "probe.nap", NATIVE)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(daemon.invoke, "rd", None, "400")
        time.sleep(0.15)
        r = daemon.request("PUT", "/v1/functions/rd",
                           {"runtime": "native", "handler": "probe.echo"})
        assert r.status == 200
        assert slow.result().status == 200  # in-flight finished on the old code
    assert daemon.invoke("rd", raw="new code").body == b"new code"


def test_large_events_and_results(daemon):
    deploy(daemon, "cecho", "native", "probe.echo", NATIVE)
    payload = os.urandom(5 * 1024 * 1024)
    r = daemon.invoke("cecho", raw=payload)
    assert r.status == 200 and r.body == payload
    deploy(daemon, "pyecho", "python3", "app.echo", PY)
    event = {"blob": "y" * (4 * 1024 * 1024)}
    r = daemon.invoke("pyecho", event)
    assert r.status == 200 and r.json()["event"] == event
    # one byte over the default 6 MiB: refused from the headers, before the body
    out = daemon.raw(b"POST /v1/functions/cecho/invoke HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n" % (6 * 1024 * 1024 + 1))
    assert out.startswith(b"HTTP/1.1 413"), out


def test_result_over_the_limit(daemon):
    deploy(daemon, "cbig", "native", "probe.big", NATIVE)
    r = daemon.invoke("cbig", raw=str(6 * 1024 * 1024 - 100))
    assert r.status == 200 and len(r.body) == 6 * 1024 * 1024 - 100
    r = daemon.invoke("cbig", raw=str(6 * 1024 * 1024 + 20000))
    assert r.status == 502 and r.json()["errorType"] == "Function.ResponseSizeTooLarge", r
    assert daemon.invoke("cbig", raw="10").body == b"x" * 10


def test_malicious_worker_is_killed(daemon):
    deploy(daemon, "evil", "native", "probe.garbage", NATIVE)
    for event in ("junk", "huge"):
        t0 = time.monotonic()
        r = daemon.invoke("evil", raw=event)
        assert r.status == 502, r
        assert r.json()["errorType"] in ("Runtime.ProtocolError",
                                         "Function.ResponseSizeTooLarge"), r
        assert time.monotonic() - t0 < 2
    st = daemon.get("/v1/functions/evil").json()["state"]
    # each violation cost the worker its life: the second ran on the spare
    assert st["worker_starts"] >= 2 and st["errors"] == 2
    assert daemon.get("/healthz").status == 200


def test_node_subprocess_and_worker_threads(daemon):
    deploy(daemon, "nspawn", "nodejs", "index.spawn", NODE)
    r = daemon.invoke("nspawn")
    assert r.status == 200, r
    assert r.json() == {"out": "from-child", "square": 49}


def test_a_warm_worker_sleeps_once_per_invocation(daemon):
    """Between two invocations a warm runtime sleeps once, waiting for the next event.
    A runtime blocked in read() on its channel was also woken, for nothing, when the
    daemon read its reply (fnd_channel_wait in include/fnd/protocol.h): two voluntary
    context switches an invocation instead of one. On a loaded machine a runtime may
    sleep less (preempted after its reply, it finds the next event there when it runs
    again), never more."""
    for name, runtime, handler, code in (("n", "native", "probe.echo", NATIVE),
                                         ("p", "python3", "app.echo", PY),
                                         ("j", "nodejs", "index.echo", NODE)):
        # one instance: a spare started ahead of need could take the invocations
        # below from the worker whose processes are watched
        deploy(daemon, name, runtime, handler, code, max_instances=1)
        assert daemon.invoke(name, {"warm": 1}).status == 200
        pid = worker_pids(daemon, name)[0]
        procs = list(worker_processes(pid))

        def switches():
            return {p: (proc_status(p, "voluntary_ctxt_switches"),
                        proc_status(p, "nonvoluntary_ctxt_switches")) for p in procs}

        before = switches()
        n = 200
        for i in range(n):
            assert daemon.invoke(name, {"i": i}).status == 200
        after = switches()
        # the runtime: the process of the worker switched out the most (the init
        # sleeps through all of this)
        rt = max(procs, key=lambda p: sum(after[p]) - sum(before[p]))
        assert sum(after[rt]) - sum(before[rt]) >= n / 2, (name, before[rt], after[rt])
        per_invocation = (after[rt][0] - before[rt][0]) / n
        assert per_invocation <= 1.3, (name, per_invocation)


def daemon_sleeps_per_invocation(d, name, n=100):
    """Voluntary context switches of the daemon's loop thread per invocation, over n
    sequential invocations on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    path = f"/v1/functions/{name}/invoke"
    conn.request("POST", path, body=b"{}")
    assert conn.getresponse().read() is not None
    before = proc_status(d.pid, "voluntary_ctxt_switches")
    for _ in range(n):
        conn.request("POST", path, body=b"{}")
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    after = proc_status(d.pid, "voluntary_ctxt_switches")
    conn.close()
    return (after - before) / n


def test_busy_poll_keeps_the_loop_awake_after_a_hand_off(start_daemon):
    """After it hands an invocation to a worker the daemon polls without sleeping for
    --busy-poll microseconds (busy_poll.c). Without the window its loop sleeps at least
    once per invocation (waiting for the next request, which cannot come before the
    answer); with a window longer than the test client's pauses, almost never. Under a
    wrapper (valgrind) the daemon is so slow that the answer and the next request are
    there before its loop gets to sleep, window or not: only the window's half holds."""
    cases = (("0", lambda s: s >= 0.9), ("50000", lambda s: s <= 0.5))
    for window, check in cases[1:] if WRAPPER else cases:
        d = start_daemon("--busy-poll", window)
        deploy(d, "n", "native", "probe.echo", NATIVE)
        sleeps = daemon_sleeps_per_invocation(d, "n")
        assert check(sleeps), (window, sleeps)
        d.stop()


def test_a_worker_started_ahead_of_need_shows_no_trace_of_it(start_daemon):
    """A spare or min_warm worker is told it starts ahead of need, so the python3 and
    nodejs runtimes warm up before READY (src/runtime.c); the variable that says so
    is taken out before the function's code runs, ahead of need or not."""
    d = start_daemon("--spare-workers", "1")
    hostile = os.path.join(FUNCTIONS, "hostile")
    cases = (("py", "python3", "attack.environment", hostile, lambda r: [r]),
             ("js", "nodejs", "index.environment", NODE, lambda r: [r["atLoad"], r["now"]]))
    for name, runtime, handler, code, envs in cases:
        for warm, suffix in ((1, "-warm"), (0, "-cold")):
            fn = name + suffix
            deploy(d, fn, runtime, handler, code, min_warm=warm, max_instances=3)
            if warm:
                assert wait_for(lambda: len(worker_pids(d, fn)) == 1, 30), fn
            # the first answer comes from the min_warm worker, or from one a request
            # waited for; the second, while the first is busy, may come from a spare
            for _ in range(2):
                r = d.invoke(fn, {})
                assert r.status == 200, r
                for env in envs(r.json()):
                    assert "AWS_LAMBDA_FUNCTION_NAME" in env, env
                    assert not any(k.startswith("_FND") for k in env), (fn, env)
