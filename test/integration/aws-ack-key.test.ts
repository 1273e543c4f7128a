// `crs ack-key rotate|drop-previous --backend aws` (2026-12-07) against the stack's AckSigningSecret as the stack
// provisions it on an emulator, with the stack's outputs file as every other operator command reads it: a rotation
// keeps the links already sent verifying under the ack function's reading of the secret (AWSCURRENT, then
// AWSPREVIOUS), the functions sign new links with the new key, and a dropped previous key verifies none. Until then
// the command refused --backend aws (exit 2) and told the operator to run aws secretsmanager by hand.
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACK_KEYS_MAX_AGE_MS, ackKeysFromEnv, readAckKeys } from '#adapters/aws/ack-secret.ts';
import { ENV } from '#adapters/aws/env.ts';
import { type AckClaims, type AckKeys, signAck, verifyAckLink } from '#app/ack.ts';
import { type AwsClients, provision } from '#hosts/aws-emulator/provision.ts';
import { LOCAL_PAGING } from '#hosts/aws-emulator/template.ts';
import { operatorShell, runPrefix, synthesizedStack } from '#test/support/aws-serve.ts';
import { crsMain } from '#test/support/cli.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-aws-ack-key-'));
const outputsFile = join(dir, 'outputs.json');
const prefix = runPrefix('ackkey');
let emulator: Emulator;
let clients: AwsClients;
let secretArn: string;

