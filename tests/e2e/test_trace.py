"""Trace context: an incoming W3C traceparent (or X-Amzn-Trace-Id) is continued with a
new span for the invocation, returned with X-Request-Id, handed to the function as
_X_AMZN_TRACE_ID, and written into the request log line; a missing or malformed one
starts a new trace."""
import os
import re
import time

from fndtest import FUNCTIONS, wait_for

TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def deploy(d):
    assert d.deploy("tr", "python3", "app.handler", os.path.join(FUNCTIONS, "trace")).status == 201


def xray_ids(xray):
    m = re.fullmatch(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01])",
                     xray)
    assert m, xray
    return m.group(1) + m.group(2), m.group(3), m.group(4)


def test_traceparent_is_continued(daemon):
    deploy(daemon)
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = daemon.invoke("tr", {}, headers={"traceparent": incoming, "tracestate": "vendor=abc"})
    assert r.status == 200
    m = TP.match(r.headers["traceparent"])
    assert m and m.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736" and m.group(3) == "01"
    span = m.group(2)
    assert span != "00f067aa0ba902b7"  # a span of its own, child of the caller's
    assert r.headers["tracestate"] == "vendor=abc"
    body = r.json()
    assert body["request_id"] == r.headers["x-request-id"]
    assert xray_ids(body["xray"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", span, "1")
    # the request log line carries both ids; the function's lines carry the request id.
    # The line is written once the loop has sent the response (log.c batches info lines).
    line = (r"msg=request method=POST path=/v1/functions/tr/invoke status=200 "
            r"duration_ms=\S+ request_id=" + r.headers["x-request-id"] +
            " trace_id=4bf92f3577b34da6a3ce929d0e0e4736")
    assert wait_for(lambda: re.search(line, daemon.log())), daemon.log()[-2000:]
    logs = daemon.get(f"/v1/invocations/{r.headers['x-request-id']}/logs").body.decode()
    assert "tracing Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + span in logs


def test_new_trace_when_absent_or_malformed(daemon):
    deploy(daemon)
    seen = set()
    for headers in ({}, {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
                    {"traceparent": "garbage", "tracestate": "a=b"}):
        r = daemon.invoke("tr", {}, headers=headers)
        assert r.status == 200
        m = TP.match(r.headers["traceparent"])
        assert m, r.headers
        assert m.group(1) not in seen and m.group(1) != "0" * 32
        seen.add(m.group(1))
        assert "tracestate" not in r.headers
        assert xray_ids(r.json()["xray"])[0] == m.group(1)


def test_xray_header_is_accepted(daemon):
    deploy(daemon)
    r = daemon.invoke("tr", {}, headers={
        "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                           "Sampled=0"})
    m = TP.match(r.headers["traceparent"])
    assert m.group(1) == "5759e988bd862e3fe1be46a994272793" and m.group(3) == "00"
    assert xray_ids(r.json()["xray"]) == (m.group(1), m.group(2), "0")


FAILING = """import os
def handler(event, context):
    print("trace", os.environ.get("_X_AMZN_TRACE_ID"))
    raise RuntimeError("always")
"""


def test_trace_survives_async_retries(daemon, tmp_path):
    code = tmp_path / "f"
    code.mkdir()
    (code / "app.py").write_text(FAILING)
    assert daemon.deploy("fails", "python3", "app.handler", str(code),
                         retry={"max_attempts": 2, "base_delay_ms": 100,
                                "max_delay_ms": 200}).status == 201
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = daemon.invoke("fails", {}, headers={"Prefer": "respond-async", "traceparent": incoming})
    assert r.status == 202
    assert r.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    inv = r.json()["invocation_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.get(f"/v1/invocations/{inv}").json()["status"] == "dead_letter":
            break
        time.sleep(0.1)
    logs = daemon.get(f"/v1/invocations/{inv}/logs").body.decode()
    traces = re.findall(r"^trace (\S+)$", logs, re.M)
    assert len(traces) == 2, logs  # both attempts, under the one invocation id
    assert logs.count(f"START RequestId: {inv}") == 2
    for xray in traces:
        assert xray_ids(xray)[0] == "0af7651916cd43dd8448eb211c80319c"
