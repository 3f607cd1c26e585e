"""The AWS CLI (Debian's awscli) against fnd's Lambda API, unchanged but for
--endpoint-url: the whole life of a function, from create to delete, and the error
cases a developer meets."""
import base64
import hashlib
import json
import os
import shutil
import subprocess

import time

from fndtest import LAMBDA_ROLE, HitCounter, aws_env, lambda_zip

AWS = shutil.which("aws", path="/usr/bin") or "/usr/bin/aws"


class Cli:
    def __init__(self, daemon, tmp_path):
        self.d = daemon
        self.tmp = tmp_path

    def run(self, *args):
        """(returncode, stdout parsed as JSON when it is, stderr)."""
        p = subprocess.run([AWS, "--endpoint-url", self.d.url, "--region", "us-east-1",
                            "--output", "json", "lambda", *args],
                           capture_output=True, text=True, env=aws_env(), timeout=120)
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            out = p.stdout
        return p.returncode, out, p.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        assert rc == 0, f"aws lambda {' '.join(args)} failed: {err}"
        return out

    def fails(self, *args):
        rc, out, err = self.run(*args)
        assert rc != 0, f"aws lambda {' '.join(args)} should have failed: {out}"
        return err

    def invoke(self, name, payload=None, *extra, payload_file=None):
        """(invoke's own output, the function's result)."""
        result = self.tmp / "result.json"
        args = ["invoke", "--function-name", name, *extra]
        if payload_file:
            args += ["--payload", f"fileb://{payload_file}"]
        elif payload is not None:
            args += ["--cli-binary-format", "raw-in-base64-out", "--payload", json.dumps(payload)]
        meta = self.ok(*args, str(result))
        return meta, json.loads(result.read_bytes())

    def zip_file(self, code):
        path = self.tmp / f"{code}.zip"
        path.write_bytes(lambda_zip(code))
        return path


