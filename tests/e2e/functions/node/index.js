// Node.js test functions for fnd's end-to-end tests.
let calls = 0;

exports.echo = async (event, context) => ({
  event,
  requestId: context.awsRequestId,
  functionName: context.functionName,
  remaining: context.getRemainingTimeInMillis(),
});

exports.state = async () => ({ calls: ++calls, pid: process.pid });

exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { style: 'callback', event }), 5);
};

exports.boom = async () => {
  throw new TypeError('node went boom');
};
