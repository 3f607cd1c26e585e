#!/usr/bin/env python3
"""Warm and cold invocation latency per runtime, next to baselines measured in the
same run: fork+exec of /bin/true, `python3 -c pass`, `node -e 0`.

Prints a table; never passes or fails. Usage:
    invoke_latency.py [--fnd BUILD/fnd] [--quick]

Warm: N sequential invocations of a no-op on one keep-alive connection (after one
warm-up). Cold: each sample redeploys the function with a changed environment variable
(a new version, so the next invocation needs a new worker), waits until no worker is
starting or stopping, and times that invocation only. Everything talks to 127.0.0.1.
"""
import argparse
import http.client
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import BASELINE_LABELS, fndtest, native_functions, pct, process_baselines, use_fnd  # noqa: E402,E501


def write_functions(root):
    py = os.path.join(root, "py")
    node = os.path.join(root, "node")
    os.makedirs(py)
    os.makedirs(node)
    with open(os.path.join(py, "app.py"), "w") as f:
        f.write("import time\n\n\ndef handler(event, context):\n    return None\n\n\n"
                "def nap(event, context):\n    time.sleep(event.get('ms', 0) / 1000)\n")
    with open(os.path.join(node, "index.js"), "w") as f:
        f.write("exports.handler = async () => null;\n"
                "exports.nap = async (e) => e.ms ? new Promise((ok) => setTimeout(ok, e.ms, null)) "
                "  : null;\n")
    return {"native": (native_functions(), "probe.echo"), "python3": (py, "app.handler"),
            "nodejs": (node, "index.handler")}


# Handlers that sleep for a while, for step_up: (handler, event that sleeps ms).
NAPS = {"native": ("probe.nap", lambda ms: str(ms)),
        "python3": ("app.nap", lambda ms: f'{{"ms": {ms}}}'),
        "nodejs": ("index.nap", lambda ms: f'{{"ms": {ms}}}')}


def warm(d, name, n):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    path = f"/v1/functions/{name}/invoke"
    out = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        conn.request("POST", path, body=b"{}")
        r = conn.getresponse()
        r.read()
        if i:
            out.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, r.status
    conn.close()
    return out


# More than the daemon waits after an answer before it starts the spares that answer
# allows (SPARE_START_DELAY_MS in src/controller.c).
SPARE_START_DELAY_S = 0.02


def wait_quiet(d, name, timeout=30):
    """Waits until no worker of the function is starting or stopping: the spare the
    daemon starts after an answer, and the old version's workers after a redeploy,
    would otherwise share the CPU with the next sample. It first gives that spare the
    moment after an answer in which it is not started yet."""
    time.sleep(SPARE_START_DELAY_S)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        i = d.get(f"/v1/functions/{name}").json()["state"]["instances"]
        if i["starting"] == 0 and i["stopping"] == 0:
            return
        time.sleep(0.005)


# How long a python3 or native sample waits on a quiet daemon: the zygote makes its
# blank 50 ms after its last request (src/zygote.c), and a python3 blank rehearses for
# 25-40 ms here.
BLANK_READY_S = 0.25


def cold(d, name, runtime, handler, n):
    """n cold starts on a quiet daemon: each redeploys (a new version needs a new
    worker), waits for the old workers to be gone (and, for python3 and native, for the
    zygote's blank to be ready), and times one invocation."""
    out = []
    for i in range(n):
        r = d.request("PUT", f"/v1/functions/{name}",
                      {"runtime": runtime, "handler": handler, "env": {"SAMPLE": str(i)}})
        assert r.status == 200, r
        wait_quiet(d, name)
        if runtime in ("python3", "native"):
            time.sleep(BLANK_READY_S)
        t0 = time.perf_counter()
        r = d.invoke(name, raw="{}")
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, r
        wait_quiet(d, name)
    return out


