"""Function output logs: each invocation's stdout/stderr framed by START/END/REPORT,
read back by invocation and by function (with since and follow), the tail returned with
the result, and rotation that bounds the disk a chatty function can use."""
import base64
import concurrent.futures
import http.client
import os
import re
import time

PRINTER = """import sys
def handler(event, context):
    for i in range(event.get("lines", 1)):
        print(event.get("text", "hello") + " " + str(i))
    print("to stderr", file=sys.stderr)
    if event.get("fail"):
        raise ValueError("boom")
    return {"ok": True}
"""

NODE = """exports.handler = async (event) => {
  console.log("node says " + event.word);
  console.error("node warns");
  return {ok: true};
};
"""


def printed(lines):
    """PRINTER's lines of one frame as (stdout, stderr), each in its own order. Across
    the two pipes there is none: Python writes a stderr line at once and stdout when
    the handler returns, and the daemon reads whichever pipe it finds filled first."""
    err = [l for l in lines if l == "to stderr"]
    return [l for l in lines if l != "to stderr"], err


def write_fn(tmp_path, name, files):
    d = tmp_path / name
    d.mkdir()
    for fname, text in files.items():
        (d / fname).write_text(text)
    return str(d)


def test_invocation_log_has_lambda_frame(daemon, tmp_path):
    code = write_fn(tmp_path, "p", {"app.py": PRINTER})
    assert daemon.deploy("printer", "python3", "app.handler", code).status == 201
    r = daemon.invoke("printer", {"text": "first", "lines": 2})
    assert r.status == 200
    rid = r.headers["x-request-id"]
    log = daemon.get(f"/v1/invocations/{rid}/logs")
    assert log.status == 200 and log.headers["content-type"].startswith("text/plain")
    lines = log.body.decode().splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert printed(lines[1:4]) == (["first 0", "first 1"], ["to stderr"])
    assert lines[4] == f"END RequestId: {rid}"
    report = lines[5]
    assert report.startswith(f"REPORT RequestId: {rid}\t")
    m = re.search(r"Duration: ([0-9.]+) ms\tBilled Duration: (\d+) ms\tMemory Size: 128 MB\t"
                  r"Max Memory Used: (\d+) MB\tInit Duration: ([0-9.]+) ms$", report)
    assert m, report
    assert int(m.group(2)) >= float(m.group(1)) and int(m.group(3)) > 0
    # a warm invocation has no Init Duration; its lines are its own
    r2 = daemon.invoke("printer", {"text": "second"})
    rid2 = r2.headers["x-request-id"]
    text2 = daemon.get(f"/v1/invocations/{rid2}/logs").body.decode()
    assert "second 0" in text2 and "first" not in text2 and "Init Duration" not in text2
    # unknown and malformed ids
    assert daemon.get("/v1/invocations/00000000-0000-4000-8000-000000000000/logs").status == 404
    assert daemon.get("/v1/invocations/not-an-id/logs").status == 400
    # after a restart the log is still found (by scanning the function's files)
    daemon.restart()
    assert "first 1" in daemon.get(f"/v1/invocations/{rid}/logs").body.decode()


GROWER = """kept = []
def handler(event, context):
    kept.append(b"x" * (event.get("mb", 0) << 20))  # written, so resident
    return None
"""


def max_memory_used_mb(daemon, rid):
    log = daemon.get(f"/v1/invocations/{rid}/logs").body.decode()
    m = re.search(r"\tMax Memory Used: (\d+) MB", log)
    assert m, log
    return int(m.group(1))


def test_max_memory_used_shows_what_the_invocation_allocated(daemon, tmp_path):
    """The REPORT's peak memory is read again at most once a millisecond (worker.c,
    peak_memory): a worker's invocations right after one another share a read, but one
    that allocates takes longer than that, and its own REPORT shows what it kept."""
    code = write_fn(tmp_path, "g", {"app.py": GROWER})
    assert daemon.deploy("grower", "python3", "app.handler", code).status == 201
    small = [daemon.invoke("grower", {}).headers["x-request-id"] for _ in range(5)]
    before = max(max_memory_used_mb(daemon, rid) for rid in small)
    grown = daemon.invoke("grower", {"mb": 64})
    assert grown.status == 200
    after = max_memory_used_mb(daemon, grown.headers["x-request-id"])
    assert after >= before + 64, (before, after)
    # and it stays: the peak only grows
    again = daemon.invoke("grower", {})
    assert max_memory_used_mb(daemon, again.headers["x-request-id"]) >= after


def test_each_log_closes_before_the_next_invocation_starts(daemon, tmp_path):
    """A worker's log is closed after its answer is out (worker.c, finish). With a
    queue behind one worker, the next invocation is handed over during that answer:
    its START must still come after the previous END and REPORT, and what each printed
    must stay in its own frame."""
    code = write_fn(tmp_path, "p", {"app.py": PRINTER})
    assert daemon.deploy("one", "python3", "app.handler", code, max_instances=1,
                         max_queue=64).status == 201
    assert daemon.invoke("one", {"text": "warm"}).status == 200
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: daemon.invoke("one", {"text": f"call-{i}", "lines": 2}),
                                range(30)))
    assert all(r.status == 200 for r in results)
    for i, r in enumerate(results):
        rid = r.headers["x-request-id"]
        lines = daemon.get(f"/v1/invocations/{rid}/logs").body.decode().splitlines()
        assert len(lines) == 6, lines
        assert lines[0] == f"START RequestId: {rid} Version: $LATEST", lines
        assert printed(lines[1:4]) == ([f"call-{i} 0", f"call-{i} 1"], ["to stderr"]), lines
        assert lines[4] == f"END RequestId: {rid}", lines
        assert lines[5].startswith(f"REPORT RequestId: {rid}\t"), lines
    # and in the function's log as a whole, frames do not overlap
    records = [line.split("\t", 3) for line in
               daemon.get("/v1/functions/one/logs").body.decode().splitlines()]
    frames = [(rid, text.split()[0]) for _, rid, _, text in records
              if text.split()[0] in ("START", "END", "REPORT")]
    assert [word for _, word in frames] == ["START", "END", "REPORT"] * 31, frames
    assert all(frames[k][0] == frames[k + 1][0] == frames[k + 2][0] for k in range(0, 93, 3))


