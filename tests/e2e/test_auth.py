"""Control-plane auth: the generated token file, 401 on control endpoints without the
right bearer token, invocation open on loopback (or not, by setting), a given token,
and refusal to listen beyond loopback without one. The token never reaches the log."""
import http.client
import os
import re
import stat
import subprocess
import time

from fndtest import FND_BIN

PY = "def handler(event, context):\n    return {'ok': True}\n"


def deploy_ok(d, tmp_path):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(PY)
    assert d.deploy("ok", "python3", "app.handler", str(code)).status == 201


def test_token_file_and_control_endpoints(daemon, tmp_path):
    path = os.path.join(daemon.data, "auth-token")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    token = daemon.token
    assert len(token) == 64 and int(token, 16) >= 0
    deploy_ok(daemon, tmp_path)
    control = [("GET", "/v1/functions"), ("GET", "/v1/functions/ok"),
               ("PUT", "/v1/functions/ok"), ("DELETE", "/v1/functions/ok"),
               ("PUT", "/v1/functions/ok/code"), ("GET", "/v1/stats"), ("GET", "/v1/info"),
               ("GET", "/v1/functions/ok/logs")]
    for bad in (None, "Bearer wrong", "Bearer " + token[:-1], "Basic " + token, token):
        headers = {"Authorization": bad} if bad else {}
        for method, path in control:
            r = daemon.request(method, path, body=b"{}", headers=headers, auth=False)
            assert r.status == 401, (method, path, bad, r)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["error"]["code"] == "unauthorized"
    assert daemon.get("/healthz", auth=False).status == 200
    # the function is still there: nothing above changed it
    assert daemon.get("/v1/functions/ok").status == 200
    assert daemon.get("/v1/functions/ok", headers={"Authorization": "bearer " + token},
                      auth=False).status == 200
    # invocation is open on loopback by default
    assert daemon.request("POST", "/v1/functions/ok/invoke", b"{}", auth=False).status == 200
    # the same token after a restart
    daemon.restart()
    assert daemon.token == token
    assert daemon.get("/v1/functions").status == 200
    assert token not in daemon.log()


def test_invoke_needs_token_when_asked(start_daemon, tmp_path):
    d = start_daemon("--invoke-auth", "none")
    deploy_ok(d, tmp_path)
    assert d.request("POST", "/v1/functions/ok/invoke", b"{}", auth=False).status == 401
    assert d.request("POST", "/v1/functions/ok/invoke", b"{}").status == 200


def test_given_token_and_print_config(start_daemon, tmp_path):
    token = "s3cret-token-for-tests-0123456789"
    d = start_daemon("--auth-token", token)
    assert not os.path.exists(os.path.join(d.data, "auth-token"))
    assert d.get("/v1/functions").status == 200
    assert d.get("/v1/functions", headers={"Authorization": "Bearer nope-nope-nope-nope"},
                 auth=False).status == 401
    assert token not in d.log()
    out = subprocess.run([FND_BIN, "serve", "--auth-token", token, "--print-config"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "auth-token = (set)" in out.stdout and token not in out.stdout
    env = dict(os.environ, FND_AUTH_TOKEN=token)
    out = subprocess.run([FND_BIN, "serve", "--print-config"], capture_output=True, text=True,
                         timeout=10, env=env)
    assert "auth-token = (set)" in out.stdout
    # a token too short to be one is refused
    out = subprocess.run([FND_BIN, "serve", "--listen", "127.0.0.1:0", "--data",
                          str(tmp_path / "short"), "--auth-token", "abc"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "auth-token" in out.stderr


def test_non_loopback_needs_a_given_token(tmp_path):
    data = str(tmp_path / "data")
    for listen in ("0.0.0.0:0", "[::]:0"):
        out = subprocess.run([FND_BIN, "serve", "--listen", listen, "--data", data],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 2, out
        assert "refusing to listen on a non-loopback address without a token" in out.stderr
    # with a token given it serves (the test still talks to it over loopback only)
    log = tmp_path / "wide.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([FND_BIN, "serve", "--listen", "0.0.0.0:0", "--data", data,
                                 "--auth-token", "a-long-enough-token-000"],
                                stdout=f, stderr=f, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        m = None
        while m is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            m = re.search(r"msg=listening addr=0\.0\.0\.0:(\d+)", log.read_text())
        assert m, log.read_text()
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        conn.request("GET", "/v1/functions",
                     headers={"Authorization": "Bearer a-long-enough-token-000"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_loose_token_file_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "auth-token").write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(data / "auth-token", 0o644)
    out = subprocess.run([FND_BIN, "serve", "--listen", "127.0.0.1:0", "--data", str(data)],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "chmod 600" in out.stderr
