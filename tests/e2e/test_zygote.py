"""The Python fork server: python3 workers are forked from a pre-started interpreter
and walk the same sandbox checklist as exec'd ones. Each test compares against a
daemon started with --zygote off, the exec path, as its positive control."""
import concurrent.futures
import os
import signal
import time

import pytest

from fndtest import (BUILD_DIR, FUNCTIONS, alive, blank_pids, host_pid, limit_groups,
                     started_via, wait_for, worker_pids, worker_processes, zygote_pid)

PY = os.path.join(FUNCTIONS, "py")
HOSTILE = os.path.join(FUNCTIONS, "hostile")


def runtime_cmdline(daemon, name):
    """The command line of the function's runtime process (pid 2 of its namespace)."""
    worker = worker_pids(daemon, name)[0]
    pid = host_pid(worker, 2) or worker  # without a pid namespace, the worker itself
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


@pytest.fixture
def both(start_daemon):
    """A daemon with the zygote and one without it."""
    with_zygote, without = start_daemon(), start_daemon("--zygote", "off")
    assert 'msg="zygote started" runtime=python3' in with_zygote.log()
    assert zygote_pid(with_zygote) and zygote_pid(without) is None
    return with_zygote, without


def test_python_workers_are_forked_from_the_zygote(both):
    for d, forked in zip(both, (True, False)):
        assert d.deploy("st", "python3", "app.state", PY).status == 201
        first, second = d.invoke("st").json(), d.invoke("st").json()
        assert first["worker"] == second["worker"] and second["calls"] == 2  # warm reuse
        # a forked worker keeps the zygote's command line; an exec'd one has its own
        assert (b"--zygote" in runtime_cmdline(d, "st")) == forked


