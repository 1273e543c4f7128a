// Authentication and authorisation, pinned by a mutation run (2026-12-06): each test fails on a mutant that
// survived the suite (a check a real bug could loosen) and passes on the code.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueToken, tokenPrincipal, UNKNOWN_KIND, UNREADABLE_SCOPE } from '../../shared/app/auth.ts';
import { checkScope, isDeviceKind } from '../../shared/app/scope.ts';
import type { DeviceKind } from '../../shared/app/scope.ts';
import { expiryFindings } from '../../shared/app/token-expiry.ts';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { ackLinkKey, shortAckToken, signAck, verifyAck, verifyAckLink, verifyShortAck } from '#app/ack.ts';
import { acknowledgeByApi, submitLink, type AckFlowDeps } from '#app/ack-flow.ts';
import { readAckKeys } from '#adapters/aws/ack-secret.ts';
import { DEFAULT_PAGING } from '#domain/paging.ts';
import { ACK_KEY_FILE, ACK_PREVIOUS_KEY_FILE, loadAckKeys } from '#hosts/embedded/ack-key.ts';

const NOW = new Date('2026-12-06T09:00:00Z');
const record = issueToken('mon-1', NOW, { kind: 'monitor' }).record;

describe('a stored token: pinned by a mutation run', () => {
  // A kind named as the server's own principals (the operator's CRS_INGEST_TOKEN, a token from before scopes) or as
  // an object's own property is no device kind: stored by hand it would carry every right.
  it('refuses a stored kind that names a principal (local, legacy) or a property of an object', () => {
    for (const kind of ['local', 'legacy', 'toString', 'constructor', '__proto__']) {
      expect(isDeviceKind(kind), kind).toBe(false);
      expect(tokenPrincipal({ ...record, kind: kind as DeviceKind }, NOW), kind).toEqual({
        ok: false,
        status: 403,
        error: UNKNOWN_KIND(kind),
      });
      expect(checkScope({ kind }).ok, kind).toBe(false);
    }
  });

  it('refuses wards or patients of which only some are text (every one must be)', () => {
    for (const field of ['wards', 'patients'] as const) {
      const stored = { ...record, [field]: ['ICU', 4] as unknown as string[] };
      expect(tokenPrincipal(stored, NOW), field).toEqual({ ok: false, status: 403, error: UNREADABLE_SCOPE(field) });
    }
  });
});

describe('tokens about to refuse their device (expiryFindings): pinned by a mutation run', () => {
  const D = 86_400_000;
  const made = (deviceId: string, createdAt: Date, expiresAt?: Date) =>
    issueToken(deviceId, createdAt, { kind: 'monitor' }, expiresAt?.toISOString()).record;
  const later = (ms: number) => new Date(NOW.getTime() + ms);

  it('names no replacement that is itself refused now (revoked or of an unknown kind): rotate is said', () => {
    const old = made('mon-2', later(-30 * D), later(3 * D));
    for (const newer of [
      { ...made('mon-2', later(-D), later(90 * D)), revokedAt: NOW.toISOString() },
      { ...made('mon-2', later(-D), later(90 * D)), kind: 'camera' as DeviceKind },
    ]) {
      const [finding] = expiryFindings([old, newer], NOW);
      expect(finding, JSON.stringify(newer)).toMatchObject({ tokenId: old.tokenId, replacedBy: null });
    }
  });

  it('names no older token of the device as the replacement of a newer one', () => {
    const older = made('mon-3', later(-60 * D), later(400 * D));
    const newer = made('mon-3', later(-D), later(3 * D));
    expect(expiryFindings([older, newer], NOW)).toEqual([
      expect.objectContaining({ tokenId: newer.tokenId, replacedBy: null }),
    ]);
  });

  it('warns of no revoked token, whenever it expires', () => {
    const revoked = { ...made('mon-4', later(-30 * D), later(3 * D)), revokedAt: NOW.toISOString() };
    expect(expiryFindings([revoked], NOW)).toEqual([]);
    expect(expiryFindings([{ ...revoked, expiresAt: later(-D).toISOString() }], NOW)).toEqual([]);
  });
});

