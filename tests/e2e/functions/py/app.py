"""Python test functions for fnd's end-to-end tests."""
import os
import subprocess
import sys
import threading
import time
import uuid

CALLS = 0  # module state: survives across invocations of a warm worker
WORKER = uuid.uuid4().hex  # which worker process answered (pids repeat across namespaces)


def echo(event, context):
    return {"event": event, "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "remaining": context.get_remaining_time_in_millis(),
            "env": {k: os.environ.get(k) for k in ("GREETING", "HOME", "AWS_REGION")}}


def state(event, context):
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "worker": WORKER}


def sleep(event, context):
    time.sleep(event.get("ms", 100) / 1000)
    return {"slept": event.get("ms", 100), "worker": WORKER}


def boom(event, context):
    raise ValueError("bad value: " + str(event.get("why", "none")))


def crash(event, context):
    sys.stdout.flush()
    os._exit(3)


def orphan(event, context):
    """Starts a grandchild, reports its pid on stdout, then runs past the timeout."""
    child = subprocess.Popen(["sleep", "60"])
    print(f"grandchild={child.pid}", flush=True)
    time.sleep(60)


def talk(event, context):
    print("hello from stdout", event.get("tag"))
    print("hello from stderr", event.get("tag"), file=sys.stderr)
    return "ok"


def threads(event, context):
    results = []
    workers = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out = subprocess.run(["echo", "sub"], capture_output=True, text=True).stdout.strip()
    return {"squares": sorted(results), "subprocess": out}


def version(event, context):
    """Reports the version variable at the start and the end of a short run."""
    first = os.environ.get("V")
    time.sleep(event.get("ms", 0) / 1000)
    return {"start": first, "end": os.environ.get("V"), "worker": WORKER}
