"""fnd's Python runtime: loads a handler once per worker and serves invocations over
the worker protocol (docs/protocol.md) on fd 3.

The handler "pkg/module.function" (or "pkg.module.function") is imported once, so
module-level state persists across the invocations a warm worker serves, as on
Lambda. Each invocation is one INVOKE frame in and one RESULT or ERROR frame out;
an answer sent while the daemon had not read all the invocation printed is held, and
nothing runs until the daemon's DRAINED (protocol.md, "Pipelining").
"""
import fcntl
import importlib
import json
import os
import select
import struct
import sys
import termios
import traceback

FD = 3
HEADER = struct.Struct("<IBBH")
READY, INIT_ERROR, INVOKE, RESULT, ERROR, DRAINED = 1, 2, 3, 4, 5, 6
READY_PIPELINED = INVOKE_PIPELINED = REPLY_HELD = 1  # header flags (include/fnd/protocol.h)


def send(kind, payload=b"", flags=0):
    data = HEADER.pack(len(payload), kind, flags, 0) + payload
    view = memoryview(data)
    while view:
        n = os.write(FD, view)
        view = view[n:]


_inbox = bytearray()  # read from the channel but not yet taken
# A reader blocked in os.read would be woken for nothing once per invocation, when the
# daemon reads our reply (fnd_channel_wait in include/fnd/protocol.h says why); a poll
# for readability is not.
_readable = select.poll()
_readable.register(FD, select.POLLIN)


def read_exact(n):
    """n bytes from the channel, or None at EOF. Reads ahead: the daemon sends a frame's
    header and payload in one write, so one read usually brings both."""
    while len(_inbox) < n:
        _readable.poll()
        part = os.read(FD, max(n - len(_inbox), 1 << 16))
        if not part:
            return None
        _inbox.extend(part)
    data = bytes(_inbox[:n])
    del _inbox[:n]
    return data


def error_object(exc, kind=None):
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorType": kind or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": [line.rstrip("\n") for line in traceback.format_list(frames)],
    }


class _Client:
    """context.client_context.client, as Lambda's Python runtime shapes it."""

    def __init__(self, obj):
        self.installation_id = obj.get("installation_id")
        self.app_title = obj.get("app_title")
        self.app_version_name = obj.get("app_version_name")
        self.app_version_code = obj.get("app_version_code")
        self.app_package_name = obj.get("app_package_name")


class ClientContext:
    """context.client_context: what the caller sent in X-Amz-Client-Context."""

    def __init__(self, obj):
        client = obj.get("client")
        self.client = _Client(client) if isinstance(client, dict) else None
        self.custom = obj.get("custom")
        self.env = obj.get("env")


def worker_fields():
    """The context's fields that come from the worker's environment: the same for
    every invocation, so read once (each os.environ lookup encodes its key)."""
    env = os.environ
    return {
        "function_name": env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
        "function_version": env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        "memory_limit_in_mb": int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
        "log_group_name": env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
        "log_stream_name": env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
    }


