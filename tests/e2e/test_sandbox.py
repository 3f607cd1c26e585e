"""The worker sandbox's escape suite: hostile functions attack one layer at a time
(cgroups, teardown, seccomp, namespaces, the private root, the unprivileged uid). Each
attack has a positive control, and a healthy function keeps answering while it runs."""
import os
import subprocess
import time

import pytest

from fndtest import (BUILD_DIR, FND_BIN, FUNCTIONS, alive, blank_pids, host_pid, limit_groups,
                     started_via, wait_for, worker_pids, worker_processes, zygote_pid)

HOSTILE = os.path.join(FUNCTIONS, "hostile")
# The resource attacks are about containment, not speed: on a loaded machine (CI runs
# both builds side by side) a bomb may need far longer than Lambda's default 3 s.
LOADED = 60000
NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")
PY = os.path.join(FUNCTIONS, "py")
NODE = os.path.join(FUNCTIONS, "node")


def require_layer(daemon, marker, what):
    """The layer named by marker in the start-up line must be on: as root (CI) a
    missing layer fails the test; only an unprivileged run may skip, saying why."""
    if marker in daemon.log():
        return
    assert os.geteuid() != 0, f"{what} is off although the daemon runs as root"
    pytest.skip(f"{what} is not available to this unprivileged daemon")


@pytest.fixture
def sandboxed(daemon):
    require_layer(daemon, "cgroups=v1", "the cgroup layer")
    assert daemon.deploy("healthy", "native", "probe.echo", NATIVE).status == 201
    return daemon


def still_healthy(d):
    r = d.invoke("healthy", raw="ping")
    assert r.status == 200 and r.body == b"ping"


def test_startup_and_info_report_the_layers(daemon):
    line = [l for l in daemon.log().splitlines() if "msg=sandbox " in l]
    assert line and "hygiene=on" in line[0] and "no_new_privs=on" in line[0]
    info = daemon.get("/v1/info").json()["sandbox"]
    # the endpoint and the start-up line say the same
    for name, state in info.items():
        assert f"{name}={state}" in line[0], (name, state)
    assert set(info) >= {"cgroups", "seccomp", "namespaces", "filesystem", "uid"}


def test_fork_bomb_is_contained(sandboxed):
    d = sandboxed
    d.deploy("forker", "python3", "attack.forks", HOSTILE, timeout_ms=LOADED)
    small = d.invoke("forker", {"n": 5}).json()
    assert small == {"forked": 5, "error": None}  # positive control: forking works
    bomb = d.invoke("forker", {"n": 500}).json()
    assert bomb["forked"] < 64 and bomb["error"], bomb  # pids.max stops it
    still_healthy(d)


def test_memory_bomb_is_reported_as_out_of_memory(sandboxed):
    d = sandboxed
    d.deploy("hog", "python3", "attack.memory", HOSTILE, memory_mb=128, timeout_ms=LOADED)
    assert d.invoke("hog", {"mb": 40}).json() == {"held_mb": 40}  # positive control
    r = d.invoke("hog", {"mb": 400})
    assert r.status == 502, r
    assert r.json()["errorType"] == "Runtime.OutOfMemory", r
    assert "out of memory" in r.json()["errorMessage"]
    still_healthy(d)
    assert d.invoke("hog", {"mb": 10}).status == 200  # a fresh worker serves again


def test_workers_start_in_their_groups_and_the_daemon_stays_home(sandboxed):
    """A worker is born in its groups: the thread that spawns it, the daemon's or the
    zygote's, moves itself in for the clone and back out (sandbox.c). Every process of
    every worker is in its own worker's groups; every thread of the daemon, and the
    zygote, are back in the daemon's."""
    d = sandboxed
    for name, runtime, handler, code in (("three", "native", "probe.echo", NATIVE),
                                         ("py", "python3", "app.state", PY)):
        assert d.deploy(name, runtime, handler, code, max_instances=3, min_warm=3).status == 201
    pids = {name: wait_for(lambda n=name: len(worker_pids(d, n)) == 3 and worker_pids(d, n), 30)
            for name in ("three", "py")}
    assert all(pids.values()), pids
    home = limit_groups(f"/proc/{d.proc.pid}/cgroup")
    assert set(home) == {"memory", "pids"}, home
    for tid in os.listdir(f"/proc/{d.proc.pid}/task"):
        assert limit_groups(f"/proc/{d.proc.pid}/task/{tid}/cgroup") == home, tid
    zygote = zygote_pid(d)
    assert zygote and limit_groups(f"/proc/{zygote}/cgroup") == home, zygote
    seen = set()
    for pid in pids["three"] + pids["py"]:
        procs = worker_processes(pid)
        assert len(procs) >= 2, procs  # the namespace's init and the runtime
        groups = {c: {limit_groups(f"/proc/{p}/cgroup")[c] for p in procs} for c in home}
        for c, g in groups.items():
            assert len(g) == 1, (pid, c, g)  # one worker, one group
            (group,) = g
            assert f"/fnd-{d.proc.pid}/w" in group, (pid, c, group)
            seen.add((c, group))
    assert len(seen) == 12, seen  # and a group of its own per worker
    still_healthy(d)


