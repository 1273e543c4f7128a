// `crs serve --backend aws` started without CRS_INGEST_TOKEN tells the operator how to issue a device token: the
// command it prints must run as printed, from another shell (no emulator endpoint or table in its environment), and
// the token it issues must be one the run's ingest accepts. Until 2026-12-05 it printed `crs token issue --backend
// aws --device ID` without the --kind that issue requires (refused, exit 2) and without the emulator's endpoint (the
// token would have gone to AWS itself). Until 2026-12-06 it left out the dummy credentials the server sets for a
// loopback emulator when there are none, so on a machine without AWS credentials (a fresh clone) the SDK refused it:
// "Could not load credentials from any providers".
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_UNKNOWN } from '#app/auth.ts';
import { post, runPrefix, spawnAwsServe, stop, teardown, type AwsServe } from '#test/support/aws-serve.ts';
import { CLI, REPO } from '#test/support/cli.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';
import { msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

let emulator: Emulator;
let server: AwsServe | undefined;
const prefix = runPrefix('hint');

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  if (server) await stop(server);
  await teardown(emulator.endpoint, prefix);
  await emulator?.stop();
});

describe('the device token hint of crs serve --backend aws', () => {
  it('runs as printed and issues a token the ingest accepts', async () => {
    // A machine without AWS credentials, as a fresh clone is (CI exports dummy ones for the other tests).
    const noCredentials = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '' };
    server = await spawnAwsServe(emulator.endpoint, prefix, [], { CRS_INGEST_TOKEN: '', ...noCredentials });
    // The hint is the line after "listening on", which is all spawnAwsServe waits for: wait for it too.
    const hint = await until(
      () => server!.stderr().match(/\(a device token: (.+ crs token issue .+); or set CRS_INGEST_TOKEN\)/)?.[1],
      () => `the device token hint in: ${server!.stderr()}`,
    );
    // As the operator types it in another shell: the placeholders filled, `crs` being this checkout's.
    const command = hint!
      .replace('DEVICE_ID', 'gw-hint')
      .replace('KIND', 'monitor')
      .replace(' crs token ', ` ${process.execPath} ${CLI} token `);
    const {
      AWS_ENDPOINT_URL: _e,
      CRS_TOKENS_TABLE: _t,
      AWS_REGION: _r,
      AWS_DEFAULT_REGION: _d,
      AWS_ACCESS_KEY_ID: _k,
      AWS_SECRET_ACCESS_KEY: _s,
      AWS_SESSION_TOKEN: _st,
      AWS_PROFILE: _p,
      ...shell
    } = process.env;
    const issued = spawnSync('sh', ['-c', `${command} --json`], { cwd: REPO, env: shell, encoding: 'utf8' });
    expect(issued.status, issued.stderr).toBe(0);
    const { token, deviceId } = JSON.parse(issued.stdout) as { token: string; deviceId: string };
    expect(deviceId).toBe('gw-hint');
    const res = await post(server.url, msg('P-HINT', 0, { vitals: { heartRate: 80 } }), token);
    expect(res.status, await res.text()).toBe(202);
    // A token it never issued is refused saying what to run, as this backend's operator runs it (2026-12-06: the
    // embedded command alone).
    const refused = await post(server.url, msg('P-HINT', 1, { vitals: { heartRate: 80 } }), 'crs_not-issued-here');
    expect([refused.status, await refused.json()]).toEqual([403, { error: TOKEN_UNKNOWN('aws') }]);
  }, 180_000);
});

describe('CRS_INGEST_TOKEN on crs serve --backend aws (docs/security.md: taken on a loopback listener only)', () => {
  // 2026-12-08: the run stores the token (hashed, every right) in its tokens table, which outlives the run; a later run
  // of the same prefix on a network address, without CRS_INGEST_TOKEN, took it from anyone who had it.
  const reused = runPrefix('local');
  afterAll(async () => {
    await teardown(emulator.endpoint, reused);
  });

  it('is not taken by a later run of the same tables that listens on a network address', async () => {
    if (server) await stop(server);
    const reading = (minute: number) => msg('P-LOCAL', minute, { vitals: { heartRate: 80 } });
    server = await spawnAwsServe(emulator.endpoint, reused);
    expect((await post(server.url, reading(0))).status).toBe(202);
    await stop(server);
    server = await spawnAwsServe(emulator.endpoint, reused, ['--host', '0.0.0.0'], { CRS_INGEST_TOKEN: '' });
    const refused = await post(server.url, reading(1));
    expect([refused.status, await refused.json()]).toEqual([403, { error: TOKEN_UNKNOWN('aws') }]);
    await stop(server);
    server = undefined;
    // Set again on loopback, it is taken again; until the run is given another.
    server = await spawnAwsServe(emulator.endpoint, reused);
    expect((await post(server.url, reading(2))).status).toBe(202);
    await stop(server);
    const other = 'another-local-token-of-32-characters!';
    server = await spawnAwsServe(emulator.endpoint, reused, [], { CRS_INGEST_TOKEN: other });
    expect((await post(server.url, reading(3))).status).toBe(403);
    expect((await post(server.url, reading(4), other)).status).toBe(202);
  }, 400_000);
});
