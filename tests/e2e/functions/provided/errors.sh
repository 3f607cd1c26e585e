#!/bin/bash
# A bootstrap that answers every event with an error: a plain-text body typed only by
# the Lambda-Runtime-Function-Error-Type header, or, for "exit", by exiting mid-way.
set -euo pipefail
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  if [ "$EVENT" = '"exit"' ]; then
    exit 3
  fi
  curl -sS "$API/invocation/$ID/error" -H "Lambda-Runtime-Function-Error-Type: Shell.Failure" \
       -d "not json at all" > /dev/null
done
