"""The HTTP gateway against the real daemon: keep-alive, pipelining, bodies, limits,
timeouts and malformed input, each followed by proof that the daemon still serves."""
import http.client
import json
import os
import socket
import time

from fndtest import FUNCTIONS


def healthy(d):
    assert d.get("/healthz").status == 200


def responses(raw):
    return [part for part in raw.split(b"HTTP/1.1 ")[1:]]


def test_healthz_and_json_errors(daemon):
    r = daemon.get("/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    r = daemon.get("/no/such/path")
    assert r.status == 404
    assert r.json()["error"]["code"] == "not_found"
    r = daemon.request("POST", "/healthz")
    assert r.status == 405
    assert r.headers["allow"] == "GET"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = daemon.request("DELETE", "/v1/functions/x/invoke")
    assert r.status == 405 and r.headers["allow"] == "POST"


def test_keep_alive_reuses_one_connection(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=5)
    try:
        ports = set()
        for path, status in (("/healthz", 200), ("/nope", 404), ("/v1/functions", 200)):
            conn.request("GET", path, headers={"Authorization": "Bearer " + daemon.token})
            r = conn.getresponse()
            assert r.status == status
            r.read()
            assert not r.will_close
            ports.add(conn.sock.getsockname()[1])
        assert len(ports) == 1  # every answer came on the first connection
    finally:
        conn.close()


def auth(daemon):
    """The token header and the end of the head, for raw control requests."""
    return b"Authorization: Bearer " + daemon.token.encode() + b"\r\n\r\n"


def test_keep_alive_and_pipelining_in_order(daemon):
    reqs = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /v1/functions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth(daemon))
    out = daemon.raw(reqs)
    parts = responses(out)
    assert [p[:3] for p in parts] == [b"200", b"404", b"405", b"200"], out
    assert b"Connection: close" in parts[3]
    healthy(daemon)


def test_chunked_body_and_content_length(daemon):
    body = b'{"runtime": "python3"}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:5], body[5:])) + b"0\r\n\r\n"
    out = daemon.raw(b"PUT /v1/functions/bad!name HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n" + auth(daemon) + chunked)
    assert out.startswith(b"HTTP/1.1 400"), out  # the body arrived and was judged
    out = daemon.raw(b"PUT /v1/functions/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Length: 2\r\n" + auth(daemon) + b"{}")
    assert out.startswith(b"HTTP/1.1 400") and b"handler: required" in out, out
    healthy(daemon)


def test_expect_100_continue(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
        s.sendall(b"abcd")
        rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):] or s.recv(4096)
        assert rest.startswith(b"HTTP/1.1 405"), rest
    healthy(daemon)


def test_413_decided_before_the_body(start_daemon):
    d = start_daemon("--max-body", "1024")
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"POST /v1/functions/x/invoke HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 100000000\r\n\r\n")
        out = s.recv(4096)  # answered without sending a byte of the body
        assert out.startswith(b"HTTP/1.1 413"), out
        assert json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "payload_too_large"
    chunks = b"400\r\n" + b"a" * 1024 + b"\r\n" + b"400\r\n" + b"a" * 1024 + b"\r\n0\r\n\r\n"
    out = d.raw(b"POST /v1/functions/x/invoke HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert out.startswith(b"HTTP/1.1 413"), out
    healthy(d)


def test_414_and_431(start_daemon):
    d = start_daemon("--max-url", "256", "--max-header-size", "2048", "--max-headers", "20")
    out = d.raw(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414"), out
    out = d.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431"), out
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(30))
    out = d.raw(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431"), out
    healthy(d)


def test_garbage_gets_400_and_close(daemon):
    for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                 b"GET / HTTP/1.1\r\nContent-Length: -3\r\n\r\n"):
        out = daemon.raw(junk)
        assert out.startswith(b"HTTP/1.1 400"), (junk, out)
        assert b"Connection: close" in out
    healthy(daemon)


def test_http10_closes_after_response(daemon):
    out = daemon.raw(b"GET /healthz HTTP/1.0\r\n\r\n", timeout=3)
    assert out.startswith(b"HTTP/1.1 200")  # and the connection closed: raw() returned


def test_slow_header_and_idle_timeouts(start_daemon):
    d = start_daemon("--header-timeout", "300", "--idle-timeout", "300")
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        t0 = time.monotonic()
        assert s.recv(4096) == b""  # closed by the daemon
        assert time.monotonic() - t0 < 3
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert s.recv(4096) == b""  # idle keep-alive connection closed
        assert time.monotonic() - t0 < 3
    healthy(d)


def test_peer_reset_mid_request(daemon):
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    healthy(daemon)


def test_half_close_still_answers_every_pipelined_request(daemon):
    """A client that sends its requests and shuts down its sending side while the
    first is still being answered gets every answer, in order, then the close."""
    r = daemon.deploy("slowgw", "python3", "app.sleep", os.path.join(FUNCTIONS, "py"))
    assert r.status == 201, r
    body = b'{"ms": 300}'
    invoke = (b"POST /v1/functions/slowgw/invoke HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n" % len(body) + auth(daemon) + body)
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as s:
        s.sendall(invoke + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + invoke)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    assert [p[:3] for p in responses(out)] == [b"200", b"200", b"200"], out
    healthy(daemon)