def test_a_forked_worker_is_contained_like_an_exec_one(both):
    seen = []
    for d in both:
        for name, handler in (("who", "attack.whoami"), ("ps", "attack.processes"),
                              ("env", "attack.environment")):
            assert d.deploy(name, "python3", handler, HOSTILE).status == 201
        who = d.invoke("who").json()
        del who["Uid"], who["Gid"]  # one per worker
        ps = d.invoke("ps", {"pid": d.pid}).json()
        env = d.invoke("env").json()
        env.pop("AWS_LAMBDA_LOG_STREAM_NAME")  # names the worker
        env.pop("_X_AMZN_TRACE_ID", None)  # one per invocation
        seen.append((who, ps, env))
    forked, execd = seen
    assert forked == execd
    who, ps, env = forked
    assert who["CapEff"] == "0000000000000000" and who["Seccomp"] == "2"
    # SIGPIPE and SIGXFSZ ignored, SIGINT caught (KeyboardInterrupt), as at start-up
    assert int(who["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1))
    assert int(who["SigCgt"], 16) & 1 << (signal.SIGINT - 1) and who["SigBlk"] == "0" * 8
    assert ps["pids"] == [1, 2] and ps["signal"] == "ESRCH"
    assert "PYTHONDONTWRITEBYTECODE" in env and env["HOME"] == "/tmp"


def test_handler_errors_and_init_errors_through_the_zygote(both):
    d = both[0]
    assert d.deploy("boom", "python3", "app.boom", PY).status == 201
    r = d.invoke("boom", {"why": "z"})
    assert r.status == 500 and r.json()["errorMessage"] == "bad value: z"
    broken = os.path.join(FUNCTIONS, "broken")
    assert d.deploy("syn", "python3", "syntax.handler", broken).status == 201
    assert d.invoke("syn").json()["errorType"] == "Runtime.UserCodeSyntaxError"
    assert d.deploy("crash", "python3", "app.crash", PY).status == 201
    r = d.invoke("crash")
    assert r.status == 502 and "exit status 3" in r.json()["errorMessage"], r


def test_a_dead_zygote_falls_back_to_exec(both):
    d = both[0]
    pid = zygote_pid(d)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert d.deploy("st", "python3", "app.state", PY).status == 201
    assert d.invoke("st").json()["calls"] == 1  # served all the same
    assert 'msg="zygote failed"' in d.log()
    assert b"--zygote" not in runtime_cmdline(d, "st")
    assert d.invoke("st").json()["calls"] == 2


def test_the_zygote_stops_with_the_daemon(both):
    d = both[0]
    pid = zygote_pid(d)
    d.stop()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid)


def test_a_stalled_zygote_does_not_stall_the_daemon(start_daemon):
    """Workers start on the threadpool: a worker start waiting on a fork server that
    stopped answering (SIGSTOP) holds back that worker only, while the daemon serves
    everything else; the start completes when the zygote resumes."""
    d = start_daemon()
    native = os.path.join(BUILD_DIR, "tests", "functions", "native")
    assert d.deploy("st", "python3", "app.state", PY).status == 201
    assert d.deploy("nat", "native", "probe.echo", native).status == 201
    pid = zygote_pid(d)
    os.kill(pid, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(d.invoke, "st")
            time.sleep(0.3)  # its worker's start is now stuck on the zygote
            t0 = time.monotonic()
            assert d.request("GET", "/healthz", timeout=5).status == 200
            r = d.request("POST", "/v1/functions/nat/invoke", b"ping", timeout=5)
            assert r.status == 200 and r.body == b"ping"
            assert time.monotonic() - t0 < 3
            assert not waiting.done()
            os.kill(pid, signal.SIGCONT)
            r = waiting.result(timeout=30)
            assert r.status == 200 and r.json()["calls"] == 1, r
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGCONT)
    assert b"--zygote" in runtime_cmdline(d, "st")  # it was the zygote that started it


# --- blanks: children made ahead of the worker they become (src/zygote.c) -----------------

def from_a_blank(daemon, name, handler, code, event=None, **config):
    """Deploys and invokes name once a blank is waiting; returns the answer's JSON."""
    assert wait_for(lambda: blank_pids(daemon), 10), "no blank appeared"
    assert daemon.deploy(name, "python3", handler, code, **config).status == 201
    r = daemon.invoke(name, event)
    assert r.status == 200, r
    return r.json()


@pytest.fixture
def blanks(start_daemon):
    # no spares: each would take the blank that a test means for its next function
    d = start_daemon("--log-level", "debug", "--spare-workers", "0")
    # the zygote makes blanks in the shape of the requests it has seen: give it one
    assert d.deploy("first", "python3", "app.state", PY).status == 201
    assert d.invoke("first").json()["calls"] == 1
    assert started_via(d, "first") == "zygote"
    return d


def test_a_blank_becomes_a_worker_contained_like_an_exec_one(blanks, start_daemon):
    """Every worker below is a blank that waited before its function existed: it must
    end up with the same ids, capabilities, filters, signals, processes, environment,
    descriptors, code and /tmp as a worker exec'd for the same function."""
    execd = start_daemon("--zygote", "off")
    cases = (("who", "attack.whoami", None), ("ps", "attack.processes", "pid"),
             ("env", "attack.environment", None), ("fds", "attack.descriptors", {"n": 1}),
             ("around", "attack.surroundings", None))
    seen = []
    for d in (blanks, execd):
        answers = {}
        for name, handler, event in cases:
            event = {"pid": d.pid} if event == "pid" else event
            if d is blanks:
                answers[name] = from_a_blank(d, name, handler, HOSTILE, event)
                assert started_via(d, name) == "blank", name
            else:
                assert d.deploy(name, "python3", handler, HOSTILE).status == 201
                answers[name] = d.invoke(name, event).json()
        del answers["who"]["Uid"], answers["who"]["Gid"]  # one per worker
        answers["env"].pop("AWS_LAMBDA_LOG_STREAM_NAME")  # names the worker
        answers["env"].pop("_X_AMZN_TRACE_ID", None)  # one per invocation
        seen.append(answers)
    from_blank, from_exec = seen
    assert from_blank == from_exec
    who, ps, around = from_blank["who"], from_blank["ps"], from_blank["around"]
    assert who["CapEff"] == "0000000000000000" and who["Seccomp"] == "2"
    assert ps["pids"] == [1, 2] and ps["signal"] == "ESRCH" and ps["cgroups"] == ["/"]
    # its own code, read-only; nothing left of the blank's rehearsal
    assert around["cwd"] == "/var/task" and "attack.py" in around["task"]
    assert around["task_mount"] and around["task_mount"][0].split(",")[0] == "ro"
    # (/tmp also holds the mount points of a daemon installed under /tmp, as exec'd)
    assert not [t for t in around["tmp"] if "rehearsal" in t]
    assert around["modules"] == [] and around["path"] == []
    assert from_blank["fds"]["inherited"] == [0, 1, 2, 3, 4]  # 4: the listing's own


def test_a_blank_worker_and_its_init_are_in_its_own_groups(blanks):
    """Both processes of a worker that was a blank, its init and its runtime, are in
    the worker's cgroups (each moved itself in when the blank became the worker), with
    the worker's uid, limits and filters; the zygote and the next blank stay in the
    daemon's groups."""
    d = blanks
    if f"/fnd-{d.pid}/" not in open(f"/proc/{worker_pids(d, 'first')[0]}/cgroup").read():
        assert os.geteuid() != 0, "cgroups are off although the daemon runs as root"
        pytest.skip("this unprivileged daemon has no cgroups")
    from_a_blank(d, "grouped", "app.state", PY)
    assert started_via(d, "grouped") == "blank"
    home = limit_groups(f"/proc/{d.pid}/cgroup")
    procs = worker_processes(worker_pids(d, "grouped")[0])
    assert len(procs) == 2, procs  # the namespace's init and the runtime
    for p in procs:
        groups = limit_groups(f"/proc/{p}/cgroup")
        for controller in ("memory", "pids"):
            assert f"/fnd-{d.pid}/w" in groups[controller], (p, groups)
    assert len({limit_groups(f"/proc/{p}/cgroup")["memory"] for p in procs}) == 1

    def status(p):
        with open(f"/proc/{p}/status") as f:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        return {k: fields[k] for k in ("Uid", "Gid", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp",
                                       "Seccomp_filters")}

    def limits(p):
        with open(f"/proc/{p}/limits") as f:
            return [l for l in f if l.startswith(("Max open files", "Max file size",
                                                  "Max cpu time", "Max core file size"))]
    init = worker_pids(d, "grouped")[0]
    (runtime,) = [p for p in procs if p != init]
    assert status(init) == status(runtime) and limits(init) == limits(runtime)
    assert status(init)["Uid"].split()[0] != "0" and status(init)["CapEff"] == "0" * 16
    assert any("1024" in l for l in limits(init) if l.startswith("Max open files")), limits(init)
    assert wait_for(lambda: blank_pids(d), 10)
    for p in [zygote_pid(d)] + blank_pids(d):
        assert limit_groups(f"/proc/{p}/cgroup") == home, p


def test_a_blank_of_another_shape_is_set_aside(blanks):
    """A network:none function needs a network namespace the waiting blank does not
    have: it gets a fresh fork, the blank is killed and reaped, and a blank of the new
    shape serves the next such function."""
    d = blanks
    assert wait_for(lambda: blank_pids(d), 10)
    (old,) = blank_pids(d)
    target = {"host": "127.0.0.1", "port": d.port}
    assert d.deploy("closed", "python3", "attack.connect", HOSTILE, network="none").status == 201
    assert d.invoke("closed", target).json() == "ECONNREFUSED"
    assert started_via(d, "closed") == "zygote"
    assert wait_for(lambda: not alive(old) and not os.path.exists(f"/proc/{old}"), 5), old
    assert from_a_blank(d, "closed2", "attack.connect", HOSTILE, target,
                        network="none") == "ECONNREFUSED"
    assert started_via(d, "closed2") == "blank"
    assert from_a_blank(d, "lo", "attack.loopback", HOSTILE, network="none") == "ping"


def test_a_killed_blank_is_reaped_and_replaced(blanks):
    d = blanks
    assert wait_for(lambda: blank_pids(d), 10)
    (old,) = blank_pids(d)
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: not alive(old), 5)
    assert d.deploy("after", "python3", "app.state", PY).status == 201
    assert d.invoke("after").json()["calls"] == 1  # served by a fresh fork
    assert started_via(d, "after") == "zygote"
    assert wait_for(lambda: not os.path.exists(f"/proc/{old}"), 5), "the dead blank was not reaped"
    assert from_a_blank(d, "later", "app.state", PY)["calls"] == 1
    assert started_via(d, "later") == "blank"


