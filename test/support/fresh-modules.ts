// Runs before each file of the shared-workers project (vitest.config.ts), whose files share worker processes: the
// project's own modules are evaluated afresh for each file (but the pure domain's, below), as in a worker of its own (a
// Lambda handler reads its environment when imported), while the packages under node_modules, which Node loads and
// caches itself, are loaded once per worker.
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll } from 'vitest';
import { killLeftChildren } from './children.ts';

/**
 * vi.resetModules(), keeping the domain's modules: shared/domain is pure (no I/O, no clock, no environment:
 * test/unit/purity.test.ts), so what a file leaves in them (the contract's compiled parser, a time formatter) is what
 * the next file would make again, and keeping them spares each file evaluating them and the JIT warming them again:
 * the unit tier took 287 s of CPU instead of 329 s (2 min 34 s of wall instead of 2 min 57 s; 2026-12-07, the same
 * idle machine, one run each).
 * vi.resetModules() takes no filter: this is its reset (vitest 4.1's resetModules) over the worker's module map,
 * but for the domain's modules.
 */
function resetModulesButTheDomain(): void {
  type ModuleNode = { promise?: unknown; exports?: unknown; evaluated: boolean; importers: Set<string> };
  const worker = (
    globalThis as { __vitest_worker__?: { evaluatedModules?: { idToModuleMap?: Map<string, ModuleNode> } } }
  ).__vitest_worker__;
  const modules = worker?.evaluatedModules?.idToModuleMap;
  if (!(modules instanceof Map))
    throw new Error('test/support/fresh-modules.ts: vitest no longer keeps its modules where this reset reads them');
  const skip = [/\/vitest\/dist\//, /vitest-virtual-\w+\/dist/, /@vitest\/dist/, /^mock:/];
  modules.forEach((node, path) => {
    if (skip.some((re) => re.test(path))) return;
    node.importers.clear();
    if (!/\/shared\/domain\//.test(path)) {
      node.promise = undefined;
      node.exports = undefined;
      node.evaluated = false;
    }
  });
}
resetModulesButTheDomain();

/** After the file's own hooks (they run first): a server a failed test did not stop. */
afterAll(killLeftChildren);

/**
 * The environment as the file found it, put back in place when it ends: files set process.env directly (a Lambda
 * handler's table names, say), and what one left was read by a later file's commands run in process.
 */
const environment = { ...process.env };
afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in environment)) delete process.env[name];
  Object.assign(process.env, environment);
});

/**
 * A client class that aws-sdk-client-mock mocked (`mockClient(DynamoDBClient)` stubs the class's `send`) stays mocked
 * in the worker after its file, as the SDK is loaded once per worker: a later file's real clients (an operator
 * command run in process against moto, say) would be answered by the fake. Found when `crs token list`, run in
 * process, was answered by another file's DynamoDB fake. A file that leaves one is failed, naming it, and it is put
 * back for the next.
 */
afterAll(() => {
  const clients = {
    CloudWatchClient,
    DynamoDBClient,
    DynamoDBStreamsClient,
    SecretsManagerClient,
    SNSClient,
    SQSClient,
  };
  const left = Object.entries(clients).filter(([, c]) => {
    const send = c.prototype.send as { restore?: () => void };
    if (typeof send.restore !== 'function') return false;
    send.restore();
    return true;
  });
  if (left.length > 0)
    throw new Error(`this file left ${left.map(([name]) => name).join(', ')} mocked: restore each in an afterAll`);
});