def test_cli_function_lifecycle(start_daemon, tmp_path):
    d = start_daemon("--max-body", "16M")
    cli = Cli(d, tmp_path)
    v1, v2 = cli.zip_file("v1"), cli.zip_file("v2")

    # create (zip)
    conf = cli.ok("create-function", "--function-name", "cli-fn", "--runtime", "python3.12",
                  "--handler", "app.handler", "--role", LAMBDA_ROLE,
                  "--zip-file", f"fileb://{v1}", "--timeout", "5", "--memory-size", "256",
                  "--environment", "Variables={STAGE=one}", "--description", "from the cli")
    assert conf["FunctionName"] == "cli-fn" and conf["Runtime"] == "python3.12"
    assert conf["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:cli-fn"
    assert conf["Version"] == "$LATEST" and conf["State"] == "Active"
    assert conf["LastUpdateStatus"] == "Successful"
    assert conf["Timeout"] == 5 and conf["MemorySize"] == 256
    assert conf["Description"] == "from the cli"
    assert conf["Environment"] == {"Variables": {"STAGE": "one"}}
    assert conf["CodeSha256"] == base64.b64encode(hashlib.sha256(v1.read_bytes()).digest()).decode()
    assert conf["CodeSize"] == v1.stat().st_size
    # the same function on the native API
    native = d.get("/v1/functions/cli-fn").json()
    assert native["runtime"] == "python3" and native["timeout_ms"] == 5000
    assert native["memory_mb"] == 256 and native["env"] == {"STAGE": "one"}
    assert "Function already exist" in cli.fails(
        "create-function", "--function-name", "cli-fn", "--runtime", "python3.12",
        "--handler", "app.handler", "--role", LAMBDA_ROLE, "--zip-file", f"fileb://{v1}")

    # invoke sync, with a client context
    cc = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    meta, res = cli.invoke("cli-fn", {"n": 1}, "--client-context", cc)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    assert res["code"] == "v1" and res["stage"] == "one" and res["event"] == {"n": 1}
    assert res["custom"] == {"k": "v"} and res["memory"] == 256
    assert res["version"] == "$LATEST"
    # DryRun checks without running
    rc, out, err = cli.run("invoke", "--function-name", "cli-fn", "--invocation-type", "DryRun",
                           str(tmp_path / "dry.json"))
    assert rc == 0 and out["StatusCode"] == 204

    # invoke Event: 202 once durable; the function then runs (it reports to a counter)
    counter = HitCounter()
    try:
        rc, out, err = cli.run("invoke", "--function-name", "cli-fn", "--invocation-type", "Event",
                               "--cli-binary-format", "raw-in-base64-out", "--payload",
                               json.dumps({"hit": f"http://127.0.0.1:{counter.port}/hit/cli"}),
                               str(tmp_path / "event.json"))
        assert rc == 0 and out["StatusCode"] == 202, err
        deadline = time.monotonic() + 60
        while counter.count("cli") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counter.count("cli") == 1
    finally:
        counter.close()
    big_event = tmp_path / "big-event.json"
    big_event.write_text(json.dumps({"pad": "x" * (300 * 1024)}))
    assert "RequestTooLargeException" in cli.fails(
        "invoke", "--function-name", "cli-fn", "--invocation-type", "Event",
        "--payload", f"fileb://{big_event}", str(tmp_path / "x.json"))

    # get / list (paged: one function a page makes the CLI follow NextMarker)
    cli.ok("create-function", "--function-name", "cli-other", "--runtime", "nodejs20.x",
           "--handler", "index.handler", "--role", LAMBDA_ROLE, "--zip-file", f"fileb://{v1}")
    got = cli.ok("get-function", "--function-name", "cli-fn")
    assert got["Configuration"]["CodeSha256"] == conf["CodeSha256"]
    assert cli.ok("get-function-configuration", "--function-name",
                  "arn:aws:lambda:us-east-1:000000000000:function:cli-fn")["Handler"] == "app.handler"
    listed = cli.ok("list-functions", "--page-size", "1")
    assert sorted(f["FunctionName"] for f in listed["Functions"]) == ["cli-fn", "cli-other"]
    cli.ok("delete-function", "--function-name", "cli-other")

    # update code -> the next invocation runs the new code
    updated = cli.ok("update-function-code", "--function-name", "cli-fn", "--zip-file", f"fileb://{v2}")
    assert updated["CodeSha256"] != conf["CodeSha256"]
    assert cli.invoke("cli-fn", {})[1]["code"] == "v2"

    # update configuration (timeout, env)
    updated = cli.ok("update-function-configuration", "--function-name", "cli-fn", "--timeout", "1",
                     "--environment", "Variables={STAGE=two}")
    assert updated["Timeout"] == 1 and updated["Environment"]["Variables"] == {"STAGE": "two"}
    assert cli.invoke("cli-fn", {})[1]["stage"] == "two"

    # concurrency -> max_instances
    assert cli.ok("put-function-concurrency", "--function-name", "cli-fn",
                  "--reserved-concurrent-executions", "3") == {"ReservedConcurrentExecutions": 3}
    assert cli.ok("get-function-concurrency", "--function-name", "cli-fn") == {
        "ReservedConcurrentExecutions": 3}
    assert d.get("/v1/functions/cli-fn").json()["max_instances"] == 3
    cli.ok("delete-function-concurrency", "--function-name", "cli-fn")
    assert cli.ok("get-function-concurrency", "--function-name", "cli-fn") in (None, {})
    assert d.get("/v1/functions/cli-fn").json()["max_instances"] == 10

    # event invoke config -> the async retry policy
    eic = cli.ok("put-function-event-invoke-config", "--function-name", "cli-fn",
                 "--maximum-retry-attempts", "1", "--maximum-event-age-in-seconds", "120")
    assert eic["MaximumRetryAttempts"] == 1 and eic["MaximumEventAgeInSeconds"] == 120
    retry = d.get("/v1/functions/cli-fn").json()["retry"]
    assert retry["max_attempts"] == 2 and retry["max_event_age_s"] == 120
    eic = cli.ok("update-function-event-invoke-config", "--function-name", "cli-fn",
                 "--maximum-retry-attempts", "0")
    assert eic["MaximumRetryAttempts"] == 0 and eic["MaximumEventAgeInSeconds"] == 120
    assert cli.ok("get-function-event-invoke-config", "--function-name", "cli-fn")[
        "MaximumRetryAttempts"] == 0
    cli.ok("delete-function-event-invoke-config", "--function-name", "cli-fn")
    eic = cli.ok("get-function-event-invoke-config", "--function-name", "cli-fn")
    assert eic["MaximumRetryAttempts"] == 2 and eic["MaximumEventAgeInSeconds"] == 21600

    # publish a version, change $LATEST, invoke both by qualifier
    published = cli.ok("publish-version", "--function-name", "cli-fn")
    assert published["Version"] == "1"
    assert published["FunctionArn"].endswith(":function:cli-fn:1")
    assert cli.ok("publish-version", "--function-name", "cli-fn")["Version"] == "1"  # unchanged
    cli.ok("update-function-code", "--function-name", "cli-fn", "--zip-file", f"fileb://{v1}")
    # Tail: the invocation's log with Lambda's START/END/REPORT lines (a cold start:
    # $LATEST was just updated, so the REPORT line has the init duration)
    meta, res = cli.invoke("cli-fn", {"log": "tail me"}, "--log-type", "Tail")
    log = base64.b64decode(meta["LogResult"]).decode()
    rid = res["request_id"]
    assert f"START RequestId: {rid}" in log and "tail me" in log
    assert f"END RequestId: {rid}" in log and f"REPORT RequestId: {rid}" in log
    assert "Billed Duration:" in log and "Memory Size: 256 MB" in log
    assert "Init Duration:" in log
    meta, res = cli.invoke("cli-fn", {}, "--qualifier", "1")
    assert meta["ExecutedVersion"] == "1" and res["code"] == "v2" and res["version"] == "1"
    assert res["env_version"] == "1" and res["arn"].endswith(":cli-fn:1")
    meta, res = cli.invoke("cli-fn:1", {})
    assert meta["ExecutedVersion"] == "1" and res["code"] == "v2"
    meta, res = cli.invoke("cli-fn", {}, "--qualifier", "$LATEST")
    assert meta["ExecutedVersion"] == "$LATEST" and res["code"] == "v1"
    versions = cli.ok("list-versions-by-function", "--function-name", "cli-fn")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]
    assert "Function not found" in cli.fails("invoke", "--function-name", "cli-fn",
                                             "--qualifier", "7", str(tmp_path / "x.json"))
    # published versions survive a restart
    d.restart()
    cli = Cli(d, tmp_path)
    meta, res = cli.invoke("cli-fn", {}, "--qualifier", "1")
    assert meta["ExecutedVersion"] == "1" and res["code"] == "v2"

    # error cases
    assert "ResourceNotFoundException" in cli.fails("invoke", "--function-name", "no-such-fn",
                                                    str(tmp_path / "x.json"))
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"pad": "x" * (7 * 1024 * 1024)}))
    assert "RequestTooLargeException" in cli.fails("invoke", "--function-name", "cli-fn",
                                                   "--payload", f"fileb://{big}",
                                                   str(tmp_path / "x.json"))
    meta, res = cli.invoke("cli-fn", {"fail": "boom"})
    assert meta["StatusCode"] == 200 and meta["FunctionError"] == "Unhandled"
    assert res["errorType"] == "ValueError" and res["errorMessage"] == "boom"
    assert isinstance(res["stackTrace"], list) and res["stackTrace"]
    meta, res = cli.invoke("cli-fn", {"sleep": 3})  # the timeout is 1 s now
    assert meta["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in res["errorMessage"]
    assert "InvalidRequestContentException" in cli.fails(
        "invoke", "--function-name", "cli-fn", "--cli-binary-format", "raw-in-base64-out",
        "--payload", "not json", str(tmp_path / "x.json"))

    # delete
    cli.ok("delete-function", "--function-name", "cli-fn")
    assert "ResourceNotFoundException" in cli.fails("get-function", "--function-name", "cli-fn")
    assert d.get("/v1/functions/cli-fn").status == 404
    d.restart()
    assert d.get("/v1/functions/cli-fn").status == 404
    assert not os.path.exists(os.path.join(d.data, "functions", "cli-fn"))
