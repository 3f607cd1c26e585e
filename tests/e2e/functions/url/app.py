"""A function URL handler (payload format 2.0) for test_function_url.py."""
import json


def handler(event, context):
    path = event["rawPath"]
    if path == "/bare":
        return {"bare": True, "method": event["requestContext"]["http"]["method"]}
    if path == "/fail":
        raise RuntimeError("handler failed")
    if path == "/echo-body":  # the body straight back, base64 or not, as it came
        return {"statusCode": 200,
                "headers": {"content-type": event["headers"].get("content-type", "text/plain")},
                "body": event.get("body", ""), "isBase64Encoded": event["isBase64Encoded"]}
    if path == "/evil":
        return {"statusCode": 200, "headers": {"x-ok": "fine", "x-bad": "a\r\nInjected: yes",
                                               "content-length": "1"},
                "body": "evil"}
    return {
        "statusCode": 207,
        "headers": {"content-type": "application/json", "x-method": event["requestContext"]["http"]["method"]},
        "cookies": ["s1=a; Path=/", "s2=b; HttpOnly"],
        "body": json.dumps({k: event.get(k) for k in (
            "version", "rawPath", "rawQueryString", "queryStringParameters", "cookies", "headers",
            "isBase64Encoded", "body", "requestContext")}),
    }
