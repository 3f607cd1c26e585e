"""Hostile and broken clients: slowloris, connections dropped mid-request and
mid-response, random bytes, huge headers, and clients that never read. The daemon must
keep serving well-behaved clients, close what it cannot use, and hold bounded memory."""
import os
import socket
import time

from fndtest import BUILD_DIR, rss_kb, wait_for

NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")


def connections(d):
    return d.get("/v1/stats").json()["connections"]


def test_slowloris_does_not_starve_normal_clients(start_daemon):
    d = start_daemon("--header-timeout", "3000")
    slow = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
            slow.append(s)
        assert connections(d) >= 1000
        worst = 0.0
        for _ in range(50):
            t0 = time.monotonic()
            assert d.get("/healthz").status == 200
            worst = max(worst, time.monotonic() - t0)
        assert worst < 1.0, f"a normal request took {worst:.2f} s beside 1,000 slow ones"
        # the header deadline closes every slow connection, without an answer to read
        assert wait_for(lambda: connections(d) <= 1, timeout=15), connections(d)
        for s in slow[:20]:
            s.settimeout(2)
            data = s.recv(65536)
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data
    finally:
        for s in slow:
            s.close()


def test_connections_dropped_mid_request(daemon):
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
        if i % 2:
            s.sendall(b"POST /v1/functions/x/invoke HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 1000\r\n\r\n" + b"a" * 10)
        else:
            s.sendall(b"GET /v1/functi")
        s.close()
    assert wait_for(lambda: connections(daemon) == 1), connections(daemon)
    assert daemon.get("/healthz").status == 200


def test_connections_dropped_mid_response(daemon):
    assert daemon.deploy("big", "native", "probe.big", NATIVE).status == 201
    body = b"%d" % (4 * 1024 * 1024)
    request = (b"POST /v1/functions/big/invoke HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        s.sendall(request)
        assert s.recv(1000).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # reset, with most of the answer unread
    assert wait_for(lambda: connections(daemon) == 1), connections(daemon)
    assert daemon.invoke("big", raw="10").body == b"x" * 10


def test_random_bytes(daemon):
    rng = __import__("random").Random(5)
    for i in range(200):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 2048)))
        out = daemon.raw(junk, timeout=2)
        assert out == b"" or out.startswith(b"HTTP/1.1 4"), (junk[:40], out[:200])
    assert daemon.get("/healthz").status == 200
    assert wait_for(lambda: connections(daemon) == 1), connections(daemon)


def refused(d, data):
    """Sends data the daemon refuses before it has all arrived; what came back. The
    daemon answers, then discards the rest (a lingering close), so the answer is not
    lost to a reset."""
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_huge_headers_url_and_header_count(daemon):
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * (1 << 20) + b"\r\n\r\n"
    assert refused(daemon, huge).startswith(b"HTTP/1.1 431")
    many = b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(500))
    assert refused(daemon, many + b"\r\n").startswith(b"HTTP/1.1 431")
    long_url = b"GET /" + b"a" * (100 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert refused(daemon, long_url).startswith(b"HTTP/1.1 414")
    body = (b"POST /v1/functions/x/invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n" + (b"100000\r\n" + b"b" * 0x100000 + b"\r\n") * 8)
    assert refused(daemon, body).startswith(b"HTTP/1.1 413")
    assert daemon.get("/healthz").status == 200


def test_pipelined_request_cut_by_a_read(daemon):
    """The second request of a pipeline arrives partly with the first and partly later:
    the daemon must read on for the rest (it used to wait for the header timeout)."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /heal")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(0.2)
        s.sendall(b"thz HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        second = s.recv(65536)
        assert second.startswith(b"HTTP/1.1 200"), second
        assert time.monotonic() - t0 < 2


def test_chunked_body_with_trailers(daemon):
    """Trailer fields used to be appended under the slices of the headers (a use after
    free the HTTP fuzzer found); they are dropped now, and still bounded."""
    assert daemon.deploy("echo", "native", "probe.echo", NATIVE).status == 201
    req = (b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
           b"X-Trailer: " + b"t" * 4000 + b"\r\nAnother: one\r\n\r\n")
    out = daemon.raw(req, read_until_close=False)
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"hello"), out[:300]
    flood = (b"POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
             + b"".join(b"T%d: %s\r\n" % (i, b"v" * 1000) for i in range(64)) + b"\r\n")
    assert daemon.raw(flood).startswith(b"HTTP/1.1 431")


def test_client_that_never_reads_holds_bounded_memory(monkeypatch, start_daemon):
    """A pipeline of 100 requests for 1 MiB answers, never read: the daemon answers
    one at a time and stops reading while an answer waits, so it holds about one."""
    monkeypatch.setenv("ASAN_OPTIONS", "quarantine_size_mb=8")  # see test_overload.py
    daemon = start_daemon()
    assert daemon.deploy("big", "native", "probe.big", NATIVE).status == 201
    assert daemon.invoke("big", raw="10").status == 200  # a warm worker
    body = b"%d" % (1 << 20)
    one = (b"POST /v1/functions/big/invoke HTTP/1.1\r\nHost: x\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    before = rss_kb(daemon.pid)
    clients = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            try:
                s.send(one * 100)
            except BlockingIOError:
                pass
            clients.append(s)
        time.sleep(3)
        grown_mb = (rss_kb(daemon.pid) - before) / 1024
        assert grown_mb < 40, f"the daemon grew by {grown_mb:.0f} MiB for unread answers"
        assert daemon.get("/healthz").status == 200
    finally:
        for s in clients:
            s.close()
    assert wait_for(lambda: connections(daemon) == 1), connections(daemon)
