"""A function that tries to fetch another function's invocations: it connects to the
Runtime API address it is given and asks for the next invocation."""
import socket


def handler(event, context):
    host, port = event["api"].split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.settimeout(3)
    try:
        s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(4096)
        return {"outcome": "answered" if data else "closed", "data": data.decode(errors="replace")}
    except socket.timeout:
        return {"outcome": "waiting"}  # accepted and parked: it would get the next event
    except ConnectionResetError:
        return {"outcome": "closed"}
    finally:
        s.close()
