#!/usr/bin/env python3
"""Durable async accepts: how many `Prefer: respond-async` invocations per second fnd
answers with 202 (each only after its record is fdatasync'ed), with group commit,
next to baselines measured in the same run; and recovery time of a large event log.

Prints numbers; never passes or fails. Usage:
    async_accept.py [--fnd BUILD/fnd] [--backend auto|uring|threadpool] [--quick]

- HTTP, group commit: pipelined keep-alive connections from two load processes; the
  latency of a request is from the write of its pipeline batch to its 202. Once with
  execution deferred (the accept path alone), once with every invocation also running
  on a native no-op while the load goes on.
- HTTP, one at a time: a single connection, one request in flight, so every accept
  waits for its own fdatasync: the fdatasync-per-record baseline at the HTTP level.
- Log only: the event log's own rate for 200-byte records, appended all at once (group
  commit) and one at a time (one fdatasync per record), via the unit-test binary.
- Recovery: the unit-test binary writes a log of 1M records (200 bytes) and times
  opening it: segment scan, CRC32C of every record, replay. The daemon's own recovery
  of this run's log (accept, start and end records, rebuilt into invocations) is read
  from its start-up line.
Everything talks to 127.0.0.1.
"""
import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import fndtest, native_functions, pct, use_fnd  # noqa: E402