beforeAll(async () => {
  emulator = await startEmulator();
  const settings = {
    endpoint: emulator.endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  clients = {
    sqs: new SQSClient(settings),
    dynamodb: new DynamoDBClient(settings),
    sns: new SNSClient(settings),
    secrets: new SecretsManagerClient(settings),
    cloudwatch: new CloudWatchClient(settings),
  };
  const p = await provision(await synthesizedStack({ paging: LOCAL_PAGING }), clients, {
    prefix,
    hostVariables: { [ENV.ackBaseUrl]: 'http://127.0.0.1:9/ack/' },
  });
  secretArn = p.functions.ack.environment[ENV.ackSecretArn]!;
  // As cdk deploy --outputs-file writes it (crs serve --backend aws --outputs too).
  writeFileSync(outputsFile, JSON.stringify({ [prefix]: { AckSecretArn: secretArn, PagesTopicArn: 'arn:x' } }));
}, 120_000);

afterAll(async () => {
  for (const c of Object.values(clients ?? {})) c.destroy();
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const shell = () => operatorShell(emulator.endpoint);
const crs = (...args: string[]) => crsMain(['ack-key', ...args], { env: shell() });

/** The keys as the ack function reads them (both labels), and the key notify signs with (AWSCURRENT alone). */
const ackFunctionKeys = () => readAckKeys(clients.secrets, secretArn);
const signingKey = async () =>
  (await ackKeysFromEnv(clients.secrets, { verifies: false, now: 0, env: { [ENV.ackSecretArn]: secretArn } }))
    .ackSecret;

const NOW = Date.parse('2026-12-07T09:00:00Z');
const claims = (pageId: string): AckClaims => ({ pageId, role: 'icu attending', expiresAt: NOW + 12 * 3_600_000 });
const verifies = async (keys: AckKeys, token: string) =>
  (await verifyAckLink(keys, token, NOW, async () => undefined)).ok;
const stagesOf = async () =>
  (await clients.secrets.send(new DescribeSecretCommand({ SecretId: secretArn }))).VersionIdsToStages ?? {};

describe('crs ack-key --backend aws', () => {
  it('rotates the secret keeping the links sent, and drop-previous voids them', async () => {
    const before = await ackFunctionKeys();
    const stagesBefore = await stagesOf();
    const [firstVersion] = Object.keys(stagesBefore);
    const sent = signAck(await signingKey(), claims('page-before'));
    expect(await verifies(before, sent)).toBe(true);

    const rotated = await crs('rotate', '--backend', 'aws', '--outputs', outputsFile);
    expect(rotated.status, rotated.stderr).toBe(0);
    const after = await ackFunctionKeys();
    const stages = await stagesOf();
    const newVersion = Object.keys(stages).find((v) => stages[v]!.includes('AWSCURRENT'))!;
    expect(stages[firstVersion!]).toEqual(['AWSPREVIOUS']);
    // What was done, by version, never the key.
    expect(rotated.stdout).toContain(newVersion);
    expect(rotated.stdout).toContain(firstVersion);
    expect(rotated.stdout).toContain('links already sent work until they expire');
    // The notes crs serve's command gives, with AWS's delay: the functions read the secret again as it ages.
    expect(rotated.stdout).toContain(`sign with the new key within ${ACK_KEYS_MAX_AGE_MS / 60_000} min`);
    for (const key of [before.current, after.current])
      expect(rotated.stdout + rotated.stderr).not.toContain(key.toString('utf8'));
    // In the stack's format: 64 letters and digits, as the secret it generated.
    expect(after.current.toString('utf8')).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(before.current.toString('utf8')).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(after.current.equals(before.current)).toBe(false);
    expect(after.previous?.equals(before.current)).toBe(true);

    // The link sent before still verifies; a new link is signed with the new key, and verifies.
    expect(await verifies(after, sent)).toBe(true);
    const signer = await signingKey();
    expect(signer.equals(after.current)).toBe(true);
    const fresh = signAck(signer, claims('page-after'));
    expect(fresh).not.toBe(signAck(before.current, claims('page-after')));
    expect(await verifies(after, fresh)).toBe(true);
    expect(await verifies({ current: before.current }, fresh)).toBe(false);

    const dropped = await crs('drop-previous', '--backend', 'aws', '--outputs', outputsFile);
    expect(dropped.status, dropped.stderr).toBe(0);
    expect(dropped.stdout).toContain(firstVersion);
    expect(dropped.stdout).toContain('the links it signed stop working');
    expect(dropped.stdout).toContain(`stop taking them within ${ACK_KEYS_MAX_AGE_MS / 60_000} min`);
    const left = await ackFunctionKeys();
    expect(left.previous).toBeUndefined();
    expect(left.current.equals(after.current)).toBe(true);
    expect(await verifies(left, sent)).toBe(false);
    expect(await verifies(left, fresh)).toBe(true);
    expect((await stagesOf())[firstVersion!] ?? []).not.toContain('AWSPREVIOUS');

    // Nothing left to drop: said, as on crs serve (exit 0: no previous key verifies).
    const again = await crs('drop-previous', '--backend', 'aws', '--outputs', outputsFile);
    expect([again.status, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toContain('nothing to drop');
  });

  it('rotate --drop-previous keeps no previous key (a key that leaked); the ARN from CRS_ACK_SECRET_ARN', async () => {
    const before = await ackFunctionKeys();
    const sent = signAck(before.current, claims('page-leaked'));
    const r = await crsMain(['ack-key', 'rotate', '--drop-previous', '--backend', 'aws'], {
      env: { ...shell(), [ENV.ackSecretArn]: secretArn },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('links sent before stop working');
    const after = await ackFunctionKeys();
    expect(after.previous).toBeUndefined();
    expect(after.current.equals(before.current)).toBe(false);
    expect(await verifies(after, sent)).toBe(false);
    // The value the secret held is gone from every label the functions read.
    await expect(
      clients.secrets.send(new GetSecretValueCommand({ SecretId: secretArn, VersionStage: 'AWSPREVIOUS' })),
    ).rejects.toThrow();
  });

  it('says in one line what to check when the secret is not there (exit 1), and where the ARN comes from (exit 2)', async () => {
    const missing = secretArn.replace(/-[A-Za-z0-9]{6}$/, '-gone00').replace(prefix, `${prefix}-none`);
    const gone = await crsMain(['ack-key', 'rotate', '--backend', 'aws'], {
      env: { ...shell(), [ENV.ackSecretArn]: missing },
    });
    expect(gone.status).toBe(1);
    expect(gone.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(gone.stderr).toMatch(/^crs ack-key: .*ResourceNotFoundException.*AckSecretArn/);
    expect(gone.stderr).toContain(missing);

    const unnamed = await crs('drop-previous', '--backend', 'aws');
    expect(unnamed.status).toBe(2);
    expect(unnamed.stderr).toContain(`no ${ENV.ackSecretArn}: set ${ENV.ackSecretArn}, or give the stack's outputs`);
  });
});
