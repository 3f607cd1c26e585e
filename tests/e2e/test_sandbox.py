"""The worker sandbox's resource layer: per-worker cgroups (memory with swap, pids) and
teardown that reaches every process a function started. Each attack has a positive
control, and a healthy function keeps answering while it runs.

NEEDSWORK: the rest of the escape suite (namespaces, filesystem, seccomp) arrives with
those layers."""
import os
import time

import pytest

from fndtest import BUILD_DIR, FUNCTIONS, alive

HOSTILE = os.path.join(FUNCTIONS, "hostile")
NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")


@pytest.fixture
def sandboxed(daemon):
    if "cgroups=v1" not in daemon.log():
        pytest.skip("cgroups are not available to this daemon: the layer is off")
    assert daemon.deploy("healthy", "native", "probe.echo", NATIVE).status == 201
    return daemon


def still_healthy(d):
    r = d.invoke("healthy", raw="ping")
    assert r.status == 200 and r.body == b"ping"


def test_startup_reports_the_layers(daemon):
    line = [l for l in daemon.log().splitlines() if "msg=sandbox " in l]
    assert line and "hygiene=on" in line[0] and "no_new_privs=on" in line[0]


def test_fork_bomb_is_contained(sandboxed):
    d = sandboxed
    d.deploy("forker", "python3", "attack.forks", HOSTILE)
    small = d.invoke("forker", {"n": 5}).json()
    assert small == {"forked": 5, "error": None}  # positive control: forking works
    bomb = d.invoke("forker", {"n": 500}).json()
    assert bomb["forked"] < 64 and bomb["error"], bomb  # pids.max stops it
    still_healthy(d)


def test_memory_bomb_is_reported_as_out_of_memory(sandboxed):
    d = sandboxed
    d.deploy("hog", "python3", "attack.memory", HOSTILE, memory_mb=128)
    assert d.invoke("hog", {"mb": 40}).json() == {"held_mb": 40}  # positive control
    r = d.invoke("hog", {"mb": 400})
    assert r.status == 502, r
    assert r.json()["errorType"] == "Runtime.OutOfMemory", r
    assert "out of memory" in r.json()["errorMessage"]
    still_healthy(d)
    assert d.invoke("hog", {"mb": 10}).status == 200  # a fresh worker serves again


def test_escaped_process_does_not_survive_teardown(sandboxed):
    d = sandboxed
    d.deploy("escaper", "python3", "attack.escape", HOSTILE, idle_timeout_ms=60000)
    pid = d.invoke("escaper").json()["pid"]
    assert alive(pid)  # positive control: it escaped the session and keeps running
    assert d.request("DELETE", "/v1/functions/escaper").status == 204
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "a process in its own session survived its worker"
    still_healthy(d)