def group_limits(pid):
    """The memory (with swap) and pids limits of the groups worker pid is in."""
    groups = limit_groups(f"/proc/{pid}/cgroup")
    read = lambda c, f: int(open(f"/sys/fs/cgroup/{c}{groups[c]}/{f}").read().split()[0])
    return (read("memory", "memory.limit_in_bytes"), read("memory", "memory.memsw.limit_in_bytes"),
            read("pids", "pids.max"))


def test_each_worker_gets_its_own_functions_limits(sandboxed):
    """Groups are made ahead of need with the limit the last start asked for
    (src/cgroup.c): a start that asks for more, or less, gets exactly its own."""
    d = sandboxed
    mib = 1 << 20
    for name, memory_mb in (("small", 128), ("large", 512), ("again", 128), ("mid", 256),
                            ("mid2", 256), ("mid3", 256), ("least", 64)):
        assert d.deploy(name, "native", "probe.echo", NATIVE, memory_mb=memory_mb).status == 201
        assert d.invoke(name, raw="x").status == 200
        (pid,) = worker_pids(d, name)
        assert group_limits(pid) == (memory_mb * mib, memory_mb * mib, 64), name
    assert "stocked cgroup unusable" not in d.log()  # changed in place, in the right order
    # and the stock is made again after the starts: two groups no worker is in
    names = ("healthy", "small", "large", "again", "mid", "mid2", "mid3", "least")
    parent = f"/sys/fs/cgroup/memory/fnd-{d.proc.pid}"

    def unused():
        used = {limit_groups(f"/proc/{p}/cgroup")["memory"].rsplit("/", 1)[1]
                for n in names for p in worker_pids(d, n)}
        return {g for g in os.listdir(parent) if g.startswith("w")} - used

    assert wait_for(lambda: len(unused()) == 2, 10), unused()
    still_healthy(d)


def test_escaped_process_does_not_survive_teardown(sandboxed):
    d = sandboxed
    d.deploy("escaper", "python3", "attack.escape", HOSTILE, idle_timeout_ms=60000)
    inner = d.invoke("escaper").json()["pid"]
    pid = host_pid(worker_pids(d, "escaper")[0], inner)
    assert pid and alive(pid)  # positive control: it escaped the session and keeps running
    assert os.getsid(pid) not in worker_pids(d, "escaper")
    assert d.request("DELETE", "/v1/functions/escaper").status == 204
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "a process in its own session survived its worker"
    still_healthy(d)


# --- seccomp: one named attack per invocation, with its expected errno ---------------

import errno  # noqa: E402

REFUSED = {
    "ptrace": errno.EPERM, "process_vm_readv": errno.EPERM, "mount": errno.EPERM,
    "umount": errno.EPERM, "pivot_root": errno.EPERM, "unshare": errno.EPERM,
    "unshare_cgroup": errno.EPERM, "move_mount": errno.EPERM,
    "setns": errno.EPERM, "clone_newns": errno.EPERM, "clone3": errno.ENOSYS,
    "keyctl": errno.EPERM, "add_key": errno.EPERM, "userfaultfd": errno.EPERM,
    "io_uring_setup": errno.EPERM, "bpf": errno.EPERM, "perf_event_open": errno.EPERM,
    "personality": errno.EPERM, "tiocsti": errno.EPERM, "tiocsti_high_bits": errno.EPERM,
    "unknown_syscall": errno.ENOSYS, "mknod": errno.EPERM, "sethostname": errno.EPERM,
    "clock_settime": errno.EPERM, "af_alg": errno.EPERM, "af_vsock": errno.EPERM,
    "af_packet": errno.EPERM, "kill_everyone": errno.EPERM, "kill_group": errno.EPERM,
}
ALLOWED = ("clone_plain", "personality_query", "af_inet", "kill_self")


