#!/usr/bin/env python3
"""What the Lambda layer costs: warm invocation latency through the Lambda API's Invoke
next to the native /v1 invoke of the same Python function, and warm and cold latency
of the custom runtimes (bash + curl, C + libcurl) through the Runtime API adapter.

Prints a table; never passes or fails. Usage:
    lambda_latency.py [--fnd BUILD/fnd] [--quick]

Warm: N sequential invocations on one keep-alive connection (after one warm-up). Cold:
each sample redeploys with a changed environment variable (a new version needs a new
worker) and times that invocation only. Everything talks to 127.0.0.1.
"""
import argparse
import http.client
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import fndtest, pct, use_fnd  # noqa: E402
from invoke_latency import row  # noqa: E402


def warm(d, path, n, body=b"{}"):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    out = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        r.read()
        assert r.status == 200 and not r.getheader("X-Amz-Function-Error"), r.status
        if i:
            out.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return out


def cold(d, name, runtime, handler, n):
    out = []
    for i in range(n):
        r = d.request("PUT", f"/v1/functions/{name}",
                      {"runtime": runtime, "handler": handler, "env": {"SAMPLE": str(i)}})
        assert r.status == 200, r
        t0 = time.perf_counter()
        r = d.request("POST", f"/2015-03-31/functions/{name}/invocations", b"{}")
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200 and "x-amz-function-error" not in r.headers, r
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fnd", default=fndtest.FND_BIN)
    ap.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    args = ap.parse_args()
    use_fnd(args.fnd)
    n_warm, n_cold = (30, 3) if args.quick else (2000, 30)
    examples = os.path.join(fndtest.BUILD_DIR, "examples")
    print(f"fnd Lambda layer latency ({'quick' if args.quick else 'full'} run, "
          f"{os.cpu_count()} cpus, sandbox on)")
    with tempfile.TemporaryDirectory() as tmp:
        py = os.path.join(tmp, "py")
        os.makedirs(py)
        with open(os.path.join(py, "app.py"), "w") as f:
            f.write("def handler(event, context):\n    return None\n")
        d = fndtest.Daemon(os.path.join(tmp, "data"))
        try:
            fns = {"noop-py": ("python3", "app.handler", py),
                   "noop-bash": ("provided", "function.handler", os.path.join(examples, "hello-bash")),
                   "noop-c": ("provided", "bootstrap", os.path.join(examples, "hello-c-runtime"))}
            for name, (runtime, handler, code) in fns.items():
                r = d.deploy(name, runtime, handler, code)
                assert r.status == 201, r
            print(f"warm invoke, {n_warm} sequential on one connection:")
            native = warm(d, "/v1/functions/noop-py/invoke", n_warm)
            row("python3 no-op, native /v1", native)
            row("python3 no-op, Lambda Invoke", warm(d, "/2015-03-31/functions/noop-py/invocations",
                                                     n_warm), native)
            row("provided C (libcurl), Lambda Invoke",
                warm(d, "/2015-03-31/functions/noop-c/invocations", n_warm), native)
            # bash forks a dozen processes an invocation: fewer samples keep the run short
            row(f"provided bash (curl), {min(n_warm, 100)} only",
                warm(d, "/2015-03-31/functions/noop-bash/invocations", min(n_warm, 100)), native)
            print(f"cold start to first response, {n_cold} samples (ratio vs python3 cold):")
            py_cold = cold(d, "noop-py", "python3", "app.handler", n_cold)
            row("python3 cold", py_cold)
            row("provided C cold", cold(d, "noop-c", "provided", "bootstrap", n_cold), py_cold)
            row("provided bash cold", cold(d, "noop-bash", "provided", "function.handler", n_cold),
                py_cold)
        finally:
            d.stop()
    print(f"  (warm p50 of the native /v1 path: {pct(native, 50):.3f} ms)")


if __name__ == "__main__":
    main()
