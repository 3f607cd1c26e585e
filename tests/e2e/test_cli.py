"""The client commands of the fnd binary against a real daemon: deploy (folder and zip),
invoke (--data forms, --tail, --json), ls, get, logs (-f, --since, --json), rm, error
exit codes and messages, token discovery, upload progress."""
import json
import os
import subprocess
import time

from fndtest import FND_BIN, zip_bytes

APP = """import sys
def handler(event, context):
    print("got", event.get("n"))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"n": event.get("n"), "greeting": __import__("os").environ.get("GREETING")}
"""


def fnd(d, *args, env=None, input=None, timeout=60, token=True):
    e = {k: v for k, v in os.environ.items() if k not in ("FND_AUTH_TOKEN", "FND_DATA")}
    e["FND_URL"] = d.url if d else "http://127.0.0.1:1"
    if d and token:
        e["FND_DATA"] = d.data  # the CLI finds auth-token there by itself
    e.update(env or {})
    return subprocess.run([FND_BIN, *args], capture_output=True, text=True, env=e,
                          input=input, timeout=timeout)


def make_app(tmp_path, text=APP):
    code = tmp_path / "app"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(text)
    return str(code)


def test_deploy_invoke_ls_get_rm(daemon, tmp_path):
    code = make_app(tmp_path)
    r = fnd(daemon, "deploy", code, "--name", "hello", "--runtime", "python3", "--handler",
            "app.handler", "--env", "GREETING=hi", "--memory", "256", "--timeout", "5000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("created hello version 1 (python3, ")
    r = fnd(daemon, "deploy", code, "--name", "hello", "--runtime", "python3", "--handler",
            "app.handler", "--env", "GREETING=hi", "--memory", "256", "--json")
    assert r.returncode == 0
    info = json.loads(r.stdout)
    assert info["version"] == 2 and info["memory_mb"] == 256 and info["env"] == {"GREETING": "hi"}

    r = fnd(daemon, "invoke", "hello", "--data", '{"n": 1}')
    assert r.returncode == 0 and json.loads(r.stdout) == {"n": 1, "greeting": "hi"}
    event = tmp_path / "event.json"
    event.write_text('{"n": 2}')
    assert json.loads(fnd(daemon, "invoke", "hello", "--data", "@" + str(event)).stdout)["n"] == 2
    assert json.loads(fnd(daemon, "invoke", "hello", "--data", "-",
                          input='{"n": 3}').stdout)["n"] == 3
    r = fnd(daemon, "invoke", "hello", "--data", '{"n": 4}', "--tail")
    assert r.returncode == 0 and json.loads(r.stdout)["n"] == 4
    assert r.stderr.startswith("START RequestId: ") and "\ngot 4\n" in r.stderr
    assert "\nREPORT RequestId: " in r.stderr
    r = fnd(daemon, "invoke", "hello", "--data", '{"n": 5}', "--json", "--tail")
    out = json.loads(r.stdout)
    assert out["status"] == 200 and out["function_error"] is False
    assert out["payload"] == {"n": 5, "greeting": "hi"} and "got 5" in out["log"]
    assert len(out["request_id"]) == 36 and out["traceparent"].startswith("00-")
    r = fnd(daemon, "invoke", "hello", "--data", '{"fail": true}', "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["payload"]["errorType"] == "ValueError"
    assert fnd(daemon, "invoke", "hello", "--data", "not json").returncode == 6
    # --async: accepted with an id that fnd status follows to the result
    r = fnd(daemon, "invoke", "hello", "--data", '{"n": 6}', "--async")
    assert r.returncode == 0 and r.stdout.startswith("accepted "), (r.stdout, r.stderr)
    inv = r.stdout.split()[1]
    assert len(inv) == 36 and f"fnd status {inv}" in r.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = json.loads(fnd(daemon, "status", inv, "--json").stdout)
        if st["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert st["status"] == "succeeded" and st["result"] == {"n": 6, "greeting": "hi"}
    r = fnd(daemon, "status", inv)
    assert r.returncode == 0 and "status         succeeded" in r.stdout
    r = fnd(daemon, "invoke", "hello", "--async", "--json")
    out = json.loads(r.stdout)
    assert out["status"] == 202 and out["location"] == "/v1/invocations/" + out["request_id"]
    # --idempotency-key: the second call is answered from the first, same id
    first = json.loads(fnd(daemon, "invoke", "hello", "--data", '{"n": 7}',
                           "--idempotency-key", "k-1", "--json").stdout)
    again = json.loads(fnd(daemon, "invoke", "hello", "--data", '{"n": 7}',
                           "--idempotency-key", "k-1", "--json").stdout)
    assert first["payload"]["n"] == 7 and again["request_id"] == first["request_id"]
    r = fnd(daemon, "invoke", "hello", "--data", '{"n": 8}', "--idempotency-key", "k-1")
    assert r.returncode == 6 and "different payload" in r.stderr

    r = fnd(daemon, "ls")
    assert r.returncode == 0
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "RUNTIME", "HANDLER", "VERSION", "MEMORY"]
    assert row.split()[:4] == ["hello", "python3", "app.handler", "2"]
    listed = json.loads(fnd(daemon, "ls", "--json").stdout)
    assert [f["name"] for f in listed] == ["hello"]
    r = fnd(daemon, "get", "hello")
    assert r.returncode == 0 and "handler        app.handler" in r.stdout and "state:" in r.stdout
    got = json.loads(fnd(daemon, "get", "hello", "--json").stdout)
    assert got["state"]["invocations"] >= 6

    r = fnd(daemon, "status", "00000000-0000-4000-8000-000000000000")
    assert r.returncode == 3 and "no such invocation" in r.stderr
    r = fnd(daemon, "rm", "hello")
    assert r.returncode == 0 and r.stdout == "deleted hello\n"
    r = fnd(daemon, "get", "hello")
    assert r.returncode == 3 and "function hello does not exist" in r.stderr
    assert fnd(daemon, "invoke", "hello").returncode == 3
    assert fnd(daemon, "rm", "hello", "--json").returncode == 3


def test_deploy_zip_and_errors(daemon, tmp_path):
    z = tmp_path / "code.zip"
    z.write_bytes(zip_bytes({"index.js": "exports.handler = async (e) => ({node: e.x});\n"}))
    r = fnd(daemon, "deploy", str(z), "--name", "zipped", "--runtime", "nodejs", "--handler",
            "index.handler")
    assert r.returncode == 0, r.stderr
    assert json.loads(fnd(daemon, "invoke", "zipped", "--data", '{"x": 7}').stdout) == {"node": 7}
    # the command line is wrong: 2, with what is missing
    r = fnd(daemon, "deploy", str(z), "--name", "x")
    assert r.returncode == 2 and "missing --runtime" in r.stderr
    r = fnd(daemon, "deploy", str(tmp_path / "nowhere"), "--name", "x", "--runtime", "python3",
            "--handler", "a.b")
    assert r.returncode == 2 and "nowhere" in r.stderr
    assert fnd(daemon, "invoke").returncode == 2
    assert fnd(daemon, "ls", "extra").returncode == 2
    assert fnd(daemon, "deploy", str(z), "--bogus").returncode == 2
    # the daemon refuses: 6, with its reason
    r = fnd(daemon, "deploy", str(z), "--name", "bad", "--runtime", "cobol", "--handler", "a.b")
    assert r.returncode == 6 and "runtime" in r.stderr
    r = fnd(daemon, "deploy", str(z), "--name", "bad", "--runtime", "nodejs", "--handler",
            "index.handler", "--memory", "lots")
    assert r.returncode == 2


def test_token_discovery_and_reachability(daemon, tmp_path):
    r = fnd(daemon, "ls", token=False)
    assert r.returncode == 4 and "no token found" in r.stderr
    r = fnd(daemon, "ls", token=False, env={"FND_AUTH_TOKEN": "x" * 20})
    assert r.returncode == 4 and "was refused" in r.stderr
    assert fnd(daemon, "ls", token=False, env={"FND_AUTH_TOKEN": daemon.token}).returncode == 0
    assert fnd(daemon, "ls", "--token", daemon.token, token=False).returncode == 0
    r = fnd(None, "ls")
    assert r.returncode == 5 and "cannot reach the daemon at http://127.0.0.1:1" in r.stderr
    r = fnd(daemon, "ls", env={"FND_URL": "https://example.invalid"})
    assert r.returncode == 2 and "http://HOST:PORT" in r.stderr


def test_logs_since_follow_and_json(daemon, tmp_path):
    code = make_app(tmp_path)
    assert fnd(daemon, "deploy", code, "--name", "lg", "--runtime", "python3", "--handler",
               "app.handler").returncode == 0
    fnd(daemon, "invoke", "lg", "--data", '{"n": 1}')
    r = fnd(daemon, "logs", "lg")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(line.endswith(" got 1") for line in lines) and "START RequestId:" in lines[0]
    recs = [json.loads(line) for line in fnd(daemon, "logs", "lg", "--json").stdout.splitlines()]
    assert {"time", "request_id", "stream", "text"} == set(recs[0])
    assert ["stdout", "got 1"] in [[x["stream"], x["text"]] for x in recs]
    time.sleep(1.1)
    assert fnd(daemon, "logs", "lg", "--since", "1s").stdout == ""
    assert fnd(daemon, "logs", "lg", "--since", "soon").returncode == 6
    assert fnd(daemon, "logs", "nope").returncode == 3

    env = {k: v for k, v in os.environ.items() if k not in ("FND_AUTH_TOKEN",)}
    env.update(FND_URL=daemon.url, FND_DATA=daemon.data)
    follower = subprocess.Popen([FND_BIN, "logs", "lg", "-f", "--since", "1s"],
                                stdout=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(0.5)
        fnd(daemon, "invoke", "lg", "--data", '{"n": 42}')
        got = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("REPORT" in x for x in got):
            got.append(follower.stdout.readline())
        assert any(x.rstrip().endswith(" got 42") for x in got), got
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_upload_progress_and_size_limit(start_daemon, tmp_path):
    daemon = start_daemon()
    code = make_app(tmp_path)
    with open(os.path.join(code, "blob.bin"), "wb") as f:
        f.write(os.urandom(3 << 20))  # incompressible: the upload is ~4 MB of base64
    r = fnd(daemon, "deploy", code, "--name", "big", "--runtime", "python3", "--handler",
            "app.handler", "--progress")
    assert r.returncode == 0, r.stderr
    assert "uploading" in r.stderr and "(100%)" in r.stderr
    assert fnd(daemon, "invoke", "big", "--data", '{"n": 0}').returncode == 0
    small = start_daemon("--max-body", "1M")
    r = fnd(small, "deploy", code, "--name", "big", "--runtime", "python3", "--handler",
            "app.handler")
    assert r.returncode == 6 and "larger --max-body" in r.stderr, r.stderr


def test_help_lists_commands_and_exit_codes():
    r = subprocess.run([FND_BIN, "help"], capture_output=True, text=True, timeout=10)
    for word in ("deploy", "invoke", "logs NAME", "status ID", "rm NAME", "dev DIR",
                 "--json", "exit codes:", "  4  the daemon refused the token"):
        assert word in r.stdout, word
