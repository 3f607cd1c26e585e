"""Hostile Python functions for the sandbox tests: each makes one named attack and
reports what happened, so that the test can assert the contained outcome."""
import os
import signal
import time


def forks(event, context):
    """Forks up to event["n"] sleeping children; reports how many forks succeeded."""
    made, error = [], None
    for _ in range(event["n"]):
        try:
            pid = os.fork()
        except OSError as exc:
            error = exc.strerror
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        made.append(pid)
    for pid in made:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return {"forked": len(made), "error": error}


def memory(event, context):
    """Holds event["mb"] MiB of touched memory."""
    blocks = []
    for _ in range(event["mb"]):
        blocks.append(bytearray(1024 * 1024))
    return {"held_mb": len(blocks)}


def escape(event, context):
    """Double-forks a process into its own session that ignores SIGTERM; returns its pid."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(w, str(os.getpid()).encode())
            time.sleep(120)
            os._exit(0)
        os._exit(0)
    pid = int(os.read(r, 32))
    return {"pid": pid}


def connect(event, context):
    """Tries to reach host:port; reports "connected" or the errno name."""
    import errno as errno_names
    import socket
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((event["host"], event["port"]))
        return "connected"
    except OSError as exc:
        return errno_names.errorcode.get(exc.errno, str(exc))
    finally:
        s.close()


def loopback(event, context):
    """Talks to itself over lo: the network namespace of a network:none function has one."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    peer, _ = server.accept()
    client.sendall(b"ping")
    got = peer.recv(4)
    for s in (client, peer, server):
        s.close()
    return got.decode()


def fs(event, context):
    """Reads, writes, lists or fills a path; reports "ok ..." or the errno name."""
    import errno as errno_names
    path, op = event["path"], event["op"]
    try:
        if op == "read":
            with open(path, "rb") as f:
                return f"ok {len(f.read())}"
        if op == "write":
            with open(path, "w") as f:
                f.write(event.get("text", "x"))
            return "ok"
        if op == "exists":
            return "ok" if os.path.exists(path) else "ENOENT"
        if op == "fill":  # write MiB until something stops us
            written = 0
            with open(path, "wb") as f:
                chunk = b"\0" * (1024 * 1024)
                while written < event["mb"]:
                    f.write(chunk)
                    f.flush()
                    written += 1
            return f"ok {written}"
    except OSError as exc:
        return errno_names.errorcode.get(exc.errno, str(exc))
    return "bad op"


def whoami(event, context):
    """Reports the worker's ids, capability sets and signal dispositions (blocked,
    ignored, caught) from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs",
                       "Seccomp", "Seccomp_filters"):
                fields[key] = value.split()[0]
            elif key in ("SigBlk", "SigIgn", "SigCgt"):
                # signals 1-31 only: 32 and 33 belong to the C library's threads
                fields[key] = f"{int(value.split()[0], 16) & 0x7fffffff:08x}"
    return fields


def threads(event, context):
    """Starts up to event["n"] sleeping threads; reports how many started."""
    import threading
    stop = threading.Event()
    started, error = [], None
    for _ in range(event["n"]):
        t = threading.Thread(target=stop.wait, daemon=True)
        try:
            t.start()
        except RuntimeError as exc:
            error = str(exc)
            break
        started.append(t)
    stop.set()
    for t in started:
        t.join()
    return {"started": len(started), "error": error}


def descriptors(event, context):
    """Opens /dev/null until refused, and lists the descriptors it was born with."""
    import errno as errno_names
    inherited = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    opened, error = [], None
    try:
        for _ in range(event["n"]):
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as exc:
        error = errno_names.errorcode.get(exc.errno)
    for fd in opened:
        os.close(fd)
    return {"inherited": inherited, "opened": len(opened), "error": error}


def environment(event, context):
    return dict(os.environ)


def big_file(event, context):
    """Writes one file of event["mb"] MiB to /tmp, sparse, with one byte at the end."""
    import errno as errno_names
    try:
        with open("/tmp/huge", "wb") as f:
            f.seek(event["mb"] * 1024 * 1024)
            f.write(b"x")
        return "ok"
    except OSError as exc:
        return errno_names.errorcode.get(exc.errno, str(exc))
    finally:
        try:
            os.unlink("/tmp/huge")
        except OSError:
            pass


def processes(event, context):
    """What the worker can see of the machine's processes, and its cgroup's name."""
    import errno as errno_names
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    with open("/proc/self/cgroup") as f:
        cgroups = sorted({line.strip().split(":", 2)[2] for line in f})
    try:
        os.kill(int(event["pid"]), 0)
        signal_result = "ok"
    except OSError as exc:
        signal_result = errno_names.errorcode.get(exc.errno, str(exc))
    return {"pids": pids, "self": os.getpid(), "parent": os.getppid(), "cgroups": cgroups,
            "signal": signal_result}


def surroundings(event, context):
    """What a worker finds around it when it starts: its code folder and how it is
    mounted, /tmp, its descriptors, and what of fnd's own it can still see."""
    import sys
    task_mount = [line.split()[5] for line in open("/proc/self/mountinfo")
                  if line.split()[4] == "/var/task"]
    return {"cwd": os.getcwd(), "task": sorted(os.listdir("/var/task")),
            "task_mount": task_mount, "tmp": sorted(os.listdir("/tmp")),
            "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
            "modules": sorted(m for m in sys.modules if "rehearsal" in m),
            "path": [p for p in sys.path if "rehearsal" in p]}