def test_the_init_of_a_blank_whose_runtime_died_ends_with_it(blanks):
    """A blank's init waits for its orders on a socket that the zygote holds too, so
    the socket's end cannot tell it that the blank is gone: the runtime's exit must.
    The init then ends at once, not at the zygote's next request, and the zygote gets
    its next worker from a fresh fork and a new blank."""
    d = blanks
    assert wait_for(lambda: blank_pids(d), 10)
    (init,) = blank_pids(d)
    runtime = wait_for(lambda: host_pid(init, 2), 5)
    assert runtime, "the blank has no runtime under its init"
    os.kill(runtime, signal.SIGKILL)
    assert wait_for(lambda: not alive(init), 5), "the init outlived its runtime"
    assert d.deploy("after2", "python3", "app.state", PY).status == 201
    assert d.invoke("after2").json()["calls"] == 1
    assert started_via(d, "after2") == "zygote"
    assert from_a_blank(d, "later2", "app.state", PY)["calls"] == 1
    assert started_via(d, "later2") == "blank"


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def test_the_zygote_serves_a_blank_without_copying_pages(blanks):
    """After a blank's fork, the zygote copies the pages a request writes while it is
    idle (own_request_pages), so that serving the next request through the blank
    faults on none of them: it took 24 page copies before, 12-17 us each. The count is
    read as soon as the answer is back, well before the next blank is made; three
    tries, as a fault of the machine's own may land in one."""
    d = blanks
    zygote = zygote_pid(d)
    seen = []
    for i in range(3):
        assert wait_for(lambda: blank_pids(d), 10)
        time.sleep(0.2)  # the blank's birth and the zygote's copies are done
        before = minor_faults(zygote)
        assert d.deploy(f"own{i}", "python3", "app.state", PY).status == 201
        assert d.invoke(f"own{i}").json()["calls"] == 1
        seen.append(minor_faults(zygote) - before)
        assert started_via(d, f"own{i}") == "blank"
        if seen[-1] < 8:
            break
    assert min(seen) < 8, seen