class Context:
    """The Lambda context object."""

    def __init__(self, meta, worker):
        self.__dict__.update(worker)
        self.aws_request_id = meta["request_id"]
        self.invoked_function_arn = meta.get("invoked_function_arn", "")
        self.identity = None
        client_context = meta.get("client_context")
        self.client_context = ClientContext(json.loads(client_context)) if client_context else None
        self._deadline_ms = meta["deadline_ms"]

    def get_remaining_time_in_millis(self):
        import time
        return max(0, int(self._deadline_ms - time.time() * 1000))


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    module_path, _, function_name = spec.rpartition(".")
    module_name = module_path.replace("/", ".")
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        return None, error_object(exc, "Runtime.UserCodeSyntaxError")
    except Exception as exc:  # noqa: BLE001 - any import failure is reported
        obj = error_object(exc, "Runtime.ImportModuleError")
        obj["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        return None, obj
    handler = getattr(module, function_name, None)
    if not callable(handler):
        return None, {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
    return handler, None


_unread = bytearray(4)


def output_unread():
    """Whether stdout or stderr holds bytes the daemon has not read (protocol.h,
    fnd_output_unread): if so the answer is held, and nothing runs before DRAINED."""
    for fd in (1, 2):
        try:
            fcntl.ioctl(fd, termios.FIONREAD, _unread)
        except OSError:
            return True
        if _unread != b"\0\0\0\0":
            return True
    return False


def read_frame():
    """The next frame as (kind, payload, flags), or None at EOF."""
    header = read_exact(HEADER.size)
    if header is None:
        return None
    length, kind, flags, _ = HEADER.unpack(header)
    payload = read_exact(length) if length else b""
    return None if payload is None else (kind, payload, flags)


def serve(handler):
    worker = worker_fields()
    held = False  # the last answer was held and its DRAINED has not come yet
    while True:
        frame = read_frame()
        if frame is not None and frame[0] == DRAINED:
            held = False
            continue
        if frame is None or frame[0] != INVOKE:
            return
        payload, pipelined = frame[1], frame[2] & INVOKE_PIPELINED
        if held:  # sent ahead of the last answer's DRAINED, which comes next
            if (read_frame() or (None,))[0] != DRAINED:
                return
            held = False
        (meta_len,) = struct.unpack_from("<I", payload)
        meta = json.loads(payload[4 : 4 + meta_len])
        event_bytes = payload[4 + meta_len :]
        if meta.get("trace_id"):
            os.environ["_X_AMZN_TRACE_ID"] = meta["trace_id"]
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            event = json.loads(event_bytes) if event_bytes else {}
            result = handler(event, Context(meta, worker))
            try:
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                reply = (ERROR, json.dumps(error_object(exc, "Runtime.MarshalError")).encode())
            else:
                reply = (RESULT, body)
        except SystemExit as exc:
            send(ERROR, json.dumps(error_object(exc, "Runtime.ExitError")).encode())
            raise
        except Exception as exc:  # noqa: BLE001 - every handler error is reported
            reply = (ERROR, json.dumps(error_object(exc)).encode())
        sys.stdout.flush()
        sys.stderr.flush()
        held = bool(pipelined) and output_unread()  # only asked when the next may be here
        send(*reply, REPLY_HELD if held else 0)


def warm_up():
    """Ahead of need (a spare or a min_warm worker: the daemon says so in the
    environment), before READY: three passes through what serve() does for an
    invocation, with a handler of its own and the reply framed but not sent. A
    process's first pass through that code pays page faults and cache misses that a
    spare's first real invocation used to pay, about 1.5 ms here (docs/benchmarks.md).
    A worker that a request waits for skips this."""
    worker = worker_fields()
    for _ in range(3):
        meta = json.loads(b'{"request_id": "warm-up", "deadline_ms": 0, "trace_id": ""}')
        result = (lambda event, context: event)(json.loads(b'{"a": 1}'), Context(meta, worker))
        HEADER.pack(0, RESULT, 0, 0) + json.dumps(result).encode()


def main():
    # Taken out before any of the function's code runs (src/runtime.c sets it).
    ahead_of_need = os.environ.pop("_FND_AHEAD_OF_NEED", None) == "1"
    handler, failure = load_handler()
    if failure is not None:
        print(f"[ERROR] {failure['errorType']}: {failure['errorMessage']}", file=sys.stderr)
        send(INIT_ERROR, json.dumps(failure).encode())
        sys.exit(1)
    if ahead_of_need:
        warm_up()
    send(READY, flags=READY_PIPELINED)
    serve(handler)


def rehearse():
    """In a blank (src/zygote.c): runs once through what a worker does, from the
    handler's import to the reply's bytes, with a handler of its own, and undoes what
    that left behind. A forked interpreter's first pass through any code writes to
    pages it shares with the zygote, and each such write costs a page fault and a copy;
    here the blank pays them while it waits for a function, not while a request waits
    for the blank."""
    import tempfile

    root = tempfile.mkdtemp(prefix=".fnd-rehearsal-")  # the host's /tmp without a sandbox
    path = os.path.join(root, "fnd_rehearsal.py")
    with open(path, "w") as f:
        f.write("def handler(event, context):\n    return {'event': event}\n")
    os.environ.update(_HANDLER="fnd_rehearsal.handler", LAMBDA_TASK_ROOT=root)
    try:
        handler, _ = load_handler()
        meta = json.loads(b'{"request_id": "rehearsal", "deadline_ms": 0, "trace_id": ""}')
        result = handler(json.loads(b'{"a": 1}'), Context(meta, worker_fields()))
        HEADER.pack(0, RESULT, 0, 0) + json.dumps(result).encode()
    finally:
        sys.modules.pop("fnd_rehearsal", None)
        if root in sys.path:
            sys.path.remove(root)
        sys.path_importer_cache.pop(root, None)
        importlib.invalidate_caches()
        os.remove(path)
        os.rmdir(root)
        os.environ.clear()


def zygote(library):
    """Fork server mode (src/zygote.c): started once by the daemon, this interpreter
    forks one child per new worker. The loop is fnd_zygote_serve, in C, so that the
    interpreter's heap stays untouched (and shared with the children) between forks;
    the call returns only in a child, which has walked the daemon's sandbox checklist,
    takes the worker's environment and becomes a worker through main(), skipping the
    interpreter's start-up. No function code is ever loaded here, only in the
    children."""
    import ctypes
    import gc

    lib = ctypes.PyDLL(library)  # holds the GIL throughout: the zygote has one thread
    serve = lib.fnd_zygote_serve
    serve.restype = ctypes.c_int
    serve.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                      ctypes.POINTER(ctypes.c_size_t)]
    specialise = lib.fnd_zygote_specialise
    specialise.restype = ctypes.c_int
    specialise.argtypes = serve.argtypes[1:]
    free = ctypes.CDLL(None).free  # bound here, not in the child: a lookup costs 0.1 ms there
    env, env_len = ctypes.c_void_p(), ctypes.c_size_t()
    # Whatever the collector would find later it finds now, and then it leaves the
    # start-up's objects alone: a collection in a child would otherwise write to every
    # page of them, each write a page copy.
    gc.collect()
    gc.freeze()
    # No PyOS_BeforeFork around the forks: its handlers guard locks that other
    # threads could hold, and this process has none; the child still runs the
    # after-fork handlers (random's reseeding among them).
    rc = serve(FD, ctypes.byref(env), ctypes.byref(env_len))
    if rc < 0:
        return  # the daemon is gone
    ctypes.pythonapi.PyOS_AfterFork_Child()
    if rc == 1:  # a blank: warm up, then wait to become a worker
        rehearse()
        if specialise(ctypes.byref(env), ctypes.byref(env_len)) != 0:
            return
    raw = ctypes.string_at(env, env_len.value)
    free(env)
    os.environ.clear()
    os.environ.update(v.split("=", 1) for v in raw.decode().split("\0") if v)
    main()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        zygote(sys.argv[2])
    else:
        main()
