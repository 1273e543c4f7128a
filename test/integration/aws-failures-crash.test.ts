// A failure of the deployed shape on an emulator, through the real `crs serve --backend aws`: a process killed
// after a page's state transaction and before its publish sends the page after a restart, once. (One file per
// failure, aws-failures-*.test.ts, so that they run side by side, each on its own moto.)
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import {
  byPatient,
  pageLines,
  post,
  replayPages,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
} from '#test/support/aws-serve.ts';
import { failureRun } from '#test/support/aws-failures.ts';

const run = failureRun();

describe('failures of the deployed shape on an emulator', () => {
  it('sends a page committed before a crash after the restart, exactly once', async () => {
    const vignettes = JSON.parse(readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8')) as {
      scheme: string;
      messages: DeviceMessage[];
    }[];
    const messages = vignettes.filter((v) => v.scheme === 'astct2019').flatMap((v) => v.messages);
    const expected = replayPages(messages);
    const prefix = runPrefix('crash');
    // By message, not messageId: one vignette (P-19) reuses a messageId with other content.
    const accepted = new Set<DeviceMessage>();
    const postUntilDown = async (url: string) => {
      for (const m of messages) {
        if (accepted.has(m)) continue;
        try {
          if ((await post(url, m)).status === 202) accepted.add(m);
        } catch {
          return; // the server is gone
        }
      }
    };

    const doomed = await spawnAwsServe(
      run.emulator.endpoint,
      prefix,
      ['--visibility-timeout', '2', '--config', run.config],
      {
        CRS_TEST_CRASH_BEFORE_PUBLISH: '1',
      },
    );
    await postUntilDown(doomed.url);
    await doomed.exited;
    expect(doomed.child.signalCode).toBe('SIGKILL');
    expect(doomed.lines.filter((l) => l.trim() !== '')).toEqual([]);
    // The state and its page are in the table: killed between the transaction and the publish.
    const firstPage = expected.find((p) => accepted.has(messages.find((m) => m.patientId === p.patientId)!))!;
    const outbox = await run.dynamodb.send(
      new QueryCommand({
        TableName:
          doomed.resources.tables[Object.keys(doomed.resources.tables).find((k) => k.startsWith('StateTable'))!]!,
        KeyConditionExpression: 'pk = :p AND begins_with(sk, :o)',
        ExpressionAttributeValues: { ':p': { S: firstPage.patientId }, ':o': { S: 'outbox#' } },
      }),
    );
    expect(outbox.Items?.length ?? 0).toBeGreaterThan(0);

    const server = await spawnAwsServe(run.emulator.endpoint, prefix, [
      '--visibility-timeout',
      '2',
      '--config',
      run.config,
    ]);
    try {
      await postUntilDown(server.url);
      expect(accepted.size).toBe(messages.length);
      const h = await settle(server, expected.length); // idle: what the crash left in flight was redelivered too
      expect(h.pages.printed).toBe(expected.length);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(run.emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines);
    expect(new Set(served.map((p) => p.notificationId)).size).toBe(served.length);
    expect(byPatient(served)).toEqual(byPatient(expected));
  }, 240_000);
});
