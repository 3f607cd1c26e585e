"""Crash safety of async invocations: a flood of async invokes while the daemon is
SIGKILLed at random moments, several times over the same data folder. After the last
restart every invocation that got a 202 reaches a terminal state (none is lost), and
none that had been reported succeeded before a crash runs again. Executions are
counted outside the daemon by a HitCounter the function reports to."""
import http.client
import json
import random
import signal
import threading
import time

import pytest

from fndtest import FUNCTIONS, HitCounter, start_on_backend

ROUNDS = 4
CLIENTS = 6


class Flood:
    """Client threads sending async invokes until stopped or the daemon dies; a poller
    notes invocations seen succeeded (with their execution count at that moment)."""

    def __init__(self, d, counter, accepted, seen_succeeded):
        self.port = d.port
        self.token = d.token  # GET /v1/invocations/{id} needs the control-plane token
        self.counter = counter
        self.accepted = accepted              # id -> round, every id that got 202
        self.seen_succeeded = seen_succeeded  # id -> executions when seen succeeded
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]
        self.threads.append(threading.Thread(target=self.poller))

    def run(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def client(self, i):
        body = json.dumps({"counter": self.counter.port}).encode()
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/v1/functions/rec/invoke", body,
                             {"Prefer": "respond-async"})
                r = conn.getresponse()
                data = r.read()
                if r.status == 202:
                    with self.lock:
                        self.accepted[json.loads(data)["invocation_id"]] = True
            except (OSError, http.client.HTTPException):
                conn = None
                if self.stop.wait(0.05):
                    break
        if conn:
            conn.close()

    def poller(self):
        conn = None
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.accepted)
            if not ids:
                time.sleep(0.01)
                continue
            inv = random.choice(ids)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", f"/v1/invocations/{inv}",
                             headers={"Authorization": "Bearer " + self.token})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                conn = None
                if self.stop.wait(0.05):
                    break
                continue
            if r.status == 200 and json.loads(data)["status"] == "succeeded":
                # The function reported before it returned, so this count includes
                # the execution that succeeded; it must never grow again.
                with self.lock:
                    self.seen_succeeded.setdefault(inv, self.counter.count(inv))


@pytest.mark.parametrize("backend", ["uring", "threadpool"])
def test_sigkill_during_flood_loses_nothing_and_reruns_no_success(start_daemon, tmp_path,
                                                                   backend):
    rng = random.Random()
    accepted, seen = {}, {}
    with HitCounter() as counter:
        d = start_on_backend(start_daemon, backend, data=str(tmp_path / "data"))
        r = d.deploy("rec", "python3", "app.record", f"{FUNCTIONS}/async", max_instances=4,
                     retry={"max_attempts": 20, "base_delay_ms": 20, "max_delay_ms": 200})
        assert r.status == 201, r
        for rnd in range(ROUNDS):
            flood = Flood(d, counter, accepted, seen)
            flood.run()
            time.sleep(rng.uniform(0.8, 2.0))
            d.stop(signal.SIGKILL)  # at a random moment of the flood
            flood.join()
            d.start()
        assert len(accepted) >= 500, f"only {len(accepted)} accepted: the flood was too slow"
        # Drain: every accepted invocation reaches a terminal state.
        deadline = time.monotonic() + 240
        pending = set(accepted)
        final = {}
        while pending and time.monotonic() < deadline:
            for inv in list(pending):
                r = d.get(f"/v1/invocations/{inv}")
                assert r.status == 200, f"accepted {inv} was lost: {r}"
                body = r.json()
                if body["status"] in ("succeeded", "failed", "dead_letter"):
                    final[inv] = body
                    pending.discard(inv)
            if pending:
                time.sleep(0.5)
        assert not pending, f"{len(pending)} of {len(accepted)} never finished"
        time.sleep(1)  # anything that would wrongly run again has had time to report
        counts = counter.snapshot()
    assert {b["status"] for b in final.values()} == {"succeeded"}
    assert all(counts.get(inv, 0) >= 1 for inv in accepted)
    rerun = {inv: (n, counts[inv]) for inv, n in seen.items() if counts[inv] != n}
    assert not rerun, f"succeeded invocations ran again after a crash: {rerun}"
    assert len(seen) >= 20, "the poller saw too few successes to prove anything"
    # At-least-once: re-executions happen only for attempts a crash interrupted.
    extra = sum(counts[inv] - 1 for inv in accepted)
    assert extra <= ROUNDS * 4 * 2 + 50, f"{extra} re-executions for {ROUNDS} crashes"
    print(f"accepted={len(accepted)} seen_succeeded={len(seen)} re_executions={extra}")
