#!/usr/bin/python3
"""A custom runtime bootstrap that speaks raw HTTP to the Runtime API: for each
invocation it sends a battery of hand-written requests (bad paths and methods, a
foreign id, a malformed request, a URL and a body over the limits, an error type
header, pipelined requests, a request that asks to close) on fresh connections,
records the exact bytes of every answer, and returns them as the invocation's result,
answering through a path with a query string."""
import json
import os
import socket

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
R = "/2018-06-01/runtime"


def exchange(raw, answers=1):
    """Sends raw on a new connection; the answers' bytes, read until `answers`
    responses arrived or the adapter closed."""
    s = socket.create_connection((HOST, int(PORT)), timeout=10)
    try:
        s.sendall(raw)
        data = b""
        while data.count(b"HTTP/1.1 ") < answers or not complete(data, answers):
            chunk = s.recv(65536)
            if not chunk:
                return {"answer": data.decode("latin-1"), "closed": True}
            data += chunk
        s.settimeout(0.3)  # is the connection closed after the answers?
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        return {"answer": data.decode("latin-1"), "closed": closed}
    finally:
        s.close()


def complete(data, answers):
    """Whether data holds `answers` whole responses (each with a Content-Length)."""
    for _ in range(answers):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if len(rest) < length:
            return False
        data = rest[length:]
    return True


def battery():
    big = 7 * 1024 * 1024
    return {
        "unknown_get": exchange(f"GET {R}/nope HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
        "head_next": exchange(f"HEAD {R}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
        "unknown_post": exchange(f"POST {R}/invocation/next HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                                 .encode()),
        "foreign_id": exchange(f"POST {R}/invocation/not-ours/response HTTP/1.1\r\n"
                               "Content-Length: 2\r\n\r\nhi".encode()),
        "foreign_error": exchange(f"POST {R}/invocation/not-ours/error HTTP/1.1\r\n"
                                  "Lambda-Runtime-Function-Error-Type: X.Y\r\n"
                                  "Content-Length: 2\r\n\r\nhi".encode()),
        "init_error_late": exchange(f"POST {R}/init/error HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}"
                                    .encode()),
        "malformed": exchange(b"GARBAGE / NOPE\r\n\r\n"),
        "url_too_long": exchange(f"GET {R}/{'a' * 2000} HTTP/1.1\r\n\r\n".encode()),
        "body_too_large": exchange(f"POST {R}/nope HTTP/1.1\r\nContent-Length: {big}\r\n\r\n"
                                   .encode() + b"x" * big),
        "bad_content_length": exchange(f"POST {R}/nope HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"
                                       .encode()),
        "pipelined": exchange((f"POST {R}/invocation/a/response HTTP/1.1\r\nContent-Length: 1\r\n"
                               f"\r\naGET {R}/x?y=z HTTP/1.1\r\n\r\n").encode(), answers=2),
        "close": exchange(f"GET {R}/nope HTTP/1.1\r\nConnection: close\r\n\r\n".encode()),
        "http10": exchange(f"GET {R}/nope HTTP/1.0\r\n\r\n".encode()),
    }


while True:
    s = socket.create_connection((HOST, int(PORT)))
    s.sendall(f"GET {R}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    f = s.makefile("rb")
    headers = {}
    status = f.readline()
    for line in iter(f.readline, b"\r\n"):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    f.read(int(headers["content-length"]))
    s.close()
    report = json.dumps(battery()).encode()
    rid = headers["lambda-runtime-aws-request-id"]
    exchange(f"POST {R}/invocation/{rid}/response?a=b HTTP/1.1\r\nContent-Length: {len(report)}"
             "\r\n\r\n".encode() + report)