@pytest.fixture
def filtered(daemon):
    require_layer(daemon, "seccomp=on", "the seccomp layer")
    assert daemon.deploy("attack", "native", "attack.attack", NATIVE).status == 201
    assert daemon.deploy("healthy", "native", "probe.echo", NATIVE).status == 201
    return daemon


def test_refused_system_calls(filtered):
    for name, expected in REFUSED.items():
        r = filtered.invoke("attack", raw=name)
        assert r.status == 200, (name, r)
        assert r.json() == {"rc": -1, "errno": expected}, (name, r.json())
    # the worker survived every refusal: one cold start for all of them
    assert filtered.get("/v1/functions/attack").json()["state"]["cold_starts"] == 1


def test_positive_controls_pass_the_filter(filtered):
    for name in ALLOWED:
        r = filtered.invoke("attack", raw=name)
        assert r.json() == {"rc": 0, "errno": 0}, (name, r.json())


I386_PROBE = """
import ctypes, mmap
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))  # mov eax, 20 (getpid); int 0x80; ret
ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()
"""


def kernel_runs_i386_syscalls():
    """The positive control for the i386 case: int 0x80 outside any filter. A kernel
    built without IA32 emulation answers it with SIGSEGV before seccomp is consulted."""
    import sys
    return subprocess.run([sys.executable, "-c", I386_PROBE], timeout=30).returncode == 0


@pytest.mark.parametrize("abi", ["i386_syscall", "x32_syscall"])
def test_foreign_abi_kills_the_process(filtered, abi):
    if abi == "i386_syscall" and not kernel_runs_i386_syscalls():
        # The attack surface is absent: int 0x80 faults before any filter is asked.
        pytest.skip("this kernel has no IA32 emulation, so no i386 system call exists")
    r = filtered.invoke("attack", raw=abi)
    assert r.status == 502, r
    assert r.json()["errorType"] == "Runtime.ExitError"
    assert "bad system call" in r.json()["errorMessage"], r.json()
    assert filtered.invoke("healthy", raw="ok").body == b"ok"
    assert filtered.invoke("attack", raw="kill_self").json() == {"rc": 0, "errno": 0}


