// Node.js test functions for fnd's end-to-end tests.
let calls = 0;
const worker = require('crypto').randomUUID(); // which worker process answered

exports.echo = async (event, context) => ({
  event,
  requestId: context.awsRequestId,
  functionName: context.functionName,
  remaining: context.getRemainingTimeInMillis(),
});

exports.state = async () => ({ calls: ++calls, worker });

exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { style: 'callback', event }), 5);
};

exports.boom = async () => {
  throw new TypeError('node went boom');
};

// A subprocess and worker threads, inside the sandbox.
exports.spawn = async () => {
  const { execFileSync } = require('child_process');
  const { Worker } = require('worker_threads');
  const out = execFileSync('/bin/echo', ['from-child']).toString().trim();
  const square = await new Promise((resolve, reject) => {
    const w = new Worker('const { parentPort } = require("worker_threads"); parentPort.postMessage(7 * 7);', { eval: true });
    w.once('message', resolve);
    w.once('error', reject);
  });
  return { out, square };
};

const envAtLoad = { ...process.env };
exports.environment = async () => ({ atLoad: envAtLoad, now: { ...process.env } });
