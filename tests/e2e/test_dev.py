"""`fnd dev`: the function follows the folder. An edit is live for the next invocation
(and one already running finishes on the old code); a new sub-folder is watched; a
broken edit is reported and the last good version keeps serving."""
import os
import queue
import subprocess
import threading
import time

from fndtest import FND_BIN

def app(version, sleep=0):
    return ("import time\n"
            "def handler(event, context):\n"
            f"    time.sleep(event.get('sleep', 0))\n"
            f"    return {{'version': {version!r}}}\n")


class Dev:
    def __init__(self, d, folder, name="live"):
        env = {k: v for k, v in os.environ.items() if k != "FND_AUTH_TOKEN"}
        env.update(FND_URL=d.url, FND_DATA=d.data)
        self.proc = subprocess.Popen([FND_BIN, "dev", folder, "--name", name, "--runtime",
                                      "python3", "--handler", "app.handler"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in {self.seen}")

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=20)


def test_hot_reload(daemon, tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "app.py").write_text(app(1))
    dev = Dev(daemon, str(folder))
    try:
        dev.wait_for("watching")
        dev.wait_for("deployed live version 1")
        assert daemon.invoke("live", {}).json() == {"version": 1}

        # an invocation in flight keeps the old code; the next one gets the new
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=daemon.invoke("live", {"sleep": 2})))
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        (folder / "app.py").write_text(app(2))
        dev.wait_for("deployed live version 2")
        took = time.monotonic() - t0
        assert daemon.invoke("live", {}).json() == {"version": 2}
        t.join(30)
        assert slow["r"].json() == {"version": 1}
        print(f"edit to live: {took * 1000:.0f} ms")

        # a folder made after the start is watched too
        (folder / "pkg").mkdir()
        time.sleep(0.3)
        (folder / "pkg" / "helper.py").write_text("X = 3\n")
        dev.wait_for("deployed live version 3")
        (folder / "pkg" / "helper.py").write_text("X = 4\n")
        dev.wait_for("deployed live version 4")

        # a syntax error: reported, and version 4 keeps serving
        (folder / "app.py").write_text("def handler(event, context)\n    return 1\n")
        line = dev.wait_for("error: the new code does not load")
        assert "Runtime.UserCodeSyntaxError" in line and "app.py" in line
        dev.wait_for("still serving version 4 of live")
        assert daemon.invoke("live", {}).json() == {"version": 2}
        assert daemon.get("/v1/functions/live").json()["version"] == 4
        # an import error too
        (folder / "app.py").write_text("import no_such_module_here\n" + app(9))
        assert "Runtime.ImportModuleError" in dev.wait_for("error: the new code does not load")
        assert daemon.invoke("live", {}).json() == {"version": 2}
        # fixed: live again; the scratch function used for checks is gone
        (folder / "app.py").write_text(app(5))
        dev.wait_for("deployed live version 5")
        assert daemon.invoke("live", {}).json() == {"version": 5}
        names = [f["name"] for f in daemon.get("/v1/functions").json()["functions"]]
        assert names == ["live"]
    finally:
        assert dev.stop() == 0


def test_dev_needs_a_folder(daemon, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    env = dict(os.environ, FND_URL=daemon.url, FND_DATA=daemon.data)
    r = subprocess.run([FND_BIN, "dev", str(f), "--name", "x", "--runtime", "python3",
                        "--handler", "a.b"], capture_output=True, text=True, env=env, timeout=10)
    assert r.returncode == 2 and "is not a folder" in r.stderr