def test_unprivileged_daemon_degrades_loudly_and_keeps_seccomp():
    """Run as an ordinary user: the cgroup layer cannot apply and says so; the uid
    layer degrades to user namespaces, which still give workers their own pid
    namespace, root and network; seccomp and no_new_privs hold."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start the daemon as another user")
    import pathlib
    import shutil
    import tempfile
    from fndtest import Daemon
    nobody = (65534, 65534)
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="fnd-unpriv-"))  # pytest's is 0700
    os.chmod(tmp_path, 0o755)
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, *nobody)
    code, hostile = tmp_path / "code", tmp_path / "hostile"
    shutil.copytree(NATIVE, code)
    shutil.copytree(HOSTILE, hostile)
    # The daemon, its native runner and the runtimes, where nobody can reach them
    # whatever folder this checkout lives in.
    import fndtest
    from fndtest import SOURCE_DIR
    shutil.copy2(fndtest.FND_BIN, tmp_path / "fnd")
    for helper in ("fnd-runtime-native", "fnd-bundle"):
        shutil.copy2(os.path.join(os.path.dirname(fndtest.FND_BIN), helper), tmp_path / helper)
    shutil.copytree(os.path.join(SOURCE_DIR, "runtimes"), tmp_path / "runtimes")
    for root, dirs, files in os.walk(tmp_path):
        for n in dirs + files:
            if n != "data":
                os.chmod(os.path.join(root, n), 0o755)
    saved_bin, fndtest.FND_BIN = fndtest.FND_BIN, str(tmp_path / "fnd")
    try:
        d = Daemon(str(data), ["--runtime-dir", str(tmp_path / "runtimes")], user=nobody)
    finally:
        fndtest.FND_BIN = saved_bin
    try:
        log = d.log()
        assert 'msg="sandbox layer unavailable" layer=cgroups' in log
        assert 'msg="sandbox layer degraded" layer=privileges' in log
        assert "cgroups=off" in log and "seccomp=on" in log and "no_new_privs=on" in log
        info = d.get("/v1/info").json()["sandbox"]
        assert info["cgroups"] == "off" and info["seccomp"] == "on"
        assert info["uid"] == "userns" and info["filesystem"] == "private-root"
        assert info["namespaces"] == "user,pid,cgroup,ipc,uts"
        assert d.deploy("attack", "native", "attack.attack", str(code)).status == 201
        assert d.invoke("attack", raw="ptrace").json() == {"rc": -1, "errno": errno.EPERM}
        assert d.invoke("attack", raw="unshare").json() == {"rc": -1, "errno": errno.EPERM}
        assert d.invoke("attack", raw="kill_self").json() == {"rc": 0, "errno": 0}
        assert d.invoke("attack", raw="setuid0").json() == {"rc": -1, "errno": errno.EINVAL}
        # no capability even inside its own user namespace
        assert d.deploy("who", "python3", "attack.whoami", str(hostile)).status == 201
        me = d.invoke("who").json()
        assert me["Uid"] == "993" and me["Gid"] == "990", me
        assert me["CapEff"] == me["CapPrm"] == me["CapBnd"] == "0000000000000000", me
        assert me["NoNewPrivs"] == "1" and me["Seccomp"] == "2"
        # its own processes only, and none of the daemon's files
        assert d.deploy("ps", "python3", "attack.processes", str(hostile)).status == 201
        seen = d.invoke("ps", {"pid": d.proc.pid}).json()
        assert seen["pids"] == [1, 2] and seen["signal"] == "ESRCH", seen
        assert d.deploy("fs", "python3", "attack.fs", str(hostile)).status == 201
        assert fs(d, "fs", op="exists", path=str(data)) == "ENOENT"
        assert fs(d, "fs", op="exists", path="/var/task/attack.py") == "ok"  # control
        # network none works too: its own namespace with only loopback
        assert "network_none=on" in d.log()
        assert d.deploy("closed", "python3", "attack.connect", str(hostile),
                        network="none").status == 201
        target = {"host": "127.0.0.1", "port": d.port}
        assert d.invoke("closed", target).json() == "ECONNREFUSED"
    finally:
        d.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_sysv_ipc_does_not_leak_between_functions(filtered):
    d = filtered
    require_layer(d, "ipc,uts", "the IPC namespace")
    assert d.deploy("peer", "native", "attack.attack", NATIVE).status == 201
    assert d.invoke("attack", raw="shm_create").json() == {"rc": 0, "errno": 0}
    # positive control: the same worker finds its own segment
    assert d.invoke("attack", raw="shm_find").json() == {"rc": 0, "errno": 0}
    # another function's worker does not
    assert d.invoke("peer", raw="shm_find").json() == {"rc": -1, "errno": errno.ENOENT}


def test_network_none_cannot_reach_the_daemon(daemon):
    require_layer(daemon, "network_none=on", "the network namespace")
    assert daemon.deploy("open", "python3", "attack.connect", HOSTILE).status == 201
    assert daemon.deploy("closed", "python3", "attack.connect", HOSTILE,
                         network="none").status == 201
    assert daemon.get("/v1/functions/closed").json()["network"] == "none"
    target = {"host": "127.0.0.1", "port": daemon.port}
    assert daemon.invoke("open", target).json() == "connected"  # positive control
    assert daemon.invoke("closed", target).json() == "ECONNREFUSED"
    assert daemon.deploy("lo", "python3", "attack.loopback", HOSTILE,
                         network="none").status == 201
    assert daemon.invoke("lo").json() == "ping"  # its own loopback works


def test_network_field_is_validated(daemon):
    r = daemon.deploy("badnet", "python3", "attack.connect", HOSTILE, network="bridge")
    assert r.status == 400 and r.json()["error"]["message"].startswith("network")


# --- the filesystem: a private read-only root ----------------------------------------

@pytest.fixture
def rooted(daemon):
    require_layer(daemon, "filesystem=private-root", "the private root")
    for name in ("fs", "other"):
        assert daemon.deploy(name, "python3", "attack.fs", HOSTILE,
                             env={"MARK": name}).status == 201
    return daemon


def fs(d, name, **event):
    return d.invoke(name, event).json()


def test_host_secrets_and_data_folder_are_not_in_the_tree(rooted):
    d = rooted
    assert fs(d, "fs", op="read", path="/var/task/attack.py").startswith("ok")  # control
    assert fs(d, "fs", op="read", path="/etc/shadow") == "ENOENT"
    assert fs(d, "fs", op="exists", path=d.data) == "ENOENT"
    other_code = os.path.join(d.data, "functions", "other", "code")
    assert os.path.isdir(other_code)  # control: it exists on the host
    assert fs(d, "fs", op="exists", path=other_code) == "ENOENT"
    # Any host file outside the bound paths is out of sight: plant one and look for it.
    import tempfile
    fd, sentinel = tempfile.mkstemp(prefix="fnd-sentinel-", dir="/var/tmp")
    os.close(fd)
    os.chmod(sentinel, 0o644)
    try:
        assert fs(d, "fs", op="exists", path=sentinel) == "ENOENT"
    finally:
        os.unlink(sentinel)


def test_code_and_runtime_are_read_only(rooted):
    d = rooted
    assert fs(d, "fs", op="write", path="/var/task/attack.py") == "EROFS"
    from fndtest import SOURCE_DIR
    runtime = os.path.join(SOURCE_DIR, "runtimes", "python3", "bootstrap.py")
    assert fs(d, "fs", op="read", path=runtime).startswith("ok")  # control: it is there
    assert fs(d, "fs", op="write", path=runtime) == "EROFS"
    assert fs(d, "fs", op="write", path="/usr/bin/python3") in ("EROFS", "ETXTBSY")
    assert fs(d, "fs", op="write", path="/etc/passwd") == "EROFS"


def test_tmp_is_private_and_kept_warm(rooted):
    d = rooted
    assert fs(d, "fs", op="write", path="/tmp/secret", text="s") == "ok"  # control
    assert fs(d, "fs", op="read", path="/tmp/secret") == "ok 1"  # persists while warm
    assert fs(d, "fs", op="read", path="/tmp/secret") == "ok 1"
    assert fs(d, "other", op="read", path="/tmp/secret") == "ENOENT"  # not another's


def test_tmp_fill_is_bounded(start_daemon):
    d = start_daemon("--worker-tmp", "32M")
    require_layer(d, "filesystem=private-root", "the private root")
    d.deploy("filler", "python3", "attack.fs", HOSTILE, memory_mb=256, timeout_ms=LOADED)
    assert fs(d, "filler", op="fill", path="/tmp/f", mb=16) == "ok 16"  # control
    assert fs(d, "filler", op="fill", path="/tmp/f", mb=64) == "ENOSPC"
    # tmpfs pages count toward the function's memory: a /tmp larger than memory_mb
    # ends in the memory limit instead, still bounded
    d2 = start_daemon()
    if "cgroups=v1" in d2.log():
        d2.deploy("filler", "python3", "attack.fs", HOSTILE, memory_mb=128)
        r = d2.invoke("filler", {"op": "fill", "path": "/tmp/f", "mb": 600})
        assert r.status == 502 and r.json()["errorType"] == "Runtime.OutOfMemory", r


# --- privileges: an unprivileged uid per worker, no capabilities ----------------------

@pytest.fixture
def unprivileged(daemon):
    require_layer(daemon, "uid=per-worker", "the per-worker uid")
    for name in ("who", "who2"):
        assert daemon.deploy(name, "python3", "attack.whoami", HOSTILE).status == 201
    assert daemon.deploy("attack", "native", "attack.attack", NATIVE).status == 201
    return daemon


def test_workers_have_no_privileges(unprivileged):
    d = unprivileged
    me = d.invoke("who").json()
    assert int(me["Uid"]) >= 100000 and int(me["Gid"]) >= 100000
    assert me["CapEff"] == me["CapPrm"] == me["CapBnd"] == me["CapAmb"] == "0000000000000000"
    assert me["NoNewPrivs"] == "1" and me["Seccomp"] == "2"
    assert me["Seccomp_filters"] == "3"  # the allowlist, the argument checks, the seal
    assert d.invoke("who2").json()["Uid"] != me["Uid"]  # a distinct id per worker
    assert d.invoke("attack", raw="setuid0").json() == {"rc": -1, "errno": errno.EPERM}


def test_daemon_is_out_of_reach(unprivileged):
    d = unprivileged
    # In its own pid namespace the daemon has no name at all; without one (an
    # unprivileged daemon) the distinct uid still refuses the signal and the read.
    own_pids = "namespaces=pid" in d.log()
    refused = errno.ESRCH if own_pids else errno.EPERM
    assert d.invoke("attack", raw=f"kill_pid {d.proc.pid}").json() == {"rc": -1,
                                                                         "errno": refused}
    assert d.invoke("attack", raw="kill_self").json() == {"rc": 0, "errno": 0}  # control
    d.deploy("fs", "python3", "attack.fs", HOSTILE)
    environ = f"/proc/{d.proc.pid}/environ"
    assert fs(d, "fs", op="read", path=environ) == ("ENOENT" if own_pids else "EACCES")
    assert fs(d, "fs", op="read", path="/proc/self/environ").startswith("ok")  # control


def test_pid_namespace_shows_only_the_worker(daemon):
    require_layer(daemon, "namespaces=pid,cgroup", "the pid namespace")
    assert daemon.deploy("ps", "python3", "attack.processes", HOSTILE).status == 201
    assert daemon.deploy("other", "python3", "attack.processes", HOSTILE).status == 201
    daemon.invoke("other", {"pid": 1})  # start a sibling worker
    other_pid = worker_pids(daemon, "other")[0]
    seen = daemon.invoke("ps", {"pid": other_pid}).json()
    # pid 1 is the worker's init, the runtime pid 2; nothing of the host or of another
    # worker is visible or can be signalled
    assert seen["self"] == 2 and seen["parent"] == 1 and seen["pids"][:2] == [1, 2], seen
    assert seen["pids"] == [1, 2], seen
    assert daemon.proc.pid not in seen["pids"] and other_pid not in seen["pids"]
    assert seen["signal"] == "ESRCH", seen
    assert daemon.invoke("ps", {"pid": 1}).json()["signal"] == "ok"  # positive control
    # the cgroup namespace's root is the worker's own group
    assert seen["cgroups"] == ["/"], seen


# --- resources and hygiene, seen from inside ------------------------------------------

def test_thread_bomb_is_contained(sandboxed):
    d = sandboxed
    d.deploy("threads", "python3", "attack.threads", HOSTILE, timeout_ms=LOADED)
    assert d.invoke("threads", {"n": 8}).json() == {"started": 8, "error": None}  # control
    bomb = d.invoke("threads", {"n": 1000}).json()
    assert bomb["started"] < 64 and bomb["error"], bomb  # pids.max counts threads
    still_healthy(d)


def test_descriptors_are_bounded_and_not_inherited(sandboxed):
    d = sandboxed
    d.deploy("fds", "python3", "attack.descriptors", HOSTILE, timeout_ms=LOADED)
    small = d.invoke("fds", {"n": 10}).json()
    assert small["opened"] == 10 and small["error"] is None  # control
    # fds 0-3 (stdin, stdout, stderr, the channel), then the listing's own descriptor
    assert small["inherited"][:4] == [0, 1, 2, 3] and len(small["inherited"]) <= 5, small
    bomb = d.invoke("fds", {"n": 100000}).json()
    assert bomb["error"] == "EMFILE" and bomb["opened"] < 1024
    still_healthy(d)


def test_huge_file_is_refused(sandboxed):
    d = sandboxed
    d.deploy("big", "python3", "attack.big_file", HOSTILE, memory_mb=256, timeout_ms=LOADED)
    assert d.invoke("big", {"mb": 1}).json() == "ok"  # control
    r = d.invoke("big", {"mb": 5 * 1024})  # past RLIMIT_FSIZE (4 GiB)
    assert r.status in (200, 502), r
    if r.status == 200:
        assert r.json() in ("EFBIG", "ENOSPC"), r.json()
    else:  # SIGXFSZ ends the process, as the limit intends
        assert "file size limit" in r.json()["errorMessage"], r.json()
    still_healthy(d)


def test_daemon_environment_does_not_leak(start_daemon, monkeypatch):
    monkeypatch.setenv("FND_TEST_DAEMON_SECRET", "hunter2")
    d = start_daemon()
    d.deploy("env", "python3", "attack.environment", HOSTILE, env={"MINE": "yes"})
    env = d.invoke("env").json()
    assert env["MINE"] == "yes"  # control: the function's own variables arrive
    assert "FND_TEST_DAEMON_SECRET" not in env
    assert not any("hunter2" in v for v in env.values())


def test_proc_and_sys_writes_refused(rooted):
    d = rooted
    for path in ("/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/proc/sys/vm/drop_caches"):
        result = fs(d, "fs", op="write", path=path, text="1")
        assert result in ("EACCES", "EROFS", "EPERM", "ENOENT"), (path, result)
    assert fs(d, "fs", op="read", path="/proc/self/status").startswith("ok")  # control


def test_runtime_under_tmp_is_not_hidden_by_the_private_tmp(start_daemon):
    """A daemon installed under /tmp: its runtime folder is bound below the worker's
    /tmp, which must not hide it."""
    import shutil
    import tempfile
    from fndtest import SOURCE_DIR
    where = tempfile.mkdtemp(prefix="fnd-rt-", dir="/tmp")
    try:
        os.chmod(where, 0o755)
        shutil.copytree(os.path.join(SOURCE_DIR, "runtimes"), os.path.join(where, "runtimes"))
        d = start_daemon("--runtime-dir", os.path.join(where, "runtimes"))
        d.deploy("tmprt", "python3", "attack.whoami", HOSTILE)
        r = d.invoke("tmprt")
        assert r.status == 200, r
    finally:
        shutil.rmtree(where, ignore_errors=True)


SCHED_OTHER, SCHED_BATCH = 0, 3


def sched_policy(pid):
    """The scheduling policy of a process: field 41 of /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[38])


