// The AWS SDK for JavaScript v3 (@aws-sdk/client-lambda) against fnd's Lambda API: the
// same life of a function as the CLI and boto3 tests. Run by test_lambda_sdk_js.py with
// FND_URL and the code zips (ZIP_V1, ZIP_V2) in the environment; prints "ok" at the end.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CreateFunctionCommand, DeleteFunctionCommand, DeleteFunctionConcurrencyCommand,
  DeleteFunctionEventInvokeConfigCommand, GetFunctionCommand, GetFunctionConcurrencyCommand,
  GetFunctionEventInvokeConfigCommand, InvokeCommand, LambdaClient, ListFunctionsCommand,
  PublishVersionCommand, PutFunctionConcurrencyCommand, PutFunctionEventInvokeConfigCommand,
  UpdateFunctionCodeCommand, UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';

const lambda = new LambdaClient({
  endpoint: process.env.FND_URL,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts: 1,
});
const send = (cmd) => lambda.send(cmd);
const v1 = readFileSync(process.env.ZIP_V1);
const v2 = readFileSync(process.env.ZIP_V2);
const name = 'js-fn';

async function invoke(FunctionName, payload, extra = {}) {
  const r = await send(new InvokeCommand({
    FunctionName, Payload: Buffer.from(JSON.stringify(payload)), ...extra,
  }));
  return [r, JSON.parse(Buffer.from(r.Payload).toString())];
}

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
    return true;
  });
}

// create (zip)
let conf = await send(new CreateFunctionCommand({
  FunctionName: name, Runtime: 'python3.12', Role: process.env.ROLE, Handler: 'app.handler',
  Code: { ZipFile: v1 }, Timeout: 4, MemorySize: 160, Environment: { Variables: { STAGE: 'one' } },
}));
assert.equal(conf.FunctionName, name);
assert.equal(conf.Version, '$LATEST');
assert.equal(conf.State, 'Active');
assert.equal(conf.MemorySize, 160);

// invoke sync, with a client context
const cc = Buffer.from(JSON.stringify({ custom: { from: 'js' } })).toString('base64');
let [r, res] = await invoke(name, { n: 3 }, { ClientContext: cc });
assert.equal(r.StatusCode, 200);
assert.equal(r.ExecutedVersion, '$LATEST');
assert.equal(r.FunctionError, undefined);
assert.deepEqual(res.event, { n: 3 });
assert.equal(res.code, 'v1');
assert.equal(res.stage, 'one');
assert.deepEqual(res.custom, { from: 'js' });
r = await send(new InvokeCommand({ FunctionName: name, InvocationType: 'DryRun' }));
assert.equal(r.StatusCode, 204);

// Event: 202 once durable; its request id is the async invocation on fnd's /v1 API
r = await send(new InvokeCommand({
  FunctionName: name, InvocationType: 'Event', Payload: Buffer.from('{"n": 4}'),
}));
assert.equal(r.StatusCode, 202);
let status;
for (const deadline = Date.now() + 60000; Date.now() < deadline;) {
  status = await (await fetch(`${process.env.FND_URL}/v1/invocations/${r.$metadata.requestId}`, {
    headers: { Authorization: `Bearer ${process.env.FND_TOKEN}` },
  })).json();
  if (status.status === 'succeeded') break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
assert.equal(status.status, 'succeeded');
assert.deepEqual(status.result.event, { n: 4 });

// get / list
assert.equal((await send(new GetFunctionCommand({ FunctionName: name }))).Configuration.Handler,
  'app.handler');
const listed = await send(new ListFunctionsCommand({ MaxItems: 10 }));
assert.deepEqual(listed.Functions.map((f) => f.FunctionName), [name]);

// update code -> new code runs; update configuration
await send(new UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: v2 }));
assert.equal((await invoke(name, {}))[1].code, 'v2');
conf = await send(new UpdateFunctionConfigurationCommand({
  FunctionName: name, Timeout: 1, Environment: { Variables: { STAGE: 'two' } },
}));
assert.equal(conf.Timeout, 1);
assert.equal((await invoke(name, {}))[1].stage, 'two');

// concurrency
r = await send(new PutFunctionConcurrencyCommand({ FunctionName: name, ReservedConcurrentExecutions: 4 }));
assert.equal(r.ReservedConcurrentExecutions, 4);
r = await send(new GetFunctionConcurrencyCommand({ FunctionName: name }));
assert.equal(r.ReservedConcurrentExecutions, 4);
await send(new DeleteFunctionConcurrencyCommand({ FunctionName: name }));
r = await send(new GetFunctionConcurrencyCommand({ FunctionName: name }));
assert.equal(r.ReservedConcurrentExecutions, undefined);

// event invoke config
r = await send(new PutFunctionEventInvokeConfigCommand({
  FunctionName: name, MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 600,
}));
assert.equal(r.MaximumRetryAttempts, 1);
r = await send(new GetFunctionEventInvokeConfigCommand({ FunctionName: name }));
assert.equal(r.MaximumEventAgeInSeconds, 600);
await send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: name }));
r = await send(new GetFunctionEventInvokeConfigCommand({ FunctionName: name }));
assert.equal(r.MaximumRetryAttempts, 2);

// publish, move $LATEST on, invoke by qualifier
const published = await send(new PublishVersionCommand({ FunctionName: name }));
assert.equal(published.Version, '1');
await send(new UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: v1 }));
[r, res] = await invoke(name, {}, { Qualifier: '1' });
assert.equal(r.ExecutedVersion, '1');
assert.equal(res.code, 'v2');
[r, res] = await invoke(`${name}:1`, {});
assert.equal(res.version, '1');
[r, res] = await invoke(name, {});
assert.equal(r.ExecutedVersion, '$LATEST');
assert.equal(res.code, 'v1');

// Tail
[r, res] = await invoke(name, { log: 'js tail' }, { LogType: 'Tail' });
const log = Buffer.from(r.LogResult, 'base64').toString();
assert.ok(log.includes(`START RequestId: ${res.request_id}`), log);
assert.ok(log.includes('js tail') && log.includes(`REPORT RequestId: ${res.request_id}`), log);

// errors
await rejects(invoke('js-missing', {}), 'ResourceNotFoundException');
await rejects(invoke(name, { pad: 'x'.repeat(6 * 1024 * 1024 + 1) }), 'RequestTooLargeException');
[r, res] = await invoke(name, { fail: 'js boom' });
assert.equal(r.FunctionError, 'Unhandled');
assert.equal(res.errorType, 'ValueError');
assert.equal(res.errorMessage, 'js boom');
assert.ok(Array.isArray(res.stackTrace) && res.stackTrace.length > 0);
[r, res] = await invoke(name, { sleep: 3 });
assert.equal(r.FunctionError, 'Unhandled');
assert.match(res.errorMessage, /Task timed out after 1\.00 seconds/);

// delete
await send(new DeleteFunctionCommand({ FunctionName: name }));
await rejects(send(new GetFunctionCommand({ FunctionName: name })), 'ResourceNotFoundException');
console.log('ok');
