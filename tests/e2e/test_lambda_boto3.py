"""boto3 (Debian's python3-boto3) against fnd's Lambda API, unchanged but for
endpoint_url: the same life of a function as the CLI test, through the SDK's own
request signing, serialisation and error parsing."""
import base64
import json
import os
import subprocess
import time

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from fndtest import LAMBDA_ROLE, aws_env, lambda_zip


def make_client(d):
    os.environ.update(aws_env())  # no credential or region lookups beyond the environment
    return boto3.client(
        "lambda", endpoint_url=d.url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                      read_timeout=60, connect_timeout=5))


def call(lam, name, payload, **kw):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), **kw)
    return r, json.loads(r["Payload"].read())


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_boto3_function_lifecycle(start_daemon):
    d = start_daemon("--max-body", "16M")
    lam = make_client(d)

    conf = lam.create_function(FunctionName="boto-fn", Runtime="python3.11", Role=LAMBDA_ROLE,
                               Handler="app.handler", Code={"ZipFile": lambda_zip("v1")},
                               Timeout=4, MemorySize=192,
                               Environment={"Variables": {"STAGE": "one"}})
    assert conf["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert conf["FunctionName"] == "boto-fn" and conf["Version"] == "$LATEST"
    assert conf["Timeout"] == 4 and conf["MemorySize"] == 192 and conf["State"] == "Active"
    assert d.get("/v1/functions/boto-fn").json()["timeout_ms"] == 4000

    # invoke sync with a client context (base64 JSON, as the SDK wants it)
    cc = base64.b64encode(json.dumps({"custom": {"from": "boto3"}}).encode()).decode()
    r, res = call(lam, "boto-fn", {"n": 2}, ClientContext=cc)
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in r
    assert res["code"] == "v1" and res["stage"] == "one" and res["custom"] == {"from": "boto3"}
    assert res["request_id"] == r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert lam.invoke(FunctionName="boto-fn", InvocationType="DryRun")["StatusCode"] == 204

    # Event: 202 once durable, the request id is the async invocation's id on /v1
    r = lam.invoke(FunctionName="boto-fn", InvocationType="Event", Payload=b'{"n": 3}')
    assert r["StatusCode"] == 202
    inv_id = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = d.get(f"/v1/invocations/{inv_id}").json()
        if status["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert status["status"] == "succeeded", status
    assert status["result"]["event"] == {"n": 3}

    # get / list with Marker paging done by hand
    lam.create_function(FunctionName="boto-aaa", Runtime="provided.al2023", Role=LAMBDA_ROLE,
                        Handler="x", Code={"ZipFile": lambda_zip("v1")})
    assert lam.get_function(FunctionName="boto-fn")["Configuration"]["Handler"] == "app.handler"
    assert lam.get_function_configuration(FunctionName="boto-aaa")["Runtime"] == "provided.al2023"
    page = lam.list_functions(MaxItems=1)
    assert [f["FunctionName"] for f in page["Functions"]] == ["boto-aaa"]
    page2 = lam.list_functions(MaxItems=1, Marker=page["NextMarker"])
    assert [f["FunctionName"] for f in page2["Functions"]] == ["boto-fn"]
    assert "NextMarker" not in page2
    lam.delete_function(FunctionName="boto-aaa")

    # update code, then configuration
    lam.update_function_code(FunctionName="boto-fn", ZipFile=lambda_zip("v2"))
    assert call(lam, "boto-fn", {})[1]["code"] == "v2"
    conf = lam.update_function_configuration(FunctionName="boto-fn", Timeout=1,
                                             Environment={"Variables": {"STAGE": "two"}})
    assert conf["Timeout"] == 1
    assert call(lam, "boto-fn", {})[1]["stage"] == "two"

    # concurrency
    assert lam.put_function_concurrency(FunctionName="boto-fn", ReservedConcurrentExecutions=2)[
        "ReservedConcurrentExecutions"] == 2
    assert lam.get_function(FunctionName="boto-fn")["Concurrency"] == {
        "ReservedConcurrentExecutions": 2}
    assert d.get("/v1/functions/boto-fn").json()["max_instances"] == 2
    lam.delete_function_concurrency(FunctionName="boto-fn")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="boto-fn")

    # event invoke config
    eic = lam.put_function_event_invoke_config(FunctionName="boto-fn", MaximumRetryAttempts=0,
                                               MaximumEventAgeInSeconds=300)
    assert eic["MaximumRetryAttempts"] == 0 and eic["MaximumEventAgeInSeconds"] == 300
    assert d.get("/v1/functions/boto-fn").json()["retry"]["max_attempts"] == 1
    assert lam.get_function_event_invoke_config(FunctionName="boto-fn")[
        "MaximumEventAgeInSeconds"] == 300
    lam.delete_function_event_invoke_config(FunctionName="boto-fn")
    assert d.get("/v1/functions/boto-fn").json()["retry"]["max_attempts"] == 3

    # publish and invoke by qualifier
    v = lam.publish_version(FunctionName="boto-fn")
    assert v["Version"] == "1"
    lam.update_function_code(FunctionName="boto-fn", ZipFile=lambda_zip("v3"), Publish=True)
    r, res = call(lam, "boto-fn", {}, Qualifier="1")
    assert r["ExecutedVersion"] == "1" and res["code"] == "v2"
    r, res = call(lam, "boto-fn:2", {})
    assert r["ExecutedVersion"] == "2" and res["code"] == "v3"
    r, res = call(lam, "arn:aws:lambda:us-east-1:000000000000:function:boto-fn", {})
    assert r["ExecutedVersion"] == "$LATEST" and res["code"] == "v3"
    assert [x["Version"] for x in lam.list_versions_by_function(FunctionName="boto-fn")[
        "Versions"]] == ["$LATEST", "1", "2"]

    # Tail
    r, res = call(lam, "boto-fn", {"log": "boto tail"}, LogType="Tail")
    log = base64.b64decode(r["LogResult"]).decode()
    assert f"START RequestId: {res['request_id']}" in log and "boto tail" in log
    assert f"REPORT RequestId: {res['request_id']}" in log and "Duration:" in log

    # errors
    with pytest.raises(ClientError) as e:
        call(lam, "boto-missing", {})
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        call(lam, "boto-fn", {"pad": "x" * (6 * 1024 * 1024 + 1)})
    assert error_code(e) == "RequestTooLargeException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    r, res = call(lam, "boto-fn", {"fail": "bad input"})
    assert r["FunctionError"] == "Unhandled" and res["errorType"] == "ValueError"
    assert res["errorMessage"] == "bad input" and res["stackTrace"]
    r, res = call(lam, "boto-fn", {"sleep": 3})
    assert r["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in res["errorMessage"]
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName="boto-bad", Runtime="ruby3.3", Role=LAMBDA_ROLE,
                            Handler="x.y", Code={"ZipFile": lambda_zip("v1")})
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName="boto-fn", Runtime="python3.11", Role=LAMBDA_ROLE,
                            Handler="app.handler", Code={"ZipFile": lambda_zip("v1")})
    assert error_code(e) == "ResourceConflictException"

    settings = lam.get_account_settings()
    assert settings["AccountUsage"]["FunctionCount"] == 1

    lam.delete_function(FunctionName="boto-fn")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName="boto-fn")
    assert error_code(e) == "ResourceNotFoundException"


