#!/bin/bash
# A bootstrap whose initialisation fails: it reports the failure and exits.
curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/init/error" \
     -H "Lambda-Runtime-Function-Error-Type: Runtime.ConfigError" \
     -d '{"errorType": "Runtime.ConfigError", "errorMessage": "missing configuration"}'
exit 1