def test_tail_with_the_result_and_errors(daemon, tmp_path):
    code = write_fn(tmp_path, "p", {"app.py": PRINTER})
    daemon.deploy("printer", "python3", "app.handler", code)
    r = daemon.invoke("printer", {"text": "x" * 100, "lines": 100, "fail": True},
                      headers={"Fn-Log-Type": "Tail"})
    assert r.status == 500
    tail = base64.b64decode(r.headers["fn-log-result"])
    assert len(tail) <= 4096
    text = tail.decode()
    assert text.rstrip("\n").splitlines()[-1].startswith("REPORT RequestId: " + r.headers["x-request-id"])
    assert "x" * 100 + " 99" in text and " 0\n" not in text  # the last 4 KB, not the first
    assert "fn-log-result" not in daemon.invoke("printer", {}).headers


def test_function_log_since_and_node(daemon, tmp_path):
    code = write_fn(tmp_path, "n", {"index.js": NODE})
    assert daemon.deploy("noder", "nodejs", "index.handler", code).status == 201
    assert daemon.invoke("noder", {"word": "early"}).status == 200
    time.sleep(1.1)
    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    rid = daemon.invoke("noder", {"word": "late"}).headers["x-request-id"]
    body = daemon.get("/v1/functions/noder/logs").body.decode()
    records = [line.split("\t", 3) for line in body.splitlines()]
    assert all(len(rec) == 4 for rec in records)
    assert ["stdout", "node says early"] in [rec[2:] for rec in records]
    assert [rid, "stderr", "node warns"] in [rec[1:] for rec in records]
    late = daemon.get("/v1/functions/noder/logs?since=" + cut.replace(":", "%3A")).body.decode()
    assert "node says late" in late and "node says early" not in late
    assert "node says early" not in daemon.get("/v1/functions/noder/logs?since=2s").body.decode()
    assert daemon.get("/v1/functions/noder/logs?since=yesterday").status == 400
    assert daemon.get("/v1/functions/nobody/logs").status == 404


def test_follow_streams_new_records(daemon, tmp_path):
    code = write_fn(tmp_path, "p", {"app.py": PRINTER})
    daemon.deploy("printer", "python3", "app.handler", code)
    daemon.invoke("printer", {"text": "before"})
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("GET", "/v1/functions/printer/logs?follow=1",
                 headers={"Authorization": "Bearer " + daemon.token})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("transfer-encoding") == "chunked"
    got = b""
    while b"before 0" not in got:
        got += r.read1(65536)
    rid = daemon.invoke("printer", {"text": "during"}).headers["x-request-id"]
    deadline = time.monotonic() + 20
    while f"REPORT RequestId: {rid}".encode() not in got and time.monotonic() < deadline:
        got += r.read1(65536)
    assert b"\tstdout\tduring 0\n" in got and f"REPORT RequestId: {rid}".encode() in got
    conn.close()
    # the follower is gone: the daemon keeps serving and logging
    assert daemon.invoke("printer", {"text": "after"}).status == 200
    assert "after 0" in daemon.get("/v1/functions/printer/logs").body.decode()


def test_rotation_bounds_disk(start_daemon, tmp_path):
    d = start_daemon("--log-file-size", "64K", "--log-files", "3")
    code = write_fn(tmp_path, "p", {"app.py": PRINTER})
    d.deploy("chatty", "python3", "app.handler", code)
    for _ in range(4):  # 4 x 6000 lines of ~110 bytes: 2.6 MB printed
        assert d.invoke("chatty", {"text": "y" * 100, "lines": 6000}, timeout=60).status == 200
    folder = os.path.join(d.data, "logs", "chatty")
    names = sorted(os.listdir(folder))
    assert names == ["output.log", "output.log.1", "output.log.2"]
    total = sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    assert total <= 3 * 64 * 1024
    assert all(os.stat(os.path.join(folder, n)).st_mode & 0o777 == 0o600 for n in names)
    # the newest records are the ones kept, and reading is bounded
    body = d.get("/v1/functions/chatty/logs").body.decode()
    assert body.rstrip("\n").splitlines()[-1].split("\t")[3].startswith("REPORT")
    # deleting the function removes its logs
    assert d.request("DELETE", "/v1/functions/chatty").status == 204
    assert not os.path.exists(folder)


def test_follow_ends_when_the_function_goes_and_pipelining_holds(daemon, tmp_path):
    """The streamed answer ends with the last chunk; the next pipelined request on the
    same connection is answered after it, in order."""
    import socket
    code = write_fn(tmp_path, "p", {"app.py": PRINTER})
    daemon.deploy("gone", "python3", "app.handler", code)
    daemon.invoke("gone", {"text": "once"})
    auth = f"Authorization: Bearer {daemon.token}\r\n".encode()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=20) as s:
        s.sendall(b"GET /v1/functions/gone/logs?follow=1 HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while b"once 0" not in got:
            got += s.recv(65536)
        assert b"/healthz" not in got and b'"ok"' not in got  # the second waits its turn
        assert daemon.request("DELETE", "/v1/functions/gone").status == 204
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    body, sep, second = rest.partition(b"\r\n0\r\n\r\n")
    assert sep, got
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b'{"status":"ok"}')
