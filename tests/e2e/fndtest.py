"""Helpers for fnd's end-to-end tests: start the real daemon on a free loopback port
with a temporary data folder, talk HTTP to it, build zip bundles, and check its log for
sanitizer reports. Every wait is bounded; the daemon is always stopped by its PID."""
import base64
import http.client
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("FND_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD_DIR = os.environ.get("FND_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
FND_BIN = os.environ.get("FND_BIN", os.path.join(BUILD_DIR, "fnd"))
FUNCTIONS = os.path.join(HERE, "functions")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# FND_WRAPPER runs the daemon under a command, e.g. valgrind --quiet, which then writes
# only error reports ("==pid== ..." lines) into the daemon's log; any such line, or an
# exit status of WRAPPER_ERROR_EXIT (its --error-exitcode), fails the test.
WRAPPER = shlex.split(os.environ.get("FND_WRAPPER", ""))
WRAPPER_ERROR_EXIT = 99
WRAPPER_REPORT = re.compile(r"^==\d+== ", re.M)
START_TIMEOUT = 120 if WRAPPER else 15


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Daemon:
    """One fnd process. Use as a context manager or call stop()."""

    def __init__(self, data, args=(), user=None, prefix=()):
        self.data = data
        self.args = list(args)
        self.user = user  # (uid, gid) to run as, or None
        self.prefix = list(prefix)  # a command to run the daemon under, e.g. prlimit
        self.log_path = os.path.join(os.path.dirname(data), os.path.basename(data) + ".log")
        self.proc = None
        self.port = None
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
        self.log_file = open(self.log_path, "ab")
        offset = self.log_file.tell()
        self.proc = subprocess.Popen(
            [*self.prefix, *WRAPPER, FND_BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data, *self.args],
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=self.log_file, env=env,
            user=self.user[0] if self.user else None, group=self.user[1] if self.user else None,
            extra_groups=[] if self.user else None)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = re.search(rb"msg=listening addr=127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"fnd exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        else:
            self.stop()
            raise RuntimeError(f"fnd did not start listening:\n{self.log()}")
        self.token = self.read_token()
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("fnd did not answer /healthz")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        crashed = self.proc.poll()  # not None: it ended before being asked to
        if crashed is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=60 if WRAPPER else 10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        status = self.proc.returncode
        self.proc = None
        self.log_file.close()
        log = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"sanitizer report in the daemon log:\n{log[-6000:]}"
        assert crashed is None or crashed >= 0, \
            f"the daemon died of signal {-crashed}:\n{log[-6000:]}"
        if WRAPPER:
            assert not WRAPPER_REPORT.search(log) and status != WRAPPER_ERROR_EXIT, \
                f"{' '.join(WRAPPER[:2])} reported errors in the daemon:\n{log[-8000:]}"

    def read_token(self):
        """The control-plane token: the one given with --auth-token, else the file."""
        if "--auth-token" in self.args:
            return self.args[self.args.index("--auth-token") + 1]
        try:
            with open(os.path.join(self.data, "auth-token")) as f:
                return f.read().strip()
        except OSError:
            return None

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    # --- HTTP ------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=30, auth=True):
        """auth: send the daemon's token (unless headers carry an Authorization)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = dict(headers or {})
        if auth and self.token and "Authorization" not in headers:
            headers["Authorization"] = "Bearer " + self.token
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def deploy(self, name, runtime, handler, code, **config):
        """code: a folder path, or bytes of a zip."""
        body = {"runtime": runtime, "handler": handler, **config}
        if isinstance(code, (bytes, bytearray)):
            body["code"] = {"zip": base64.b64encode(code).decode()}
        elif code is not None:
            body["code"] = {"dir": os.path.abspath(code)}
        return self.request("PUT", f"/v1/functions/{name}", body)

    def invoke(self, name, event=None, raw=None, timeout=30, headers=None):
        body = raw if raw is not None else json.dumps(event if event is not None else {})
        return self.request("POST", f"/v1/functions/{name}/invoke", body, headers, timeout)

    def raw(self, data, read_until_close=True, timeout=5):
        """Sends bytes on a fresh connection; returns what came back before close or timeout."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
                if not read_until_close and out.count(b"HTTP/1.1 ") and b"\r\n\r\n" in out:
                    break
            return out


def zip_bytes(files, symlinks=None, modes=None):
    """A zip from {name: content}; symlinks {name: target}; modes {name: st_mode}."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            mode = (modes or {}).get(name, 0o100644)
            info.external_attr = mode << 16
            z.writestr(info, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            z.writestr(info, target)
    return out.getvalue()


def zip_dir(folder):
    files = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, folder)] = f.read()
    return zip_bytes(files)


def alive(pid):
    """Running or sleeping; a zombie waiting for its reaper counts as dead."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):  # gone, or exiting while we read (ESRCH)
        return False


def _pid_namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def worker_pids(daemon, name):
    """Host pids of the function's workers, from the daemon's live state (inside its pid
    namespace a runtime cannot know its host pid), the ones that served most first: a
    spare worker started ahead of need comes after those that ran invocations. A worker
    whose process is still being created has no pid yet and is left out."""
    st = daemon.get(f"/v1/functions/{name}").json()["state"]
    return [w["pid"] for w in sorted(st["workers"], key=lambda w: -w["served"]) if w["pid"]]


def _zygote_children(daemon):
    """(pid, same pid namespace as the daemon) of each live child of the daemon that
    runs bootstrap.py in zygote mode: the zygote, the workers forked from it, blanks."""
    ns = _pid_namespace(daemon.pid)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == daemon.pid and b"--zygote" in cmdline and alive(int(entry)):
            yield int(entry), _pid_namespace(int(entry)) == ns


def zygote_pid(daemon):
    """The daemon's child running bootstrap.py in zygote mode, or None. Workers forked
    from it share its command line, but each has a pid namespace of its own."""
    return next((pid for pid, shared in _zygote_children(daemon) if shared), None)


def blank_pids(daemon):
    """Host pids of the zygote's blanks (src/zygote.c): children of the daemon with the
    zygote's command line, in a pid namespace of their own, that no function has as a
    worker (each is the init of its namespace)."""
    workers = {w["pid"] for f in daemon.get("/v1/functions").json()["functions"]
               for w in daemon.get(f"/v1/functions/{f['name']}").json()["state"]["workers"]}
    return [pid for pid, shared in _zygote_children(daemon) if not shared and pid not in workers]


def started_via(daemon, name):
    """How the function's last worker was started (needs --log-level debug): "blank",
    "zygote" (a fresh fork) or "exec". The daemon writes its log in batches."""
    lines = wait_for(lambda: [l for l in daemon.log().splitlines()
                              if 'msg="worker started"' in l and f" fn={name} " in l], 2)
    assert lines, name
    return lines[-1].split(" via=")[1].split()[0]


def worker_processes(pid):
    """{host pid: command name} of every live process of the worker whose host pid is
    pid: all of its pid namespace, or its process group when workers share the
    daemon's namespace."""
    ns = _pid_namespace(pid)
    shared = ns is None or ns == _pid_namespace(os.getpid())
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        p = int(entry)
        try:
            if shared:
                if os.getpgid(p) != pid:
                    continue
            elif _pid_namespace(p) != ns:
                continue
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if alive(p):
            found[p] = comm
    return found


def limit_groups(path):
    """{controller: group} for memory and pids, from a /proc/.../cgroup file."""
    groups = {}
    with open(path) as f:
        for line in f:
            _, controllers, group = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                if c in ("memory", "pids"):
                    groups[c] = group
    return groups


def host_pid(worker_pid, inner_pid):
    """The host pid of the process that the worker's namespace calls inner_pid."""
    for p in worker_processes(worker_pid):
        try:
            with open(f"/proc/{p}/status") as f:
                nspid = [l for l in f if l.startswith("NSpid:")][0].split()[1:]
        except (OSError, IndexError):
            continue
        if int(nspid[-1]) == inner_pid:
            return p
    return None


# --- Lambda clients -------------------------------------------------------------------

LAMBDA_ROLE = "arn:aws:iam::000000000000:role/fnd-test"  # accepted and ignored


def lambda_zip(code="v1"):
    """The zip of tests/e2e/functions/lambda with CODE set to code."""
    with open(os.path.join(FUNCTIONS, "lambda", "app.py")) as f:
        source = f.read().replace('CODE = "v1"', f'CODE = "{code}"')
    return zip_bytes({"app.py": source})


def aws_env(extra=None):
    """An environment for AWS clients: dummy credentials, one region, no instance
    metadata service, no config files, no retries: nothing may leave 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
    })
    env.update(extra or {})
    return env


class HitCounter:
    """A tiny HTTP server on 127.0.0.1 that counts POST /hit/<id> per id and answers
    the new count: functions deployed with the host's network report each execution to
    it, so a test counts executions from outside the sandbox. Use as a context manager."""

    def __init__(self):
        import http.server
        import threading
        self.counts = {}
        self.lock = threading.Lock()
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                key = self.path.rsplit("/", 1)[-1]
                with counter.lock:
                    counter.counts[key] = counter.counts.get(key, 0) + 1
                    n = counter.counts[key]
                body = str(n).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, key):
        with self.lock:
            return self.counts.get(key, 0)

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def proc_status(pid, field):
    """A number from /proc/<pid>/status, e.g. VmRSS in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kb(pid):
    return proc_status(pid, "VmRSS")


def cpu_seconds(pid):
    """User plus system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(pred, timeout=5.0, step=0.02):
    """Polls pred until it returns something true or timeout passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def start_on_backend(start_daemon, backend, *args, data=None):
    """Starts a daemon whose event log uses backend (uring or threadpool); skips the
    test when io_uring was asked for and this kernel or container refuses it."""
    import pytest
    try:
        d = start_daemon("--eventlog-backend", backend, *args, data=data)
    except RuntimeError as e:
        if backend == "uring" and "event log backend uring" in str(e):
            pytest.skip("io_uring is unavailable here (kernel or seccomp)")
        raise
    assert f"backend={backend}" in d.log()
    return d
