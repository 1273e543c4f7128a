// `crs token` on the embedded backend (its default): tokens issued, listed and revoked in the data directory of a
// running `crs serve`, which accepts a token at once and refuses it at once once revoked; a directory with no
// database is refused rather than given one.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '#domain/config.ts';
import { tokenCommand } from '#cli/tokens.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { enrol } from '#test/support/messages.ts';
import { HOSTILE_TOKEN_ARGUMENTS } from '#test/support/token-arguments.ts';
import { chainRefusals, rotationBesideAnotherToken, rotationChains, warningOf } from '#test/support/token-link.ts';

const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
let dir: string;
let server: EmbeddedServer;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-tokens-'));
  server = await startEmbeddedServer({ dataDir: dir, config: resolved.config, port: 0, log: () => {} });
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const code = await tokenCommand(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

const post = (token: string, patientId: string) =>
  fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(enrol(patientId, 0)),
  });

describe('crs token (embedded)', () => {
  it('issues a token the running server accepts at once, lists it, and revokes it so that the device gets 403', async () => {
    const before = Date.now();
    const issued = await run(['issue', '--device', 'monitor-12', '--kind', 'ehr', '--data', dir]);
    expect(issued.code).toBe(0);
    const token = issued.out.match(/^token: {4}(\S+)$/m)![1]!;
    const tokenId = issued.out.match(/^tokenId: {2}(\S+)$/m)![1]!;
    expect(issued.out).toContain(`hash in:  ${dir} (the crs serve data directory)`);
    expect(issued.out).toContain(`Revoke it with: crs token revoke ${tokenId} --data ${dir}`);
    expect((await post(token, 'P-1')).status).toBe(202);

    const listed = await run(['list', '--json', '--data', dir]);
    expect(JSON.parse(listed.out)).toEqual([
      {
        tokenId,
        deviceId: 'monitor-12',
        kind: 'ehr',
        wards: [],
        patients: [],
        createdAt: expect.any(String),
        revokedAt: null,
        expiresAt: null,
        expired: false,
        expiryUnreadable: false,
        refused: null,
      },
    ]);
    // When it was issued (any string passed, an empty one too).
    const createdAt = Date.parse(JSON.parse(listed.out)[0].createdAt);
    expect(createdAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(createdAt).toBeLessThanOrEqual(Date.now());
    expect(listed.out).not.toContain(token);

    expect((await run(['revoke', tokenId, '--data', dir])).code).toBe(0);
    expect((await post(token, 'P-2')).status).toBe(403);
    const again = await run(['revoke', tokenId, '--data', dir]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/no active token/);
  });

  // 2026-12-07: the old token of a rotation, revoked, was told to issue the device a new one (a third token, the
  // replacement left unused); it names the replacement. A token revoked with no replacement keeps that advice.
  it('tells a device sending a rotated token, once revoked, to install its replacement, named by id', async () => {
    const issued = await run(['issue', '--device', 'monitor-7', '--kind', 'ehr', '--data', dir, '--json']);
    const old = JSON.parse(issued.out) as { token: string; tokenId: string };
    const rotated = await run(['rotate', old.tokenId, '--data', dir, '--json']);
    expect(rotated.code, rotated.err).toBe(0);
    const fresh = JSON.parse(rotated.out) as { token: string; tokenId: string; createdAt: string };
    expect((await post(old.token, 'P-1')).status).toBe(202); // in its overlap
    expect((await run(['revoke', old.tokenId, '--data', dir])).code).toBe(0);
    const refused = await post(old.token, 'P-1');
    expect([refused.status, ((await refused.json()) as { error: string }).error]).toEqual([
      403,
      `device token replaced at ${fresh.createdAt} by token ${fresh.tokenId} (crs token rotate): install the replacement on the device (if it was lost, rotate that one: crs token rotate ${fresh.tokenId})`,
    ]);
    expect((await post(fresh.token, 'P-1')).status).toBe(202);
    expect((await run(['revoke', fresh.tokenId, '--data', dir])).code).toBe(0);
    const plain = await post(fresh.token, 'P-1');
    expect(((await plain.json()) as { error: string }).error).toBe(
      'device token revoked: issue the device a new one (crs token issue) and configure it with that',
    );
  });

  // 2026-12-07 (a review): the refusal read the direct link only, naming a replacement revoked since (whose rotate
  // fails: "no active token"), or the revoked middle one of two rotations; `crs token list` followed the chain.
  it('names the first replacement of the chain still taken, or none, as crs token list does', async () => {
    const t = await rotationChains((argv) => run([...argv, '--data', dir]));
    const said = chainRefusals(t);
    for (const [token, error] of [
      [t.ended.a.token, said.ended],
      [t.twice.a.token, said.twice],
    ] as const) {
      // Sent again (the second answered from what the first read, REFUSAL_MEMO_TTL_MS): the same answer.
      for (const _ of [1, 2]) {
        const refused = await post(token, 'P-1');
        expect([refused.status, ((await refused.json()) as { error: string }).error]).toEqual([403, error]);
      }
    }
  });

  // 2026-12-07: the list named as the replacement a token of the device it guessed (a newer one that outlives it),
  // not the one rotate stored on the old token's row (replaced_by).
  it('lists the replacement rotate linked to a token, not another token of its device, and none once that is revoked', async () => {
    const t = await rotationBesideAnotherToken((argv) => run([...argv, '--data', dir]));
    const listed = warningOf((await run(['list', '--data', dir])).out, t.rotated);
    expect(listed).toMatch(/ expires at \S+: replaced by /);
    expect(listed).toContain(`replaced by ${t.successor};`);
    expect((await run(['revoke', t.successor, '--data', dir])).code).toBe(0);
    const after = warningOf((await run(['list', '--data', dir])).out, t.rotated);
    expect(after).toContain(`rotate it (crs token rotate ${t.rotated} --data ${dir})`);
    expect(after).not.toContain('replaced by');
  });

  it('refuses a directory with no crs database (creating none) and options of the other backend', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'crs-tokens-empty-'));
    try {
      const r = await run(['issue', '--device', 'gw-1', '--kind', 'monitor', '--data', empty]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`no crs database in ${empty}: start crs serve once`);
      expect(r.err).toContain('--backend aws');
      expect((await run(['list', '--data', empty])).code).toBe(2);
      expect(existsSync(join(empty, 'crs.db'))).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    const table = await run(['list', '--data', dir, '--table', 'tokens']);
    expect(table.code).toBe(2);
    expect(table.err).toMatch(/--table is for --backend aws/);
    const backend = await run(['list', '--backend', 'gcp']);
    expect(backend.code).toBe(2);
    expect(backend.err).toMatch(/--backend must be embedded or aws \(got "gcp"\)/);
    expect((await run(['list', '--backend', 'a\u202ews'])).err).toContain('(got "a\\u202ews")');
  });

  it('prints a revoke command that a shell runs as printed, for a data directory with a space and a quote', async () => {
    // Until 2026-12-05 the path was printed bare: "--data /srv/crs data" revoked nothing (or another directory's).
    const spaced = mkdtempSync(join(tmpdir(), "crs tokens o'clock "));
    const other = await startEmbeddedServer({ dataDir: spaced, config: resolved.config, port: 0, log: () => {} });
    try {
      const issued = await run(['issue', '--device', 'gw-1', '--kind', 'pump', '--data', spaced]);
      expect(issued.code).toBe(0);
      const line = issued.out.match(/^Revoke it with: crs token revoke (\S+) --data (.+)$/m)!;
      const words = spawnSync('sh', ['-c', `printf '%s\\n' ${line[2]}`], { encoding: 'utf8' }).stdout;
      expect(words).toBe(`${spaced}\n`);
      expect((await run(['revoke', line[1]!, '--data', spaced])).code).toBe(0);
    } finally {
      await other.close();
      rmSync(spaced, { recursive: true, force: true });
    }
  });

  it('refuses --device on list and revoke, which filtered nothing', async () => {
    const list = await run(['list', '--device', 'gw-1', '--data', dir]);
    expect(list.code).toBe(2);
    expect(list.err).toContain('crs token: list takes no --kind, --ward, --patient or --device (it lists every token)');
    expect((await run(['revoke', 'some-id', '--device', 'gw-1', '--data', dir])).code).toBe(2);
  });

  it('names a refused ward, device, kind or option precisely, never printing a control or format character raw', async () => {
    // Until 2026-12-05 a refused ward was "1-32 printable characters" with the ward quoted raw: a bidirectional
    // override (U+202E) reordered the operator's terminal line, a zero-width space was not seen in it.
    for (const [argv, said] of HOSTILE_TOKEN_ARGUMENTS) {
      const r = await run([...argv, '--data', dir]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n')[0], argv.join(' ')).toContain(said);
      expect(r.err.replaceAll('\n', ''), argv.join(' ')).not.toMatch(/[\p{Cc}\p{Cf}\u2028\u2029]/u);
    }
    expect(JSON.parse((await run(['list', '--json', '--data', dir])).out)).toEqual([]);
  });
});
