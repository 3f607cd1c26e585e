"""The function the Lambda client tests deploy: reports what it sees, and fails, sleeps,
logs or calls a URL on request. CODE is rewritten by the tests to tell code versions apart."""
import os
import time
import urllib.request

CODE = "v1"


def handler(event, context):
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "fail" in event:
        raise ValueError(event["fail"])
    if "log" in event:
        print(event["log"])
    if "hit" in event:  # report this execution to the test's counter (host network)
        urllib.request.urlopen(urllib.request.Request(event["hit"], method="POST"), timeout=10)
    cc = context.client_context
    return {
        "code": CODE,
        "stage": os.environ.get("STAGE"),
        "version": context.function_version,
        "env_version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "memory": context.memory_limit_in_mb,
        "custom": cc.custom if cc else None,
        "event": event,
    }
