"""Deploying, listing, replacing and deleting functions; validation; hostile bundles;
the bundle helper; persistence across restarts."""
import base64
import os
import shutil
import subprocess

from fndtest import FND_BIN, FUNCTIONS, zip_bytes

APP = {"app.py": "def handler(event, context):\n    return {'v': 1}\n"}
APP2 = {"app.py": "def handler(event, context):\n    return {'v': 2}\n"}


def test_create_replace_get_list(daemon):
    r = daemon.deploy("b-fn", "python3", "app.handler", zip_bytes(APP))
    assert r.status == 201, r
    v1 = r.json()
    assert v1["version"] == 1 and v1["name"] == "b-fn" and len(v1["code_sha256"]) == 64
    assert v1["memory_mb"] == 128 and v1["timeout_ms"] == 3000 and v1["max_instances"] == 10
    r = daemon.deploy("b-fn", "python3", "app.handler", zip_bytes(APP2), memory_mb=256)
    assert r.status == 200, r
    v2 = r.json()
    assert v2["version"] == 2 and v2["memory_mb"] == 256 and v2["code_sha256"] != v1["code_sha256"]
    assert daemon.invoke("b-fn").json() == {"v": 2}
    daemon.deploy("a-fn", "python3", "app.handler", zip_bytes(APP))
    names = [f["name"] for f in daemon.get("/v1/functions").json()["functions"]]
    assert names == ["a-fn", "b-fn"]
    got = daemon.get("/v1/functions/b-fn").json()
    assert got["version"] == 2 and "state" in got and "instances" in got["state"]
    # config only: code is kept
    r = daemon.deploy("b-fn", "python3", "app.handler", None, timeout_ms=5000)
    assert r.status == 200 and r.json()["code_sha256"] == v2["code_sha256"], r
    assert r.json()["version"] == 3


def test_code_endpoint_and_dir_source(daemon):
    r = daemon.request("PUT", "/v1/functions/nope/code", zip_bytes(APP),
                       {"Content-Type": "application/zip"})
    assert r.status == 404
    r = daemon.deploy("d-fn", "python3", "app.echo", os.path.join(FUNCTIONS, "py"))
    assert r.status == 201, r
    r = daemon.request("PUT", "/v1/functions/d-fn/code", zip_bytes(
        {"app.py": "def echo(event, context):\n    return 'new'\n"}),
        {"Content-Type": "application/zip"})
    assert r.status == 200 and r.json()["version"] == 2, r
    assert daemon.invoke("d-fn").json() == "new"


def test_validation_names_the_field(daemon):
    code = zip_bytes(APP)
    cases = [
        (dict(runtime="cobol"), "runtime"),
        (dict(handler="../x.handler"), "handler"),
        (dict(handler="nodot"), "handler"),
        (dict(memory_mb=1), "memory_mb"),
        (dict(timeout_ms=0), "timeout_ms"),
        (dict(max_instances=1.5), "max_instances"),
        (dict(min_warm=5, max_instances=2), "min_warm"),
        (dict(env={"AWS_LAMBDA_FUNCTION_NAME": "x"}), "env"),
        (dict(env={"BAD-NAME": "x"}), "env"),
        (dict(colour="blue"), "colour"),
    ]
    for extra, field in cases:
        body = {"runtime": "python3", "handler": "app.handler",
                "code": {"zip": base64.b64encode(code).decode()}, **extra}
        r = daemon.request("PUT", "/v1/functions/v-fn", body)
        assert r.status == 400, (extra, r)
        assert r.json()["error"]["message"].startswith(field), (extra, r)
    for bad in ("has space", "a" * 65, "dot.name", "slash%2F"):
        r = daemon.request("PUT", f"/v1/functions/{bad.replace(' ', '%20')}",
                           {"runtime": "python3", "handler": "app.handler"})
        assert r.status in (400, 404), (bad, r)
    r = daemon.request("PUT", "/v1/functions/v-fn", b"{not json")
    assert r.status == 400 and r.json()["error"]["code"] == "bad_request"
    r = daemon.request("PUT", "/v1/functions/v-fn", {"runtime": "python3", "handler": "a.b"})
    assert r.status == 400 and r.json()["error"]["message"].startswith("code")
    r = daemon.request("PUT", "/v1/functions/v-fn", {"runtime": "python3", "handler": "a.b",
                                                      "code": {"zip": "!!notbase64!!"}})
    assert r.status == 400
    assert daemon.get("/v1/functions/v-fn").status == 404


