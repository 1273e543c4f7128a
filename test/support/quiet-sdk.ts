// Imported first by `npm run cost` and `npm run bench`, as bin/crs.js does for the CLI: the lockfile pins AWS SDK
// releases that run on Node.js 20 (docs/aws.md, "Node.js versions"), and their warning that later releases need
// Node.js 22 would otherwise come before the figures. The SDK reads the variable when a client is made.
// AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false shows it again.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