def request(port, fn):
    body = b'{"n": 1}'
    return (f"POST /v1/functions/{fn}/invoke HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Prefer: respond-async\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def read_responses(sock, buf, n):
    """Reads n complete responses; returns (statuses, leftover bytes)."""
    statuses = []
    while len(statuses) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.lower() == "content-length":
                    length = int(v)
            if len(buf) >= end + 4 + length:
                statuses.append(int(head[9:12]))
                buf = buf[end + 4 + length:]
                continue
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return statuses, buf


def load(port, fn, conns, depth, total, out):
    """One load process: conns connections, depth requests per pipeline batch."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    req = request(port, fn)
    bufs = [b""] * conns
    lat, ok, bad = [], 0, 0
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        starts = []
        for s in socks:
            s.sendall(req * depth)
            starts.append(time.perf_counter())
        sent += depth * conns
        for i, s in enumerate(socks):
            st, bufs[i] = read_responses(s, bufs[i], depth)
            t = time.perf_counter()
            lat.extend([(t - starts[i]) * 1000] * depth)
            ok += sum(1 for x in st if x == 202)
            bad += sum(1 for x in st if x != 202)
    elapsed = time.perf_counter() - t0
    for s in socks:
        s.close()
    out.put((ok, bad, elapsed, lat))


def deploy_parked(d, name="parked"):
    """Deploys a function that runs nothing while accepts are measured: with no queue
    its attempts are throttled at once and wait an hour to retry, so its figure is the
    accept path alone (plus one throttled attempt's two records)."""
    r = d.deploy(name, "native", "probe.echo", native_functions(), max_instances=1,
                 max_queue=0, retry={"base_delay_ms": 3600000, "max_delay_ms": 3600000})
    assert r.status == 201, r


def http_group_commit(port, fn, total, procs=2, conns=16, depth=8):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=load, args=(port, fn, conns, depth, total // procs, q))
          for _ in range(procs)]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    results = [q.get(timeout=600) for _ in ps]
    for p in ps:
        p.join()
    wall = time.perf_counter() - t0
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    lat = [x for r in results for x in r[3]]
    return ok, bad, wall, lat


def http_serial(port, n, fn="sink"):
    s = socket.create_connection(("127.0.0.1", port))
    req = request(port, fn)
    buf, lat = b"", []
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(req)
        st, buf = read_responses(s, buf, 1)
        assert st == [202], st
        lat.append((time.perf_counter() - t) * 1000)
    s.close()
    return lat


def unit_binary():
    return os.path.join(fndtest.BUILD_DIR, "tests", "test_eventlog")


def log_only(tmp, n, mode):
    folder = os.path.join(tmp, f"log-{mode}")
    out = subprocess.run([unit_binary(), f"bench-{mode}", folder, str(n), "200"],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(folder)
    return res


def recovery(tmp, n):
    folder = os.path.join(tmp, "log-recover")
    subprocess.run([unit_binary(), "bench-write", folder, str(n), "200"], capture_output=True,
                   check=True)
    best = None
    for _ in range(3):
        out = subprocess.run([unit_binary(), "bench-recover", folder], capture_output=True,
                             text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["records"] == n, res
        best = res if best is None or res["recovery_s"] < best["recovery_s"] else best
    shutil.rmtree(folder)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fnd", default=fndtest.FND_BIN)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    use_fnd(args.fnd)
    total = 4000 if args.quick else 200000
    serial_n = 200 if args.quick else 2000
    log_n = 20000 if args.quick else 200000
    recover_n = 20000 if args.quick else 1000000

    tmp = tempfile.mkdtemp(prefix="fnd-bench-async-")
    try:
        d = fndtest.Daemon(os.path.join(tmp, "data"),
                           ["--eventlog-backend", args.backend])
        try:
            r = d.deploy("sink", "native", "probe.echo", native_functions(), max_instances=2,
                         max_queue=100000)
            assert r.status == 201, r
            deploy_parked(d)
            backend = d.get("/v1/stats").json()["async"]["backend"]
            http_serial(d.port, 20)  # warm-up
            p_ok, p_bad, p_wall, p_lat = http_group_commit(d.port, "parked", total)
            ok, bad, wall, lat = http_group_commit(d.port, "sink", total)
            serial = http_serial(d.port, serial_n)
            time.sleep(1)  # let the accepted invocations' records settle a little
            d.restart()
            m = re.findall(r'msg="event log open".*? next_seq=(\d+) recovery_ms=([\d.]+) '
                           r'recovery_cpu_ms=([\d.]+)', d.log())
            daemon_records, daemon_ms, daemon_cpu = int(m[-1][0]) - 1, float(m[-1][1]), float(m[-1][2])
        finally:
            d.stop()
        group = log_only(tmp, log_n, "write")
        single = log_only(tmp, min(log_n, 5000), "serial")
        rec_s = recovery(tmp, recover_n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rate = ok / wall
    p_rate = p_ok / p_wall
    serial_rate = 1000 / (sum(serial) / len(serial))
    print(f"durable async accepts ({backend} backend, {os.cpu_count()} cores; 2 load processes "
          f"x 16 connections, pipeline 8)")
    print(f"  HTTP, group commit   {p_rate:10.0f} accepts/s  p50 {pct(p_lat, 50):6.2f} ms  "
          f"p99 {pct(p_lat, 99):6.2f} ms  (execution deferred; {p_ok} accepted, {p_bad} refused)")
    print(f"  HTTP, group commit   {rate:10.0f} accepts/s  p50 {pct(lat, 50):6.2f} ms  "
          f"p99 {pct(lat, 99):6.2f} ms  (each also run on a native no-op meanwhile; {ok} "
          f"accepted, {bad} refused)")
    print(f"  HTTP, one at a time  {serial_rate:10.0f} accepts/s  p50 {pct(serial, 50):6.2f} ms  "
          f"p99 {pct(serial, 99):6.2f} ms  (one fdatasync per accept)")
    print(f"  ratio                {p_rate / serial_rate:10.1f}x / {rate / serial_rate:.1f}x")
    g_rate = group["written"] / group["write_s"]
    s_rate = single["written"] / single["write_s"]
    print(f"  log, group commit    {g_rate:10.0f} records/s  ({group['written']} records in "
          f"{group['flushes']} fdatasyncs)")
    print(f"  log, per record      {s_rate:10.0f} records/s  (ratio {g_rate / s_rate:.1f}x)")
    print(f"recovery of {recover_n} records (200 bytes): {rec_s['recovery_s']:.3f} s "
          f"({rec_s['cpu_s']:.3f} s of CPU; {recover_n / rec_s['recovery_s'] / 1e6:.2f} M "
          f"records/s)")
    print(f"daemon restart with this run's log: {daemon_records} records scanned and replayed "
          f"into the pending set in {daemon_ms / 1000:.3f} s ({daemon_cpu / 1000:.3f} s of CPU)")


if __name__ == "__main__":
    main()
