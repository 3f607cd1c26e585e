"""Custom runtimes (runtime "provided"): the bundle's bootstrap talks to Lambda's Runtime
API, served inside the worker's sandbox by fnd-runtime-provided. The bash + curl and
C + libcurl examples run unmodified; a runtime sees the standard headers, can answer
only its own invocation, and its init errors, error responses and exits reach the
caller the way Lambda reports them."""
import base64
import json
import os

import pytest

from fndtest import BUILD_DIR, FUNCTIONS, zip_bytes

EXAMPLES = os.path.join(BUILD_DIR, "examples")
PROVIDED = os.path.join(FUNCTIONS, "provided")
EXEC = 0o100755


def read(path):
    with open(path, "rb") as f:
        return f.read()


def bootstrap_zip(path, **more):
    files = {"bootstrap": read(path), **more}
    return zip_bytes(files, modes={"bootstrap": EXEC})


def lambda_create(d, name, zipped, handler="function.handler"):
    body = {"FunctionName": name, "Runtime": "provided.al2023", "Handler": handler,
            "Role": "arn:aws:iam::000000000000:role/x",
            "Code": {"ZipFile": base64.b64encode(zipped).decode()}}
    r = d.request("POST", "/2015-03-31/functions", body)
    assert r.status == 201, r
    return r.json()


def lambda_invoke(d, name, event, headers=None):
    return d.request("POST", f"/2015-03-31/functions/{name}/invocations", json.dumps(event),
                     headers or {})


def network_none_available(d):
    return d.get("/v1/info").json()["sandbox"]["network_none"] == "on"


def test_bash_example_through_the_lambda_api(daemon):
    ex = os.path.join(EXAMPLES, "hello-bash")
    zipped = bootstrap_zip(os.path.join(ex, "bootstrap"),
                           **{"function.sh": read(os.path.join(ex, "function.sh"))})
    conf = lambda_create(daemon, "bash-fn", zipped)
    assert conf["Runtime"] == "provided.al2023"
    for n in range(3):  # a warm worker serves one invocation after another
        r = lambda_invoke(daemon, "bash-fn", {"n": n})
        assert r.status == 200 and "x-amz-function-error" not in r.headers, r
        assert r.json() == {"echo": {"n": n}, "runtime": "bash"}
    assert daemon.get("/v1/functions/bash-fn").json()["state"]["cold_starts"] == 1


def test_bash_example_with_network_none(daemon):
    if not network_none_available(daemon):
        pytest.skip("this daemon cannot create network namespaces (not root)")
    r = daemon.deploy("bash-none", "provided", "function.handler",
                      os.path.join(EXAMPLES, "hello-bash"), network="none")
    assert r.status == 201, r
    r = daemon.invoke("bash-none", {"isolated": True})
    assert r.status == 200, r
    assert r.json() == {"echo": {"isolated": True}, "runtime": "bash"}


def test_c_example_answers_and_fails(daemon):
    r = daemon.deploy("c-rt", "provided", "bootstrap", os.path.join(EXAMPLES, "hello-c-runtime"),
                      network="none" if network_none_available(daemon) else "host")
    assert r.status == 201, r
    r = lambda_invoke(daemon, "c-rt", {"x": [1, 2]})
    assert r.status == 200 and r.json()["event"] == {"x": [1, 2]} and r.json()["runtime"] == "c"
    assert r.json()["request_id"] == r.headers["x-amzn-requestid"]
    # an error response: 200 with X-Amz-Function-Error, the runtime's error object
    r = lambda_invoke(daemon, "c-rt", "please fail")
    assert r.status == 200 and r.headers["x-amz-function-error"] == "Unhandled"
    assert r.json()["errorType"] == "HandlerError"
    assert r.json()["errorMessage"] == "the event asked to fail"
    # the same worker goes on serving
    assert lambda_invoke(daemon, "c-rt", {"after": 1}).json()["event"] == {"after": 1}
    assert daemon.get("/v1/functions/c-rt").json()["state"]["cold_starts"] == 1


def test_runtime_api_headers_and_foreign_ids_refused(daemon):
    lambda_create(daemon, "probe", bootstrap_zip(os.path.join(PROVIDED, "probe.py")),
                  handler="probe.anything")
    cc = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    r = lambda_invoke(daemon, "probe", {"a": 1},
                      {"X-Amz-Client-Context": cc, "X-Amzn-Trace-Id": trace})
    assert r.status == 200, r
    rep = r.json()
    h = rep["headers"]
    assert rep["event"] == {"a": 1}
    assert h["lambda-runtime-aws-request-id"] == r.headers["x-amzn-requestid"]
    assert h["lambda-runtime-invoked-function-arn"] == \
        "arn:aws:lambda:us-east-1:000000000000:function:probe"
    assert int(h["lambda-runtime-deadline-ms"]) > 0
    assert h["lambda-runtime-trace-id"] == trace
    assert json.loads(h["lambda-runtime-client-context"]) == {"custom": {"k": "v"}}
    api = rep["env"].pop("AWS_LAMBDA_RUNTIME_API")
    assert api.startswith("127.0.0.1:")
    assert rep["env"] == {"_HANDLER": "probe.anything", "LAMBDA_TASK_ROOT": "/var/task",
                          "AWS_LAMBDA_FUNCTION_NAME": "probe", "AWS_REGION": "us-east-1"}
    # a made-up id is refused; the runtime then answered its own
    assert rep["forged"] == 400 and rep["previous"] is None
    # the second invocation: the previous id, and a second answer to it, were refused too
    first = rep["headers"]["lambda-runtime-aws-request-id"]
    r = lambda_invoke(daemon, "probe", {"a": 2})
    rep = r.json()
    assert rep["event"] == {"a": 2} and rep["forged"] == 400 and rep["previous"] == 400
    assert rep["previous_again"] == 400
    assert rep["headers"]["lambda-runtime-aws-request-id"] != first
    r = lambda_invoke(daemon, "probe", {"error": True})
    assert r.headers["x-amz-function-error"] == "Unhandled"
    assert r.json() == {"errorType": "ProbeError", "errorMessage": "asked to",
                        "stackTrace": ["probe.py"]}