def timed_beside_a_hold(d, pool, name, event, hold_ms):
    """Holds one worker of name with a hold_ms invocation, then times another one in
    ms, on a connection opened beforehand (as warm() does: the figure is the daemon's
    and not a TCP handshake's)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.connect()
    held = pool.submit(d.invoke, name, None, event(hold_ms))
    time.sleep(0.05)  # the hold is running before the timed request arrives
    t0 = time.perf_counter()
    conn.request("POST", f"/v1/functions/{name}/invoke", body=event(0).encode())
    r = conn.getresponse()
    r.read()
    took = (time.perf_counter() - t0) * 1000
    conn.close()
    assert r.status == 200 and held.result().status == 200, r.status
    return took


def step_up(d, name, runtime, code, n, hold_ms=300, floors=True):
    """Latency in ms of the invocation that takes a function from one busy worker to
    two, n samples, and of the same step once both workers are warm (the floor: what
    any invocation costs after the 50 ms of quiet beside the hold, which on these
    machines is far above a warm invocation's cost in a busy loop). Each sample
    redeploys (a new version), warms one worker and waits until the daemon has started
    every worker it wants (the spare it starts after the first answer, if it keeps
    one), then holds that worker with a hold_ms invocation and times a second one;
    then, with floors, it does the same again. Returns (steps, floors)."""
    import concurrent.futures
    handler, event = NAPS[runtime]
    out, floor = [], []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        for i in range(n):
            r = d.deploy(name, runtime, handler, code, env={"SAMPLE": str(i)})
            assert r.status in (200, 201), r
            assert d.invoke(name, raw=event(0)).status == 200
            wait_quiet(d, name)
            out.append(timed_beside_a_hold(d, pool, name, event, hold_ms))
            if floors:
                wait_quiet(d, name)
                floor.append(timed_beside_a_hold(d, pool, name, event, hold_ms))
    return out, floor


def row(label, samples, base=None):
    p50, p99 = pct(samples, 50), pct(samples, 99)
    ratio = f"{p50 / pct(base, 50):7.2f}x" if base else "        "
    print(f"  {label:<34} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms  {ratio}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fnd", default=fndtest.FND_BIN)
    ap.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    args = ap.parse_args()
    use_fnd(args.fnd)
    n_warm, n_cold, n_base = (50, 5, 5) if args.quick else (2000, 50, 50)

    print(f"fnd invoke latency ({'quick' if args.quick else 'full'} run, {os.cpu_count()} cpus)")
    print("baselines (same run):")
    baseline = process_baselines(n_base)
    for runtime, samples in baseline.items():
        row(BASELINE_LABELS[runtime], samples)

    # (label, daemon flags, runtimes measured): the sandbox's cost is on minus off, the
    # zygote's gain the Python cold start without it minus with it
    configs = [("sandbox on", [], list(baseline)),
               ("sandbox off", ["--sandbox", "off"], list(baseline)),
               ("sandbox on, zygote off", ["--zygote", "off"], ["python3"])]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        fns = write_functions(tmp)
        for i, (label, flags, runtimes) in enumerate(configs):
            d = fndtest.Daemon(os.path.join(tmp, f"data-{i}"), flags)
            try:
                for runtime in runtimes:
                    code, handler = fns[runtime]
                    r = d.deploy(f"noop-{runtime}", runtime, handler, code)
                    assert r.status == 201, r
                if i == 0:
                    print(f"warm invoke, {n_warm} sequential on one connection (sandbox on):")
                    for runtime in runtimes:
                        row(f"{runtime} no-op", warm(d, f"noop-{runtime}", n_warm))
                print(f"cold start to first response, {label}, {n_cold} samples "
                      "(ratio vs its baseline):")
                for runtime in runtimes:
                    code, handler = fns[runtime]
                    samples = cold(d, f"noop-{runtime}", runtime, handler, n_cold)
                    results[label, runtime] = samples
                    row(f"{runtime} cold", samples, baseline[runtime])
                    on = results.get(("sandbox on", runtime))
                    if label == "sandbox off":
                        cost = pct(on, 50) - pct(samples, 50)
                        print(f"  {'':<34} sandbox cost at p50: {cost:+.3f} ms per worker")
                    elif label == "sandbox on, zygote off":
                        gain = pct(samples, 50) - pct(on, 50)
                        print(f"  {'':<34} the zygote saves {gain:.3f} ms at p50 "
                              f"({pct(samples, 50) / pct(on, 50):.2f}x)")
            finally:
                d.stop()


if __name__ == "__main__":
    main()
