import os


def handler(event, context):
    print("tracing", os.environ.get("_X_AMZN_TRACE_ID"))
    return {"xray": os.environ.get("_X_AMZN_TRACE_ID"), "request_id": context.aws_request_id}
