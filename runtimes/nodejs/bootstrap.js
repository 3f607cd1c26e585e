// fnd's Node.js runtime: loads a handler once per worker and serves invocations over
// the worker protocol (docs/protocol.md) on fd 3.
//
// The handler "path/file.export" is loaded from LAMBDA_TASK_ROOT as CommonJS (.js,
// .cjs) or ES module (.mjs, or a .js that require() refuses as ESM). Handlers may be
// async (return a promise) or take a callback as their third argument.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

const READY = 1, INIT_ERROR = 2, INVOKE = 3, RESULT = 4, ERROR = 5;
const channel = new net.Socket({ fd: 3, readable: true, writable: true });

function frame(kind, payload) {
  const body = Buffer.from(payload || '');
  const header = Buffer.alloc(8);
  header.writeUInt32LE(body.length, 0);
  header.writeUInt8(kind, 4);
  return Buffer.concat([header, body]);
}

function send(kind, payload) {
  channel.write(frame(kind, payload));
}

function errorObject(err, type) {
  if (!(err instanceof Error)) {
    return { errorType: type || 'Error', errorMessage: String(err), stackTrace: [] };
  }
  const stack = (err.stack || '').split('\n').slice(1).map((l) => l.trim());
  return { errorType: type || err.name || 'Error', errorMessage: err.message, stackTrace: stack };
}

async function loadHandler() {
  const spec = process.env._HANDLER || '';
  const dot = spec.lastIndexOf('.');
  const file = spec.slice(0, dot);
  const exportName = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const base = path.resolve(root, file);
  let mod;
  try {
    const found = ['.js', '.cjs', '.mjs'].map((ext) => base + ext).find((p) => fs.existsSync(p));
    if (!found) throw Object.assign(new Error(`Cannot find module '${file}'`), { code: 'MODULE_NOT_FOUND' });
    if (found.endsWith('.mjs')) {
      mod = await import(pathToFileURL(found).href);
    } else {
      try {
        mod = require(found);
      } catch (err) {
        if (err.code !== 'ERR_REQUIRE_ESM') throw err;
        mod = await import(pathToFileURL(found).href);
      }
    }
  } catch (err) {
    const type = err instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError';
    const obj = errorObject(err, type);
    obj.errorMessage = `Error: ${err.message}`;
    return [null, obj];
  }
  const handler = mod[exportName] ?? (mod.default && mod.default[exportName]);
  if (typeof handler !== 'function') {
    return [null, { errorType: 'Runtime.HandlerNotFound', errorMessage: `${spec} is undefined or not exported`, stackTrace: [] }];
  }
  return [handler, null];
}

function makeContext(meta) {
  const env = process.env;
  return {
    awsRequestId: meta.request_id,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    invokedFunctionArn: meta.invoked_function_arn,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: meta.client_context ? JSON.parse(meta.client_context) : undefined,
    identity: undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, meta.deadline_ms - Date.now()),
  };
}

// Runs the handler; resolves with its result whichever style it uses.
function runHandler(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, result) => {
      if (settled) return;
      settled = true;
      if (err) reject(err); else resolve(result);
    };
    context.done = callback;
    context.succeed = (r) => callback(null, r);
    context.fail = (e) => callback(e);
    const ret = handler(event, context, callback);
    if (ret && typeof ret.then === 'function') ret.then((r) => callback(null, r), callback);
    else if (handler.length < 3 && !settled) callback(null, ret);
  });
}

let current = null; // the invocation in progress, for uncaught errors

// reply(kind, text) sends the answer; the warm-up's only frames it.
async function invoke(handler, payload, reply = send) {
  const metaLen = payload.readUInt32LE(0);
  const meta = JSON.parse(payload.subarray(4, 4 + metaLen).toString());
  const eventBytes = payload.subarray(4 + metaLen);
  if (meta.trace_id) process.env._X_AMZN_TRACE_ID = meta.trace_id;
  else delete process.env._X_AMZN_TRACE_ID;
  current = meta.request_id;
  try {
    const event = eventBytes.length ? JSON.parse(eventBytes.toString()) : {};
    const result = await runHandler(handler, event, makeContext(meta));
    const text = result === undefined ? 'null' : JSON.stringify(result);
    reply(RESULT, text === undefined ? 'null' : text);
  } catch (err) {
    reply(ERROR, JSON.stringify(errorObject(err)));
  }
  current = null;
}

// Ahead of need (a spare or a min_warm worker: the daemon says so in the environment),
// before READY: a few invocations of a handler of our own through invoke(), answers
// framed and dropped. V8 compiles a function on its first call, and a fresh process
// pays a page fault for each heap page it first writes; a spare worker used to pay
// both during its first real invocation, about half a millisecond here
// (docs/benchmarks.md). The function's own handler is never called, and a worker that
// a request waits for skips this.
async function warmUp() {
  const meta = Buffer.from(JSON.stringify({ request_id: 'warm-up', deadline_ms: 0, trace_id: '' }));
  const event = Buffer.from('{"warmUp":true}');
  const payload = Buffer.alloc(4 + meta.length + event.length);
  payload.writeUInt32LE(meta.length, 0);
  meta.copy(payload, 4);
  event.copy(payload, 4 + meta.length);
  for (let i = 0; i < 3; i++) await invoke(async (e) => e, payload, frame);
}

function fail(err) {
  // An error escaping the handler's promise: report it for the running invocation,
  // then exit so that the daemon replaces this worker.
  if (current) send(ERROR, JSON.stringify(errorObject(err)));
  console.error(err);
  channel.end(() => process.exit(1));
  setTimeout(() => process.exit(1), 100).unref();
}

async function main() {
  // Taken out before any of the function's code runs (src/runtime.c sets it).
  const aheadOfNeed = process.env._FND_AHEAD_OF_NEED === '1';
  delete process.env._FND_AHEAD_OF_NEED;
  const [handler, failure] = await loadHandler();
  if (!handler) {
    console.error(`[ERROR] ${failure.errorType}: ${failure.errorMessage}`);
    send(INIT_ERROR, JSON.stringify(failure));
    channel.end(() => process.exit(1));
    return;
  }
  if (aheadOfNeed) await warmUp();
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);

  let pending = [];
  let pendingLen = 0;
  let queue = Promise.resolve();
  channel.on('data', (chunk) => {
    pending.push(chunk);
    pendingLen += chunk.length;
    for (;;) {
      if (pendingLen < 8) return;
      if (pending[0].length < 8) pending = [Buffer.concat(pending, pendingLen)];
      const len = pending[0].readUInt32LE(0);
      if (pendingLen < 8 + len) return; // join the chunks once, when the frame is whole
      const buf = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
      const kind = buf.readUInt8(4);
      const payload = buf.subarray(8, 8 + len);
      const rest = buf.subarray(8 + len);
      pending = rest.length ? [rest] : [];
      pendingLen = rest.length;
      if (kind !== INVOKE) process.exit(1);
      queue = queue.then(() => invoke(handler, payload));
    }
  });
  channel.on('end', () => process.exit(0));
  channel.on('error', () => process.exit(0));
  send(READY);
}

main();
