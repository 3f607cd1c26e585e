"""Pipelining (src/worker.c): a busy worker whose pool is at its limit gets its next
event before it answers, so it does not sleep between the two. What each invocation
prints must still land in its own log, and an event sent ahead of a worker that then
crashes or times out must run elsewhere, not fail."""
import json
import os
import socket
import time

from fndtest import BUILD_DIR, proc_status, wait_for, worker_pids, worker_processes

NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")

PY = """import os, sys, time
def handler(event, context):
    i = event["i"]
    if i % 3 == 0:
        print(f"start {i}", flush=True)
    if i % 10 == 5:  # more than a pipe holds, read while the next event waits
        sys.stdout.write((("x" * 1000) + f" {i}\\n") * 100)
    return {"i": i}
"""

FAILING = """import os, time
def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    time.sleep(event.get("sleep", 0))
    return {"i": event["i"]}
"""


def read_response(f):
    """One HTTP/1.1 response from the file f: (status, headers, body)."""
    status = int(f.readline().split()[1])
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, f.read(int(headers.get("content-length", 0)))


def pipelined(port, name, events_per_conn, timeout=60):
    """Sends each connection's events as pipelined invocations at once, so that the
    queue behind the function's workers stays full, then reads every answer: per
    connection, [(status, headers, body)] in order."""
    conns = []
    for events in events_per_conn:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(b"".join(
            b"POST /v1/functions/%s/invoke HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
            % (name.encode(), len(body), body)
            for body in (json.dumps(e).encode() for e in events)))
        conns.append(s)
    out = []
    for s, events in zip(conns, events_per_conn):
        with s, s.makefile("rb") as f:
            out.append([read_response(f) for _ in events])
    return out


def runtime_switches(daemon, name):
    """Voluntary context switches of the function's busiest worker process."""
    procs = [p for w in worker_pids(daemon, name) for p in worker_processes(w)]
    return max(proc_status(p, "voluntary_ctxt_switches") for p in procs)


def test_a_worker_with_a_queue_gets_its_next_event_before_it_answers(daemon, tmp_path):
    """One worker, eight connections of pipelined requests, so invocations queue: most
    are sent ahead to the busy worker (state.sent_ahead). A Python worker then finds its
    next event there when it answers and goes on without sleeping: 0.2 sleeps per
    invocation here, where it slept once per invocation without pipelining (test_invoke.py,
    test_a_warm_worker_sleeps_once_per_invocation); on a loaded machine, up to 0.5. A
    native no-op is often done before the next event comes (0.7)."""
    code = tmp_path / "py"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return event\n")
    for name, runtime, handler, folder, most in (("p", "python3", "app.handler", str(code), 0.8),
                                                 ("n", "native", "probe.echo", NATIVE, None)):
        assert daemon.deploy(name, runtime, handler, folder, max_instances=1,
                             max_queue=1000).status == 201
        assert daemon.invoke(name, {"warm": 1}).status == 200
        before = runtime_switches(daemon, name)
        n = 8 * 100
        answers = pipelined(daemon.port, name, [[{"i": i}] * 100 for i in range(8)])
        assert all(a[0] == 200 for conn in answers for a in conn), answers
        sent_ahead = daemon.get(f"/v1/functions/{name}").json()["state"]["sent_ahead"]
        assert sent_ahead >= n / 2, (name, sent_ahead)
        if most is not None:
            per_invocation = (runtime_switches(daemon, name) - before) / n
            assert per_invocation < most, (name, per_invocation)


def test_output_stays_with_its_invocation(daemon, tmp_path):
    """Some invocations print a line, some more than a pipe holds, most nothing; each
    invocation's log holds exactly its own lines, with events going ahead throughout."""
    code = tmp_path / "py"
    code.mkdir()
    (code / "app.py").write_text(PY)
    for name, runtime, handler, folder in (("p", "python3", "app.handler", str(code)),
                                           ("n", "native", "probe.say", NATIVE)):
        assert daemon.deploy(name, runtime, handler, folder, max_instances=1,
                             max_queue=1000).status == 201
        assert daemon.invoke(name, {"i": 1}).status == 200
        events = [[{"i": c * 40 + k, **({"say": 1} if k % 3 == 0 else {})} for k in range(40)]
                  for c in range(4)]
        answers = pipelined(daemon.port, name, events)
        for conn_events, conn_answers in zip(events, answers):
            for event, (status, headers, _) in zip(conn_events, conn_answers):
                assert status == 200, (name, event, status)
                logs = daemon.get(f"/v1/invocations/{headers['x-request-id']}/logs")
                lines = logs.body.decode().splitlines()[1:-2]  # inside START, END, REPORT
                i = event["i"]
                if runtime == "native":
                    want = [f"said {json.dumps(event)}"] if "say" in event else []
                else:
                    want = ([f"start {i}"] if i % 3 == 0 else []) + \
                           ([("x" * 1000) + f" {i}"] * 100 if i % 10 == 5 else [])
                assert lines == want, (name, i, lines[:3], len(lines))


def test_an_event_sent_ahead_of_a_failing_invocation_runs_elsewhere(daemon, tmp_path):
    """Crashes and a timeout in the middle of pipelined streams: the event each had
    ahead of it never ran, and runs on the next worker (the daemon logs it as
    redispatched); only the failing invocations themselves fail."""
    code = tmp_path / "py"
    code.mkdir()
    (code / "app.py").write_text(FAILING)
    assert daemon.deploy("p", "python3", "app.handler", str(code), max_instances=1,
                         max_queue=1000, timeout_ms=1000).status == 201
    assert daemon.invoke("p", {"i": 1}).status == 200
    events = [[{"i": c * 100 + k} for k in range(30)] for c in range(4)]
    failing = {(c, k) for c in (0, 2) for k in range(4, 30, 6)} | {(1, 25)}
    for c, k in failing:
        events[c][k]["crash"] = True
    events[1][25] = {"i": 125, "sleep": 3}  # the timeout
    t0 = time.monotonic()
    answers = pipelined(daemon.port, "p", events)
    assert time.monotonic() - t0 < 30
    for c, conn in enumerate(answers):
        for k, (status, _, body) in enumerate(conn):
            if (c, k) in failing:
                assert status >= 500, (c, k, status, body)
            else:
                assert status == 200 and json.loads(body) == {"i": c * 100 + k}, (c, k, status)
    # Not every one had an event ahead: not one whose predecessor ran over 1 ms, as the
    # first invocation of a new worker may on a loaded machine.
    assert wait_for(lambda: daemon.log().count('msg="invocation redispatched"') >= 1), \
        daemon.log()[-3000:]
