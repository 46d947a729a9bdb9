// The failure converter of every product client and worker: error messages and stack traces travel as an encoded
// payload, so the payload codec encrypts them too. CommonJS because the SDK loads it by path: require() in the worker
// and client, and the bundler into the workflow sandbox.
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
