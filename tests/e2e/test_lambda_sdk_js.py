"""The AWS SDK for JavaScript v3 (@aws-sdk/client-lambda from npm) against fnd's Lambda
API: tests/e2e/sdk-js/flow.mjs runs the life of a function and asserts every step;
this test gives it a daemon and checks that it got to the end. The SDK is installed
by scripts/deps (npm ci in tests/e2e/sdk-js)."""
import os
import subprocess

from fndtest import HERE, LAMBDA_ROLE, aws_env, lambda_zip

SDK_DIR = os.path.join(HERE, "sdk-js")


def test_sdk_js_function_lifecycle(start_daemon, tmp_path):
    assert os.path.isdir(os.path.join(SDK_DIR, "node_modules", "@aws-sdk", "client-lambda")), \
        "run scripts/deps (npm ci in tests/e2e/sdk-js) first"
    d = start_daemon("--max-body", "16M")
    zips = {}
    for code in ("v1", "v2"):
        zips[code] = tmp_path / f"{code}.zip"
        zips[code].write_bytes(lambda_zip(code))
    env = aws_env({"FND_URL": d.url, "ZIP_V1": str(zips["v1"]), "ZIP_V2": str(zips["v2"]),
                   "ROLE": LAMBDA_ROLE, "FND_TOKEN": d.token or ""})
    p = subprocess.run(["node", os.path.join(SDK_DIR, "flow.mjs")], cwd=SDK_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, f"flow.mjs failed:\n{p.stdout}\n{p.stderr}"
    assert p.stdout.strip().splitlines()[-1] == "ok"