def policies_by_start(d, expected_starts):
    """{how the worker started: set of the policies of all its processes}, for one
    function of each way a worker starts (exec'd, forked by the zygote, made from a
    blank), checking that each started the way it was meant to."""
    seen = {}
    for name, (runtime, handler, code, how) in expected_starts.items():
        if how == "blank":
            # one blank of each kind (python3, the native runner) once both were seen:
            # the zygote makes them one after the other
            kinds = len({expected_starts[n][0] for n in seen} & {"python3", "native"})
            assert wait_for(lambda: len(blank_pids(d)) >= kinds, 10), "no blank appeared"
        assert d.deploy(name, runtime, handler, code).status == 201
        assert d.invoke(name).status == 200
        assert started_via(d, name) == how, name
        (pid,) = worker_pids(d, name)
        procs = worker_processes(pid)
        assert procs, name
        seen[name] = {sched_policy(p) for p in procs}
    return seen


def test_workers_run_as_sched_batch_unless_told_otherwise(start_daemon):
    """Every process of every worker, however it was started, runs as SCHED_BATCH, so
    that its wake-ups do not preempt the daemon (sandbox.c); --worker-scheduling
    normal keeps SCHED_OTHER. The daemon itself stays SCHED_OTHER either way."""
    starts = {"nat": ("native", "probe.echo", NATIVE, "exec"),
              "py": ("python3", "app.state", PY, "zygote"),
              "pyb": ("python3", "app.state", PY, "blank"),
              "natb": ("native", "probe.echo", NATIVE, "blank"),
              "js": ("nodejs", "index.state", NODE, "exec")}
    args = ("--log-level", "debug", "--spare-workers", "0")
    d = start_daemon(*args)
    assert policies_by_start(d, starts) == {n: {SCHED_BATCH} for n in starts}
    assert sched_policy(d.pid) == SCHED_OTHER
    d.stop()
    d = start_daemon(*args, "--worker-scheduling", "normal")
    assert policies_by_start(d, starts) == {n: {SCHED_OTHER} for n in starts}


@pytest.mark.parametrize("setting", ["worker-scheduling", "sandbox", "zygote"])
def test_two_way_settings_are_validated(tmp_path, setting):
    """Refused before the daemon starts anything (so nothing leaks either: the
    sanitizer build checks)."""
    r = subprocess.run([FND_BIN, "serve", "--listen", "127.0.0.1:0", "--data",
                        str(tmp_path / "data"), f"--{setting}", "fifo"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and f"{setting}=fifo" in r.stderr, r
    assert "LeakSanitizer" not in r.stderr, r.stderr
