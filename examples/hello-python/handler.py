"""A Python fnd function: greets the "name" in the event."""
import platform


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {
        "message": f"Hello, {name}!",
        "request_id": context.aws_request_id,
        "python": platform.python_version(),
    }
