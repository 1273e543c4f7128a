// What `crs serve --backend aws` does as the Lambda runtime and platform (shared/hosts/aws-emulator/lambda.ts,
// platform-metrics.ts): an invocation that overruns its function's timeout fails, but only once it has ended (a
// retry never runs beside it); the functions' environments merged into one process; and the AWS/Lambda metrics
// (Invocations, Errors) that the alarms and `crs doctor` read.
import type { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import type { Context } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gradingConfigFromEnv } from '#adapters/aws/grading-config.ts';
import { invoke, loadHandlers } from '#hosts/aws-emulator/lambda.ts';
import { PlatformMetrics } from '#hosts/aws-emulator/platform-metrics.ts';
import type { FunctionSpec } from '#hosts/aws-emulator/provision.ts';
import type { FunctionRole } from '#hosts/aws-emulator/template.ts';

const fn = (over: Partial<FunctionSpec> = {}): FunctionSpec => ({
  role: 'grade',
  logicalId: 'Grade',
  environment: {},
  files: {},
  timeoutSeconds: 0.05,
  memoryMb: 128,
  reservedConcurrency: 1,
  ...over,
});

describe('the local Lambda runtime, pinned by a mutation run', () => {
  it('fails an invocation that overruns the timeout, once the invocation has ended', async () => {
    let ended = false;
    let release!: () => void;
    const running = invoke(
      fn(),
      'crs-local-grade',
      'us-east-1',
      async () => {
        await new Promise<void>((r) => (release = r));
        ended = true;
        return 'late';
      },
      {},
    );
    const outcome = running.then(
      () => 'resolved',
      (err: Error) => ({ name: err.name, ended }),
    );
    // Well past the 50 ms timeout, the invocation still running: no answer yet.
    await new Promise((r) => setTimeout(r, 150));
    let settled = false;
    void outcome.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 0));
    expect(settled).toBe(false);
    release();
    expect(await outcome).toEqual({ name: 'InvocationTimeout', ended: true });
  });

  it("answers an invocation within its timeout with the handler's result, and gives the handler its context", async () => {
    const result = await invoke(
      fn({ timeoutSeconds: 5 }),
      'crs-local-grade',
      'us-east-1',
      async (_e: object, context?: Context) => ({
        name: context!.functionName,
        remaining: context!.getRemainingTimeInMillis(),
      }),
      {},
    );
    expect(result.name).toBe('crs-local-grade');
    expect(result.remaining).toBeGreaterThan(4000);
    expect(result.remaining).toBeLessThanOrEqual(5000);
  });

  it("sets each function's variables and writes its files where it reads them, and leaves out a CRS_CONFIG_FILE of the operator's shell that the stack gives no function", async () => {
    const functions = {
      ingest: fn({ role: 'ingest', environment: { CRS_STATE_TABLE: 'state-of-this-run' } }),
    } as unknown as Record<FunctionRole, FunctionSpec>;
    const env: NodeJS.ProcessEnv = { CRS_CONFIG_FILE: '/tmp/site.json', CRS_STATE_TABLE: 'other' };
    // The handler modules load after this (and may refuse this partial environment): what matters is what was set.
    await loadHandlers(functions, Date.now, env).catch(() => undefined);
    expect(env.CRS_CONFIG_FILE).toBeUndefined();
    expect(env.CRS_STATE_TABLE).toBe('state-of-this-run');
    const withConfig = {
      grade: fn({
        role: 'grade',
        environment: { CRS_CONFIG_FILE: 'crs-config.json' },
        files: { 'crs-config.json': '{"scheme":"lee2014"}' },
      }),
    } as unknown as Record<FunctionRole, FunctionSpec>;
    const env2: NodeJS.ProcessEnv = { CRS_CONFIG_FILE: '/tmp/site.json' };
    await loadHandlers(withConfig, Date.now, env2).catch(() => undefined);
    expect(env2.CRS_CONFIG_FILE).toBe('crs-config.json');
    expect(readFileSync(join(env2.LAMBDA_TASK_ROOT!, 'crs-config.json'), 'utf8')).toBe('{"scheme":"lee2014"}');
    expect(gradingConfigFromEnv(env2).scheme).toBe('lee2014');
  });

  it('refuses functions that ship different contents under one file name: they cannot share one process', async () => {
    const functions = {
      grade: fn({ role: 'grade', files: { 'crs-config.json': '{"scheme":"lee2014"}' } }),
      ack: fn({ role: 'ack', files: { 'crs-config.json': '{}' } }),
    } as unknown as Record<FunctionRole, FunctionSpec>;
    await expect(loadHandlers(functions, Date.now, {})).rejects.toThrow(/disagree on their file crs-config.json/);
  });

  it('refuses functions whose environments disagree on a variable: they cannot share one process', async () => {
    const functions = {
      ingest: fn({ role: 'ingest', environment: { CRS_STATE_TABLE: 'a' } }),
      grade: fn({ role: 'grade', environment: { CRS_STATE_TABLE: 'b' } }),
    } as unknown as Record<FunctionRole, FunctionSpec>;
    await expect(loadHandlers(functions, Date.now, {})).rejects.toThrow(/disagree on CRS_STATE_TABLE/);
  });
});

function cloudwatch() {
  const puts: PutMetricDataCommand['input'][] = [];
  const client = {
    send: async (command: PutMetricDataCommand) => {
      puts.push(command.input);
      return {};
    },
  } as unknown as CloudWatchClient;
  return { client, puts };
}

const sums = (input: PutMetricDataCommand['input']) =>
  Object.fromEntries((input.MetricData ?? []).map((d) => [`${d.Dimensions![0]!.Value} ${d.MetricName}`, d.Value]));

describe("the functions' platform metrics, pinned by a mutation run", () => {
  it('puts each period its invocations and errors per function under AWS/Lambda, each counted once', async () => {
    const cw = cloudwatch();
    const m = new PlatformMetrics(cw.client, () => undefined, 60_000);
    m.record('crs-local-grade', false);
    m.record('crs-local-grade', true);
    m.record('crs-local-ingest', false);
    await m.flush();
    m.record('crs-local-ingest', false);
    await m.flush();
    expect(cw.puts.map((p) => p.Namespace)).toEqual(['AWS/Lambda', 'AWS/Lambda']);
    expect(sums(cw.puts[0]!)).toEqual({
      'crs-local-grade Invocations': 2,
      'crs-local-grade Errors': 1,
      'crs-local-ingest Invocations': 1,
      'crs-local-ingest Errors': 0,
    });
    expect(sums(cw.puts[1]!)).toEqual({ 'crs-local-ingest Invocations': 1, 'crs-local-ingest Errors': 0 });
  });

  it('puts what is left when it stops', async () => {
    const cw = cloudwatch();
    const m = new PlatformMetrics(cw.client, () => undefined, 60_000);
    m.start();
    m.record('crs-local-escalate', false);
    await m.stop();
    expect(cw.puts.map(sums)).toEqual([{ 'crs-local-escalate Invocations': 1, 'crs-local-escalate Errors': 0 }]);
  });
});
