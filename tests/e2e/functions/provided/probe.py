#!/usr/bin/python3
"""A custom runtime bootstrap (Python, standard library only) that reports what the
Runtime API shows it and tries to answer invocations that are not its own: a made-up
id, the previous invocation's id, and its own id a second time."""
import json
import os
import urllib.error
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def post(path, body):
    req = urllib.request.Request(API + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


previous = None
previous_again = None  # what answering the previous invocation a second time gave
while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        headers = {k.lower(): v for k, v in r.headers.items()}
        event = json.loads(r.read())
    rid = headers["lambda-runtime-aws-request-id"]
    if event.get("error"):
        post(f"/invocation/{rid}/error", {"errorType": "ProbeError", "errorMessage": "asked to",
                                          "stackTrace": ["probe.py"]})
        continue
    report = {
        "event": event,
        "headers": {k: v for k, v in headers.items() if k.startswith("lambda-runtime-")},
        "forged": post("/invocation/00000000-0000-4000-8000-000000000000/response", "forged"),
        "previous": post(f"/invocation/{previous}/response", "stale") if previous else None,
        "previous_again": previous_again,
        "env": {k: os.environ.get(k) for k in ("_HANDLER", "LAMBDA_TASK_ROOT",
                                               "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION",
                                               "AWS_LAMBDA_RUNTIME_API")},
    }
    post(f"/invocation/{rid}/response", report)
    previous_again = post(f"/invocation/{rid}/response", "twice")
    previous = rid