def test_lambda_auth(start_daemon):
    """AWS clients cannot send fnd's bearer token: by default (--lambda-auth loopback)
    loopback peers use the Lambda control plane without it; with --lambda-auth none it
    needs the token, while Invoke keeps following --invoke-auth."""
    d = start_daemon()
    assert d.request("GET", "/2015-03-31/functions/", auth=False).status == 200
    assert d.request("GET", "/v1/functions", auth=False).status == 401  # native: the token

    d = start_daemon("--lambda-auth", "none")
    lam = make_client(d)
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName="locked", Runtime="python3.11", Role=LAMBDA_ROLE,
                            Handler="app.handler", Code={"ZipFile": lambda_zip("v1")})
    assert error_code(e) == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    body = {"FunctionName": "locked", "Runtime": "python3.11", "Role": LAMBDA_ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": base64.b64encode(lambda_zip("v1")).decode()}}
    assert d.request("POST", "/2015-03-31/functions", body).status == 201  # with the token
    assert call(lam, "locked", {"k": 1})[1]["event"] == {"k": 1}  # invoke: loopback is enough
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName="locked")
    assert error_code(e) == "AccessDeniedException"


def test_lambda_auth_sigv4(start_daemon, tmp_path):
    """--lambda-auth sigv4: the SDK signs with the daemon's token as its secret access
    key, and fnd checks the signature; a wrong secret is refused."""
    d = start_daemon("--lambda-auth", "sigv4", "--invoke-auth", "none")
    os.environ.update(aws_env())
    good = boto3.client("lambda", endpoint_url=d.url, region_name="us-east-1",
                        aws_access_key_id="anything", aws_secret_access_key=d.token,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
    bad = boto3.client("lambda", endpoint_url=d.url, region_name="us-east-1",
                       aws_access_key_id="anything", aws_secret_access_key="not-the-token",
                       config=botocore.config.Config(retries={"max_attempts": 1}))
    good.create_function(FunctionName="signed", Runtime="python3.11", Role=LAMBDA_ROLE,
                         Handler="app.handler", Code={"ZipFile": lambda_zip("v1")})
    good.publish_version(FunctionName="signed")
    # a path with an escaped ARN, a query string and a body, all under the signature
    arn = "arn:aws:lambda:us-east-1:000000000000:function:signed"
    assert good.get_function_configuration(FunctionName=arn, Qualifier="1")["Version"] == "1"
    r, res = call(good, "signed", {"signed": "yes"}, Qualifier="$LATEST")
    assert res["event"] == {"signed": "yes"}
    for op in (lambda: bad.get_function(FunctionName="signed"),
               lambda: call(bad, "signed", {})):
        with pytest.raises(ClientError) as e:
            op()
        assert error_code(e) == "AccessDeniedException"
    # the AWS CLI signs the same way
    env = aws_env({"AWS_SECRET_ACCESS_KEY": d.token})
    p = subprocess.run(["/usr/bin/aws", "--endpoint-url", d.url, "lambda", "list-functions"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert [f["FunctionName"] for f in json.loads(p.stdout)["Functions"]] == ["signed"]


def test_lambda_body_repeating_a_member_is_refused(start_daemon):
    """A Lambda API body that repeats a top-level member is a client's mistake: 400
    InvalidRequestContentException naming the member, and nothing changes."""
    d = start_daemon()
    zipped = base64.b64encode(lambda_zip()).decode()
    create = ('{"FunctionName": "dup", "Runtime": "python3.12", "Handler": "app.handler", '
              f'"Role": "{LAMBDA_ROLE}", "Code": {{"ZipFile": "{zipped}"}}, '
              '"Timeout": 30, "Timeout": 31}')
    r = d.request("POST", "/2015-03-31/functions", create)
    assert r.status == 400, r
    assert r.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert "Timeout" in r.json()["message"]
    assert d.request("GET", "/2015-03-31/functions/dup").status == 404
    r = d.request("POST", "/2015-03-31/functions", create.replace(', "Timeout": 31', ""))
    assert r.status == 201, r
    before = d.request("GET", "/2015-03-31/functions/dup/configuration").json()
    assert before["Timeout"] == 30
    r = d.request("PUT", "/2015-03-31/functions/dup/configuration",
                  '{"MemorySize": 256, "Description": "x", "MemorySize": 512}')
    assert r.status == 400 and "MemorySize" in r.json()["message"], r
    r = d.request("PUT", "/2017-10-31/functions/dup/concurrency",
                  '{"ReservedConcurrentExecutions": 2, "ReservedConcurrentExecutions": 3}')
    assert r.status == 400 and "ReservedConcurrentExecutions" in r.json()["message"], r
    assert d.request("GET", "/2015-03-31/functions/dup/configuration").json() == before
    assert "ReservedConcurrentExecutions" not in \
        d.request("GET", "/2019-09-30/functions/dup/concurrency").json()