describe('acknowledge links: pinned by a mutation run', () => {
  const key = Buffer.alloc(32, 7);
  const claims = {
    pageId: 'crs|P-1|msg-7|hematology',
    role: 'hematology fellow',
    expiresAt: Date.parse('2026-11-26T12:00:00Z'),
  };
  const before = claims.expiresAt - 1;
  /** The token with one byte of its MAC changed, spelt canonically (so only the MAC's check can refuse it). */
  const flipped = (mac: string, byte: number) => {
    const b = Buffer.from(mac, 'base64url');
    b[byte]! ^= 1;
    return b.toString('base64url');
  };

  // Links already sent must verify after an upgrade: the texts a MAC is taken over are part of the link's format.
  it('signs as it did: the same key and claims give the same short and v1 tokens', () => {
    expect(shortAckToken(key, claims)).toBe('-ciAhBHoRZhNqOkdb7fXmA');
    expect(signAck(key, claims)).toBe(
      'v1.Y3JzfFAtMXxtc2ctN3xoZW1hdG9sb2d5.aGVtYXRvbG9neSBmZWxsb3c.mwxi2yo0.PCnB5b5REs_RKK8YSb8cinHTHyAfDvmE6a7pkPgGt0Y',
    );
  });

  it('compares the whole MAC: a link differing in its last bytes only is forged', () => {
    const short = shortAckToken(key, claims);
    for (const byte of [0, 8, 15])
      expect(verifyShortAck(key, flipped(short, byte), claims, before), `short, byte ${byte}`).toEqual({
        ok: false,
        reason: 'forged',
      });
    const parts = signAck(key, claims).split('.');
    for (const byte of [0, 8, 31]) {
      const v1 = [...parts.slice(0, 4), flipped(parts[4]!, byte)].join('.');
      expect(verifyAck(key, v1, before), `v1, byte ${byte}`).toEqual({ ok: false, reason: 'forged' });
    }
  });

  it('takes one spelling of a short token: a sibling of its last character is malformed', () => {
    const token = shortAckToken(key, claims);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = token.slice(0, 21) + alphabet[alphabet.indexOf(token[21]!) ^ 1];
    expect(Buffer.from(sibling, 'base64url')).toEqual(Buffer.from(token, 'base64url'));
    expect(verifyShortAck(key, sibling, claims, before)).toEqual({ ok: false, reason: 'malformed' });
  });

  // Expired under the current key is the current key's genuine link: its refusal goes to the patient's trail with its
  // claims, never tried under the previous key (which would call it forged).
  it('calls a link the current key signed expired, with its claims, when a previous key is kept too', async () => {
    const keys = { current: key, previous: Buffer.alloc(32, 8) };
    const short = shortAckToken(key, claims);
    const stored = async (k: string) => (k === ackLinkKey(short) ? claims : undefined);
    for (const token of [short, signAck(key, claims)])
      expect(await verifyAckLink(keys, token, claims.expiresAt, stored), token).toEqual({
        ok: false,
        reason: 'expired',
        claims,
      });
  });

  it("spends an address's budget on every refused link: malformed and expired as forged", async () => {
    for (const code of ['link-malformed', 'link-expired', 'link-forged'] as const) {
      const spent: string[] = [];
      const deps: AckFlowDeps = {
        acknowledgeLink: async () => ({ ok: false, code, reason: code }),
        verify: async () => ({ ok: false, reason: 'forged' }),
        page: () => undefined,
        config: DEFAULT_PAGING,
        timeZone: 'UTC',
        board: true,
        refusals: { admit: async () => undefined, refused: (client) => void spent.push(client) },
      };
      const body = JSON.stringify({ token: 'abc', by: 'Dr A' });
      await acknowledgeByApi({ contentType: 'application/json', contentEncoding: undefined, body, client: 'c1' }, deps);
      await submitLink('abc', { body: 'by=Dr+A', client: 'c2' }, deps);
      expect(spent, code).toEqual(['c1', 'c2']);
    }
  });
});

describe('the acknowledge-link keys on AWS: pinned by a mutation run', () => {
  // A previous key that cannot be read now (a throttle) is no previous key dropped: the read fails and the keys held
  // are kept (links sent under the previous key keep working), where it was read as none.
  it('fails a read whose AWSPREVIOUS cannot be read for any reason but its absence', async () => {
    const secrets = mockClient(SecretsManagerClient);
    try {
      secrets.on(GetSecretValueCommand).callsFake((input: { VersionStage?: string }) => {
        if (input.VersionStage === 'AWSPREVIOUS')
          throw Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
        return { SecretString: 'k'.repeat(32) };
      });
      await expect(readAckKeys(new SecretsManagerClient({}), 'arn:secret')).rejects.toThrow('throttled');
    } finally {
      secrets.restore();
    }
  });
});

describe("crs serve's acknowledge-link key files: pinned by a mutation run", () => {
  // A key file of another length is no key this server wrote (a cut copy, a file put in its place): refused at a
  // start, however near 32 bytes it is, never used to sign links.
  it('refuses an ack.key or ack.key.previous of any length but 32 bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-ackkey-'));
    try {
      for (const file of [ACK_KEY_FILE, ACK_PREVIOUS_KEY_FILE]) {
        for (const bytes of [16, 31, 33]) {
          writeFileSync(join(dir, ACK_KEY_FILE), randomBytes(32));
          writeFileSync(join(dir, file), randomBytes(bytes));
          expect(() => loadAckKeys(dir), `${file}, ${bytes} bytes`).toThrow(`${file} is not a 32-byte key`);
        }
        rmSync(join(dir, ACK_PREVIOUS_KEY_FILE), { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
