"""Functions for the async invocation tests. Each execution reports itself to the
test's hit counter (fndtest.HitCounter) on 127.0.0.1, so the test counts executions
from outside the sandbox; the counter answers how many times this id has run."""
import json
import time
import urllib.request


def _hit(event, context):
    port = event["counter"]
    url = f"http://127.0.0.1:{port}/hit/{context.aws_request_id}"
    with urllib.request.urlopen(url, data=b"", timeout=10) as r:
        return int(r.read())


def record(event, context):
    """Runs once per execution and succeeds (after an optional sleep)."""
    n = _hit(event, context)
    if event.get("ms"):
        time.sleep(event["ms"] / 1000)
    return {"id": context.aws_request_id, "runs": n, "tag": event.get("tag")}


def flaky(event, context):
    """Fails its first `fail` executions of an id, then succeeds."""
    n = _hit(event, context)
    if n <= event.get("fail", 0):
        raise RuntimeError(f"failure {n} of {event.get('fail')}")
    return {"id": context.aws_request_id, "runs": n}
