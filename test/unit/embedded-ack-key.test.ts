// crs serve's acknowledge-link key rotated (crs ack-key rotate, 2026-12-06): the links sent before work until they
// expire; a second rotation, or the previous key dropped, voids them. A running crs serve reads the files again
// within ACK_KEY_FILES_CHECK_MS (on its own clock), or after a restart.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shortAckToken } from '#app/ack.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { ACK_KEY_FILES_CHECK_MS } from '#hosts/embedded/ack-key.ts';
import { resolveConfig } from '#domain/config.ts';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { startPagingServer } from '#test/support/in-process-serve.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';
import { crsMain } from '#test/support/cli.ts';

const TOKEN = 'local-test-token-of-at-least-32-chars';
const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;
const T = Date.parse('2026-12-06T10:00:00Z');
const EXPIRES = T + CONFIG.paging.ackLinkMinutes * 60_000;
let clock = T;
let dir: string;
let server: EmbeddedServer | undefined;
let lines: string[];
/** The server's log. */
let logged: string[];

const start = async () => {
  server = await startPagingServer({
    dataDir: dir,
    paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES },
    lines,
    now: () => clock,
    localToken: TOKEN,
    log: (line) => logged.push(line),
  });
  return server;
};
const stop = async () => {
  await server?.close();
  server = undefined;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-ack-key-'));
  lines = [];
  logged = [];
  clock = T;
});
afterEach(async () => {
  await stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A grade 1 page for the patient (a fever): its link's token. */
async function pageToken(patientId: string): Promise<string> {
  const s = server!;
  for (const m of [enrol(patientId, 0), msg(patientId, 10, { vitals: { temperatureC: 39.1 } })]) {
    const r = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(m),
    });
    expect(r.status).toBe(202);
  }
  const page = await until(() => {
    const events = lines.map((l) => JSON.parse(l) as { type: string; patientId: string; ackUrl?: string });
    return events.find((e) => e.type === 'page' && e.patientId === patientId && e.ackUrl);
  }, `a page for ${patientId}`);
  return page.ackUrl!.split('/').at(-1)!;
}
/** The key file (ack.key or ack.key.previous) whose key signed the link of a page sent now. */
function signedWith(token: string): Buffer | undefined {
  const events = lines.map((l) => JSON.parse(l) as { type: string; pageId: string; role: string; ackUrl?: string });
  const page = events.find((e) => e.type === 'page' && e.ackUrl?.endsWith(`/${token}`))!;
  const claims = { pageId: page.pageId, role: page.role, expiresAt: clock + CONFIG.paging.ackLinkMinutes * 60_000 };
  return ['ack.key', 'ack.key.previous']
    .map((f) => readFileSync(join(dir, f)))
    .find((key) => shortAckToken(key, claims) === token);
}
const shown = async (token: string) => (await fetch(`${server!.url}/ack/${token}`)).status;
const rotate = async (...args: string[]) => {
  const r = await crsMain(['ack-key', ...args, '--data', dir]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
};
const mode = (file: string) => statSync(join(dir, file)).mode & 0o777;

describe('crs ack-key rotate', () => {
  it('takes at once a link sent a moment after a rotation (one key ring for sending and answering)', async () => {
    await start();
    const first = await pageToken('P1');
    clock += ACK_KEY_FILES_CHECK_MS;
    expect(await shown(first)).toBe(200); // the answering side reads the files again now: the old key
    await rotate('rotate');
    // The link is signed with the keys the answering side holds too (here the old key, now the previous one). Until
    // 2026-12-06 each side held its own: the sending side, read long before, read the files again and signed with the
    // new key, and the answering side, read a moment before, refused the link as forged (403) for up to 2 s.
    const fresh = await pageToken('P2');
    expect(signedWith(fresh)).toBeDefined();
    expect(await shown(fresh)).toBe(200);
    clock += ACK_KEY_FILES_CHECK_MS; // and from the next read on, the new key signs
    const later = await pageToken('P3');
    expect(signedWith(later)).toEqual(readFileSync(join(dir, 'ack.key')));
    expect([await shown(fresh), await shown(later)]).toEqual([200, 200]);
  });

  it('keeps the links sent before working until they expire; a second rotation voids them', async () => {
    await start();
    const old = await pageToken('P1');
    const k1 = readFileSync(join(dir, 'ack.key'));
    // While crs serve runs: it is told it reads the files again (2026-12-06; it was told to restart).
    expect(await rotate('rotate')).toMatch(
      /links already sent work until they expire\ncrs serve is running on it: in use within 2 s, no restart/,
    );
    expect(readFileSync(join(dir, 'ack.key.previous'))).toEqual(k1);
    expect(readFileSync(join(dir, 'ack.key')).equals(k1)).toBe(false);
    expect([mode('ack.key'), mode('ack.key.previous')]).toEqual([0o600, 0o600]);
    await stop();
    await start();
    expect(await shown(old)).toBe(200);
    // A forged link is still refused; the new key signs the new links.
    expect(await shown(`${old.slice(0, -2)}${old.endsWith('AA') ? 'AQ' : 'AA'}`)).toBe(403);
    const fresh = await pageToken('P2');
    expect(await shown(fresh)).toBe(200);
    // The expiry holds under the previous key.
    clock = EXPIRES;
    expect(await shown(old)).toBe(403);
    clock = T;
    await stop();
    expect(await rotate('rotate')).toMatch(/crs serve uses it from its next start/);
    await start();
    expect([await shown(old), await shown(fresh)]).toEqual([403, 200]);
  });

  it('a damaged ack.key is refused saying what to do, as at a start (its advice was lost on 2026-12-06)', async () => {
    writeFileSync(join(dir, 'ack.key'), Buffer.alloc(5));
    const r = await crsMain(['ack-key', 'rotate', '--data', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ack\.key is not a 32-byte key; delete it to make a new one/);
    expect(readFileSync(join(dir, 'ack.key'))).toHaveLength(5);
  });

  it('--drop-previous (a key that leaked) keeps no previous key; drop-previous alone forgets it', async () => {
    await start();
    const old = await pageToken('P1');
    await stop();
    expect(await rotate('rotate', '--drop-previous')).toMatch(/no previous key kept: links sent before stop working/);
    await start();
    expect(await shown(old)).toBe(403);
    const fresh = await pageToken('P2');
    await stop();
    await rotate('rotate');
    expect(await rotate('drop-previous')).toMatch(/previous acknowledge-link key removed/);
    await start();
    expect(await shown(fresh)).toBe(403);
    await stop();
    expect(await rotate('drop-previous')).toMatch(/nothing to drop/);
  });

  it('takes effect in a running crs serve within ACK_KEY_FILES_CHECK_MS, without a restart (2026-12-06)', async () => {
    await start();
    const old = await pageToken('P1');
    const k1 = readFileSync(join(dir, 'ack.key'));
    expect(await rotate('rotate')).toMatch(/crs serve is running on it: in use within 2 s, no restart/);
    const k2 = readFileSync(join(dir, 'ack.key'));
    // Within the bound the server signs with the key it read at start; then with the new one.
    clock = T + ACK_KEY_FILES_CHECK_MS - 1;
    expect(signedWith(await pageToken('P2'))?.equals(k1)).toBe(true);
    clock = T + ACK_KEY_FILES_CHECK_MS;
    const fresh = await pageToken('P3');
    expect(signedWith(fresh)?.equals(k2)).toBe(true);
    expect(logged.filter((l) => l.includes('acknowledge-link keys read again'))).toEqual([
      `crs serve: acknowledge-link keys read again from ${dir}: a new ack.key signs new links; ack.key.previous verifies links sent before`,
    ]);
    expect([await shown(old), await shown(fresh)]).toEqual([200, 200]);
    // The previous key leaked: dropped, its links are refused within the bound.
    await rotate('drop-previous');
    expect(await shown(old)).toBe(200);
    clock += ACK_KEY_FILES_CHECK_MS;
    expect([await shown(old), await shown(fresh)]).toEqual([403, 200]);
  });

  it('keeps the keys in hand when a key file is missing or not a key, and says so once in its log', async () => {
    await start();
    const old = await pageToken('P1');
    await rotate('rotate');
    writeFileSync(join(dir, 'ack.key'), 'half a key');
    clock += ACK_KEY_FILES_CHECK_MS;
    const sent = await pageToken('P2'); // a page is never lost to it: signed with the key in hand
    expect([await shown(old), await shown(sent)]).toEqual([200, 200]);
    clock += ACK_KEY_FILES_CHECK_MS;
    expect(await shown(sent)).toBe(200);
    rmSync(join(dir, 'ack.key'));
    clock += ACK_KEY_FILES_CHECK_MS;
    expect(await shown(sent)).toBe(200);
    expect(logged.filter((l) => l.includes('not read again'))).toEqual([
      expect.stringMatching(
        /keys not read again \([^;]*ack\.key is not a 32-byte key\); links are signed and verified with the keys in hand/,
      ),
      expect.stringMatching(/keys not read again \(.*ack\.key is missing\)/),
    ]);
  });

  it('refuses a directory crs serve never ran on, and other arguments', async () => {
    const r = await crsMain(['ack-key', 'rotate', '--data', join(dir, 'nowhere')]);
    expect([r.status, r.stderr]).toEqual([2, expect.stringContaining('no crs data in')]);
    expect((await crsMain(['ack-key', 'turn', '--data', dir])).status).toBe(2);
    expect((await crsMain(['ack-key', 'drop-previous', '--drop-previous', '--data', dir])).status).toBe(2);
  });

  it('on AWS (--backend aws): its mistakes named before any AWS call (2026-12-07)', async () => {
    // Until 2026-12-07 --backend aws was refused naming the aws secretsmanager commands (test/integration/
    // aws-ack-key.test.ts rotates the stack's secret on an emulator). Here an endpoint nobody listens on.
    const env = {
      ...Object.fromEntries(Object.keys(process.env).flatMap((k) => (k.startsWith('CRS_') ? [[k, undefined]] : []))),
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_REGION: 'eu-west-1',
    };
    const refused = async (args: string[], said: string) => {
      const r = await crsMain(['ack-key', ...args], { env });
      expect([r.status, r.stdout], args.join(' ')).toEqual([2, '']);
      expect(r.stderr, args.join(' ')).toMatch(new RegExp(`^crs ack-key: ${said}`));
    };
    await refused(['rotate', '--backend', 'aws'], 'no CRS_ACK_SECRET_ARN: set CRS_ACK_SECRET_ARN, or give the stack');
    await refused(['drop-previous', '--backend=aws', '--outputs', join(dir, 'none.json')], 'cannot read the outputs');
    await refused(['rotate', '--backend', 'aws', '--data', dir], "--data is crs serve's; on AWS give --outputs FILE");
    await refused(['rotate', '--data', dir, '--outputs', 'o.json'], '--outputs is for --backend aws');
    await refused(['rotate', '--backend', 'gcp'], '--backend must be embedded or aws');
    const help = await crsMain(['ack-key', '--help']);
    expect(help.stdout).toContain('crs ack-key rotate [--drop-previous] --backend aws [--outputs FILE]');
  });
});
