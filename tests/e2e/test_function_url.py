"""Function URLs driven with curl: ANY /fn/{name}/{path...} becomes the payload 2.0
event (method, raw path and query, headers, cookies, body) and the handler's result
becomes the HTTP response, as with Lambda function URLs."""
import json
import os
import subprocess

from fndtest import FUNCTIONS


def curl(d, path, *args, data=None):
    """(status, headers as a list of (lower name, value), body bytes) from curl."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        head, body = os.path.join(tmp, "head"), os.path.join(tmp, "body")
        p = subprocess.run(["curl", "-sS", "--max-time", "60", "-D", head, "-o", body,
                            f"{d.url}{path}", *args], input=data, capture_output=True,
                           timeout=90)
        assert p.returncode == 0, p.stderr
        with open(head) as f:
            lines = f.read().splitlines()
        with open(body, "rb") as f:
            content = f.read()
    status = int(lines[0].split()[1])
    headers = [(k.strip().lower(), v.strip()) for k, v in
               (line.split(":", 1) for line in lines[1:] if ":" in line)]
    return status, headers, content


def header(headers, name):
    return [v for k, v in headers if k == name]


def test_function_url_event_and_response(daemon):
    r = daemon.deploy("web", "python3", "app.handler", os.path.join(FUNCTIONS, "url"))
    assert r.status == 201, r

    status, headers, body = curl(
        daemon, "/fn/web/items/a%20b?color=red&color=blue&q=%C3%A9t%C3%A9", "-X", "PATCH",
        "-H", "X-Custom: one", "-H", "X-Custom: two", "-H", "Cookie: c1=v1; c2=v2",
        "-H", "Content-Type: application/json", "--data-binary", '{"k": "v"}')
    assert status == 207
    assert header(headers, "x-method") == ["PATCH"], headers
    assert header(headers, "set-cookie") == ["s1=a; Path=/", "s2=b; HttpOnly"]
    ev = json.loads(body)
    assert ev["version"] == "2.0"
    assert ev["rawPath"] == "/items/a%20b"
    assert ev["rawQueryString"] == "color=red&color=blue&q=%C3%A9t%C3%A9"
    assert ev["queryStringParameters"] == {"color": "red,blue", "q": "été"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert ev["headers"]["x-custom"] == "one,two" and "cookie" not in ev["headers"]
    assert ev["headers"]["content-type"] == "application/json"
    assert ev["body"] == '{"k": "v"}' and ev["isBase64Encoded"] is False
    http = ev["requestContext"]["http"]
    assert http["method"] == "PATCH" and http["path"] == "/items/a%20b"
    assert http["sourceIp"] == "127.0.0.1" and http["userAgent"].startswith("curl/")
    assert ev["requestContext"]["requestId"]

    # binary bodies travel base64 both ways and come back byte for byte
    blob = bytes(range(256)) * 64
    status, headers, body = curl(daemon, "/fn/web/echo-body", "-X", "POST",
                                 "-H", "Content-Type: application/octet-stream",
                                 "--data-binary", "@-", data=blob)
    assert status == 200 and body == blob
    assert header(headers, "content-type") == ["application/octet-stream"]
    # text stays text (UTF-8)
    text = "héllo wörld".encode()
    status, _, body = curl(daemon, "/fn/web/echo-body", "-H", "Content-Type: text/plain",
                           "--data-binary", "@-", data=text)
    assert status == 200 and body == text

    # a bare result is a 200 JSON body; the path may be just the function
    status, headers, body = curl(daemon, "/fn/web/bare")
    assert status == 200 and json.loads(body) == {"bare": True, "method": "GET"}
    assert header(headers, "content-type") == ["application/json"]
    status, _, body = curl(daemon, "/fn/web", "-X", "DELETE")
    assert status == 207 and json.loads(body)["rawPath"] == "/"

    # a handler cannot inject headers or override framing
    status, headers, body = curl(daemon, "/fn/web/evil")
    assert status == 200 and body == b"evil"
    assert header(headers, "x-ok") == ["fine"]
    assert not header(headers, "x-bad") and not header(headers, "injected")
    assert header(headers, "content-length") == ["4"]

    # errors
    status, _, body = curl(daemon, "/fn/web/fail")
    assert status == 502 and json.loads(body) == {"Message": "Internal Server Error"}
    status, _, _ = curl(daemon, "/fn/missing/x")
    assert status == 404


def test_function_url_prefix_is_configurable(start_daemon):
    d = start_daemon("--function-url-prefix", "/api/urls")
    assert d.deploy("web", "python3", "app.handler", os.path.join(FUNCTIONS, "url")).status == 201
    status, _, body = curl(d, "/api/urls/web/bare")
    assert status == 200 and json.loads(body)["bare"] is True
    status, _, _ = curl(d, "/fn/web/bare")
    assert status == 404
