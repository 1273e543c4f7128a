// The name of a local run, which prefixes every resource it provisions. A module of its own so that the CLI checks
// --prefix without loading the provisioning code and the AWS SDK with it.
export const PREFIX_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;
