"""The function the Lambda client tests deploy: reports what it sees, and fails, sleeps
or logs on request. CODE is rewritten by the tests to tell code versions apart."""
import os
import time

CODE = "v1"


def handler(event, context):
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "fail" in event:
        raise ValueError(event["fail"])
    if "log" in event:
        print(event["log"])
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
