// A Node.js fnd function: greets the "name" in the event.
exports.handler = async (event, context) => ({
  message: `Hello, ${(event && event.name) || 'world'}!`,
  requestId: context.awsRequestId,
  node: process.version,
});