def test_init_error_error_type_and_exit(daemon):
    lambda_create(daemon, "initfail", bootstrap_zip(os.path.join(PROVIDED, "initfail.sh")))
    r = lambda_invoke(daemon, "initfail", {})
    assert r.status == 200 and r.headers["x-amz-function-error"] == "Unhandled", r
    assert r.json()["errorType"] == "Runtime.ConfigError"
    assert r.json()["errorMessage"] == "missing configuration"

    lambda_create(daemon, "errors", bootstrap_zip(os.path.join(PROVIDED, "errors.sh")))
    r = lambda_invoke(daemon, "errors", {})
    assert r.headers["x-amz-function-error"] == "Unhandled"
    assert r.json()["errorType"] == "Shell.Failure"
    assert r.json()["errorMessage"] == "not json at all"
    r = lambda_invoke(daemon, "errors", "exit")  # the bootstrap exits mid-invocation
    assert r.headers["x-amz-function-error"] == "Unhandled"
    assert r.json()["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in r.json()["errorMessage"]
    # a fresh worker takes over
    assert lambda_invoke(daemon, "errors", {}).json()["errorType"] == "Shell.Failure"

    # a bundle without a bootstrap
    lambda_create(daemon, "nobootstrap", zip_bytes({"README": b"no bootstrap here"}))
    r = lambda_invoke(daemon, "nobootstrap", {})
    assert r.headers["x-amz-function-error"] == "Unhandled"
    assert r.json()["errorType"] == "Runtime.InvalidEntrypoint"


def test_another_function_cannot_reach_a_runtime_api(daemon):
    """On the host's network every worker shares loopback: the adapter refuses
    connections from sockets of another uid (each worker has its own)."""
    if daemon.get("/v1/info").json()["sandbox"]["uid"] != "per-worker":
        pytest.skip("workers share the daemon's uid (not root): the uid check cannot tell them apart")
    lambda_create(daemon, "victim", bootstrap_zip(os.path.join(PROVIDED, "probe.py")))
    api = lambda_invoke(daemon, "victim", {}).json()["env"]["AWS_LAMBDA_RUNTIME_API"]
    r = daemon.deploy("thief", "python3", "thief.handler", PROVIDED)
    assert r.status == 201, r
    r = daemon.invoke("thief", {"api": api}, timeout=60)
    assert r.status == 200, r
    assert r.json()["outcome"] == "closed", r.json()
    # the victim still gets its own invocations
    assert lambda_invoke(daemon, "victim", {"still": "mine"}).json()["event"] == {"still": "mine"}



def runtime_api_answer(status, reason, error_type, message):
    """The exact bytes of one of the adapter's error answers."""
    body = json.dumps({"errorMessage": message, "errorType": error_type},
                      separators=(",", ":"))
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}")


def test_runtime_api_answers_raw_requests_exactly(daemon):
    """Hand-written requests (tests/e2e/functions/provided/rawhttp.py) get these exact
    answers, and the connection stays open or closes as stated: what the adapter's
    parser (runtimes/provided/runtime_api_parse.c) must keep doing."""
    lambda_create(daemon, "rawhttp", bootstrap_zip(os.path.join(PROVIDED, "rawhttp.py")))
    r = lambda_invoke(daemon, "rawhttp", {})
    assert r.status == 200 and "x-amz-function-error" not in r.headers, r
    not_found = runtime_api_answer(404, "Not Found", "NotFound", "no such endpoint")
    foreign = runtime_api_answer(400, "Bad Request", "InvalidRequestID",
                                 "no invocation with this id is being served")
    malformed = runtime_api_answer(400, "Bad Request", "InvalidRequest", "malformed HTTP request")
    expected = {
        "unknown_get": (not_found, False),
        "head_next": (not_found, False),
        "unknown_post": (not_found, False),
        "foreign_id": (foreign, False),
        "foreign_error": (foreign, False),
        "init_error_late": (runtime_api_answer(403, "Forbidden", "InvalidStateTransition",
                                               "the runtime is already initialised"), False),
        "malformed": (malformed, True),
        "url_too_long": (malformed, True),
        "body_too_large": (runtime_api_answer(413, "Payload Too Large", "RequestEntityTooLarge",
                                              "the body exceeds the response size limit"), False),
        "bad_content_length": (malformed, True),
        "pipelined": (foreign + not_found, False),
        "close": (not_found, True),
        "http10": (not_found, True),
    }
    got = {k: (v["answer"], v["closed"]) for k, v in r.json().items()}
    assert got == expected
