"""`fnd serve --seed DIR`: the examples are invocable as soon as the daemon listens,
and a restart neither redeploys nor loses them."""
import os

from fndtest import BUILD_DIR

EXAMPLES = os.path.join(BUILD_DIR, "examples")


def test_seeded_examples_answer_at_once(start_daemon):
    d = start_daemon("--seed", EXAMPLES)
    assert d.invoke("hello-python", {"name": "seed"}).json()["message"] == "Hello, seed!"
    assert d.invoke("hello-node", {"name": "seed"}).json()["message"] == "Hello, seed!"
    assert d.invoke("hello-c", raw="seed").json()["message"] == "Hello, seed!"
    # The custom runtimes (bash + curl, and C + libcurl) through the Runtime API.
    assert d.invoke("hello-bash", {"name": "seed"}).json() == {"echo": {"name": "seed"},
                                                                "runtime": "bash"}
    r = d.invoke("hello-c-runtime", {"name": "seed"})
    assert r.json()["event"] == {"name": "seed"} and r.json()["runtime"] == "c"
    assert r.json()["request_id"] == r.headers["x-request-id"]
    d.restart()
    versions = {f["name"]: f["version"] for f in d.get("/v1/functions").json()["functions"]}
    assert versions == {"hello-c": 1, "hello-node": 1, "hello-python": 1, "hello-bash": 1,
                        "hello-c-runtime": 1}


def test_help_lists_options():
    import subprocess
    from fndtest import FND_BIN
    out = subprocess.run([FND_BIN, "serve", "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for opt in ("--listen", "--data", "--seed", "--max-body", "--max-workers"):
        assert opt in out.stdout
    out = subprocess.run([FND_BIN, "serve", "--bogus"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "unknown option" in out.stderr