NATIVE = os.path.join(BUILD_DIR, "tests", "functions", "native")
ATTACKS = ("ptrace", "mount", "unshare", "unshare_cgroup", "move_mount", "setns", "clone_newns", "bpf", "personality",
           "kill_everyone", "kill_group", "kill_self", "setuid0", "shm_find", "af_packet")


def process_view(pid):
    """What the host sees of one process: ids, capabilities, filters, limits."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    with open(f"/proc/{pid}/limits") as f:
        limits = [l.split() for l in f if l.startswith(("Max open files", "Max file size",
                                                        "Max cpu time", "Max core file size"))]
    return {k: fields[k] for k in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp",
                                   "Seccomp_filters")}, limits


def test_a_native_worker_from_a_blank_is_contained_like_an_exec_one(blanks, start_daemon):
    """The zygote's blanks also exec the native runner ahead of need, which becomes a
    function's worker when asked (-ENOENT when no blank fits: the daemon execs, as
    before). Its answers to every attack, its process state and its groups match an
    exec'd worker's."""
    d, execd = blanks, start_daemon("--zygote", "off")
    assert d.deploy("warmup", "native", "probe.echo", NATIVE).status == 201
    assert d.invoke("warmup", raw="x").body == b"x"
    assert started_via(d, "warmup") == "exec"  # no blank of the runner yet: exec'd
    seen = []
    for daemon in (d, execd):
        if daemon is d:
            assert wait_for(lambda: len(blank_pids(d)) == 2, 10), blank_pids(d)  # both kinds
        assert daemon.deploy("n", "native", "attack.attack", NATIVE).status == 201
        answers = {a: daemon.invoke("n", raw=a).json() for a in ATTACKS}
        worker = worker_pids(daemon, "n")[0]
        runtime = host_pid(worker, 2)
        with open(f"/proc/{runtime}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{runtime}/fd"))
        views = [process_view(p) for p in (worker, runtime)]
        seen.append((answers, fds, views, cmdline))
        if daemon is d:
            assert started_via(d, "n") == "blank"
            for p in (worker, runtime):
                groups = limit_groups(f"/proc/{p}/cgroup")
                assert all(f"/fnd-{d.pid}/w" in groups[c] for c in ("memory", "pids")), groups
    (blank_answers, blank_fds, blank_views, blank_cmd), (answers, fds, views, cmd) = seen
    assert blank_answers == answers and blank_fds == fds == [0, 1, 2, 3]
    assert blank_views == views and views[0] == views[1]  # the init as contained as the runtime
    assert blank_cmd[-2:] == [b"--blank", b""] and b"--blank" not in cmd
    assert answers["kill_self"] == {"rc": 0, "errno": 0}  # positive control