def test_hostile_bundles_refused_previous_keeps_serving(daemon, tmp_path):
    assert daemon.deploy("h-fn", "python3", "app.handler", zip_bytes(APP)).status == 201
    outside = tmp_path / "escaped"
    hostile = {
        "zip-slip": zip_bytes({**APP, "../../escaped": "x"}),
        "absolute": zip_bytes({**APP, str(outside): "x"}),
        "link-out": zip_bytes(APP, symlinks={"etc": "/etc"}),
        "link-up": zip_bytes(APP, symlinks={"up": "../../.."}),
        "setuid": zip_bytes({**APP, "tool": "x"}, modes={"tool": 0o104755}),
        "device": zip_bytes({**APP, "dev": ""}, modes={"dev": 0o020644}),
        "corrupt": zip_bytes(APP)[:-30] + b"\x00" * 30,
        "not-zip": b"this is not a zip at all",
    }
    for label, z in hostile.items():
        r = daemon.deploy("h-fn", "python3", "app.handler", z)
        assert r.status == 400, (label, r)
        assert daemon.invoke("h-fn").json() == {"v": 1}, label
    assert not outside.exists()
    assert not os.path.exists(os.path.join(daemon.data, "..", "escaped"))
    assert daemon.get("/v1/functions/h-fn").json()["version"] == 1


def test_bundles_are_handled_by_the_helper_never_the_daemon(daemon):
    """fnd-bundle unpacks and zips: the daemon never maps libarchive, and the helper's
    refusals reach the client word for word."""
    assert daemon.deploy("m-zip", "python3", "app.handler", zip_bytes(APP)).status == 201
    r = daemon.deploy("m-dir", "python3", "app.echo", os.path.join(FUNCTIONS, "py"))
    assert r.status == 201, r
    r = daemon.deploy("m-zip", "python3", "app.handler", zip_bytes({**APP, "../x": "x"}))
    assert r.status == 400, r
    assert r.json()["error"]["message"] == "code: ../x: path leaves the bundle"
    assert daemon.invoke("m-zip").json() == {"v": 1}
    with open(f"/proc/{daemon.pid}/maps") as f:
        maps = f.read()
    assert "libarchive" not in maps and "libxml2" not in maps


def test_missing_bundle_helper_is_a_start_up_error(tmp_path):
    fnd = tmp_path / "fnd"  # a copy of the daemon with no fnd-bundle beside it
    shutil.copy(FND_BIN, fnd)
    out = subprocess.run([str(fnd), "serve", "--listen", "127.0.0.1:0", "--data",
                          str(tmp_path / "data")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out
    assert f"{tmp_path}/fnd-bundle: No such file or directory" in out.stderr, out.stderr


def test_bundle_size_limit(start_daemon):
    d = start_daemon("--max-code-size", "10K")
    r = d.deploy("big", "python3", "app.handler", zip_bytes({**APP, "blob": "x" * 50000}))
    assert r.status == 413, r
    assert d.get("/v1/functions/big").status == 404


def test_delete(daemon):
    daemon.deploy("del-fn", "python3", "app.handler", zip_bytes(APP))
    assert daemon.invoke("del-fn").status == 200
    assert daemon.request("DELETE", "/v1/functions/del-fn").status == 204
    assert daemon.get("/v1/functions/del-fn").status == 404
    assert daemon.invoke("del-fn").status == 404
    assert daemon.request("DELETE", "/v1/functions/del-fn").status == 404
    assert not os.path.exists(os.path.join(daemon.data, "functions", "del-fn", "function.json"))


def test_restart_keeps_every_function(daemon):
    before = {}
    for i in range(5):
        r = daemon.deploy(f"p{i}", "python3", "app.handler", zip_bytes(APP))
        before[f"p{i}"] = r.json()
    r = daemon.deploy("p0", "python3", "app.handler", zip_bytes(APP2))
    before["p0"] = r.json()
    daemon.restart()
    after = {f["name"]: f for f in daemon.get("/v1/functions").json()["functions"]}
    assert set(after) == set(before)
    for name, v in before.items():
        assert after[name]["version"] == v["version"]
        assert after[name]["code_sha256"] == v["code_sha256"]
    assert daemon.invoke("p0").json() == {"v": 2}
    assert daemon.invoke("p3").json() == {"v": 1}
    # the superseded code folder of p0 is gone
    code = os.listdir(os.path.join(daemon.data, "functions", "p0", "code"))
    assert code == [before["p0"]["code_sha256"]]


def test_interrupted_deploy_leftovers_cleaned(daemon):
    daemon.deploy("c-fn", "python3", "app.handler", zip_bytes(APP))
    fdir = os.path.join(daemon.data, "functions")
    os.makedirs(os.path.join(fdir, "c-fn", "tmp.deadbeef", "x"))
    os.makedirs(os.path.join(fdir, "half-created", "code", "abc"))
    daemon.restart()
    assert not os.path.exists(os.path.join(fdir, "c-fn", "tmp.deadbeef"))
    assert not os.path.exists(os.path.join(fdir, "half-created"))
    assert daemon.invoke("c-fn").json() == {"v": 1}
