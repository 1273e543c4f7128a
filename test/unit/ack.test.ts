import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ACK_NAME_MAX, ackLinkKey, checkAckName, shortAckToken, signAck, verifyAck, verifyShortAck } from '#app/ack.ts';

const secret = randomBytes(32);
const claims = {
  pageId: 'crs|P-1|msg-7|hematology',
  role: 'hematology fellow',
  expiresAt: Date.parse('2026-11-26T12:00:00Z'),
};
const before = claims.expiresAt - 1;

describe('short acknowledge links', () => {
  it('are 22 characters, the same for the same claims and key, another for any other', () => {
    const token = shortAckToken(secret, claims);
    expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(shortAckToken(secret, { ...claims })).toBe(token);
    for (const other of [
      shortAckToken(randomBytes(32), claims),
      shortAckToken(secret, { ...claims, pageId: 'crs|P-1|msg-7|icu' }),
      shortAckToken(secret, { ...claims, role: 'hematology consultant' }),
      shortAckToken(secret, { ...claims, expiresAt: claims.expiresAt + 1 }),
    ])
      expect(other).not.toBe(token);
  });

  it('are stored under the SHA-256 of the token, never the token itself', () => {
    const token = shortAckToken(secret, claims);
    expect(ackLinkKey(token)).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(ackLinkKey(token)).not.toContain(token);
  });

  it('verify against what is stored: until the expiry, then expired with the claims; another key or claims are forged', () => {
    const token = shortAckToken(secret, claims);
    expect(verifyShortAck(secret, token, claims, before)).toEqual({ ok: true, claims });
    expect(verifyShortAck(secret, token, claims, claims.expiresAt)).toEqual({ ok: false, reason: 'expired', claims });
    expect(verifyShortAck(secret, token, undefined, before)).toEqual({ ok: false, reason: 'forged' });
    expect(verifyShortAck(randomBytes(32), token, claims, before)).toEqual({ ok: false, reason: 'forged' });
    expect(verifyShortAck(secret, token, { ...claims, role: 'x' }, before)).toEqual({ ok: false, reason: 'forged' });
    expect(verifyShortAck(secret, `${token}A`, claims, before)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyShortAck(secret, token.slice(1), claims, before)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('acknowledge links', () => {
  it('a signed token verifies until it expires', () => {
    const token = signAck(secret, claims);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[a-z0-9]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyAck(secret, token, before)).toEqual({ ok: true, claims });
    expect(verifyAck(secret, token, claims.expiresAt)).toEqual({ ok: false, reason: 'expired', claims });
  });

  it('refuses a token signed with another secret', () => {
    expect(verifyAck(secret, signAck(randomBytes(32), claims), before)).toEqual({ ok: false, reason: 'forged' });
  });

  it('refuses an altered page, role or expiry', () => {
    const [v, , r, e, sig] = signAck(secret, claims).split('.');
    const otherPage = Buffer.from('crs|P-2|msg-7|hematology').toString('base64url');
    const otherRole = Buffer.from('hematology consultant').toString('base64url');
    expect(verifyAck(secret, [v, otherPage, r, e, sig].join('.'), before)).toEqual({ ok: false, reason: 'forged' });
    expect(
      verifyAck(secret, [v, Buffer.from(claims.pageId).toString('base64url'), otherRole, e, sig].join('.'), before),
    ).toEqual({ ok: false, reason: 'forged' });
    const later = (claims.expiresAt + 86_400_000).toString(36);
    expect(
      verifyAck(secret, [v, Buffer.from(claims.pageId).toString('base64url'), r, later, sig].join('.'), before),
    ).toEqual({ ok: false, reason: 'forged' });
  });

  it.each(['', 'v1', 'v2.a.b.c.d', 'v1.a.b.c', 'v1.a.b.zz!.d', 'v1.a.b.c.d.e', 'v1.%%.b.c.d'])(
    'refuses a malformed token %j',
    (token) => {
      expect(verifyAck(secret, token, before)).toEqual({ ok: false, reason: 'malformed' });
    },
  );

  it("takes one spelling per token: the signature's last character, the claims' encodings and the expiry are not malleable", () => {
    const token = signAck(secret, claims);
    const [v, p, r, e, sig] = token.split('.') as [string, string, string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // The 43rd character carries the MAC's last 4 bits and 2 unused ones: 3 siblings decode to the same MAC.
    const siblings = [...alphabet].filter(
      (c) => c !== sig[42] && Buffer.from(sig.slice(0, 42) + c, 'base64url').equals(Buffer.from(sig, 'base64url')),
    );
    expect(siblings.length).toBe(3);
    for (const c of siblings)
      expect(verifyAck(secret, [v, p, r, e, sig.slice(0, 42) + c].join('.'), before)).toEqual({
        ok: false,
        reason: 'malformed',
      });
    // The same for the claims' last characters (the page id's encoding ends in a character with spare bits here),
    // a leading zero in the expiry, and a page id whose bytes are not UTF-8 (they would decode to the same text).
    const pageSiblings = [...alphabet].filter(
      (c) => c !== p.at(-1) && Buffer.from(p.slice(0, -1) + c, 'base64url').equals(Buffer.from(p, 'base64url')),
    );
    for (const c of pageSiblings)
      expect(verifyAck(secret, [v, p.slice(0, -1) + c, r, e, sig].join('.'), before)).toEqual({
        ok: false,
        reason: 'malformed',
      });
    expect(verifyAck(secret, [v, p, r, `0${e}`, sig].join('.'), before)).toEqual({ ok: false, reason: 'malformed' });
    const odd = signAck(secret, { ...claims, pageId: 'crs|P-1|\uFFFD|icu' }).split('.');
    const raw = Buffer.from(odd[1]!, 'base64url');
    const swapped = Buffer.from(raw.toString('latin1').replace('\xEF\xBF\xBD', '\xFF'), 'latin1').toString('base64url');
    expect(verifyAck(secret, [odd[0], swapped, ...odd.slice(2)].join('.'), before)).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifyAck(secret, token, before)).toMatchObject({ ok: true });
  });
});

describe('pinned by a mutation run', () => {
  const parts = () => signAck(secret, claims).split('.') as [string, string, string, string, string];

  it('refuses a genuine link under another version, or with a part appended, as malformed', () => {
    const [, p, r, e, sig] = parts();
    expect(verifyAck(secret, ['v2', p, r, e, sig].join('.'), before)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyAck(secret, [...parts(), sig].join('.'), before)).toEqual({ ok: false, reason: 'malformed' });
  });

  it("takes one spelling of the role: a sibling of its encoding's last character is malformed", () => {
    // "ab" is "YWI": the last character carries 2 spare bits, so "YWJ" decodes to "ab" as well.
    const token = signAck(secret, { ...claims, role: 'ab' }).split('.') as [string, string, string, string, string];
    const sibling = `${token[2].slice(0, -1)}J`;
    expect(token[2]).toBe('YWI');
    expect(Buffer.from(sibling, 'base64url').toString('utf8')).toBe('ab');
    expect(verifyAck(secret, [token[0], token[1], sibling, token[3], token[4]].join('.'), before)).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifyAck(secret, token.join('.'), before)).toMatchObject({ ok: true });
  });

  it('calls a cut signature malformed (not forged): the security log says what was wrong', () => {
    const [v, p, r, e, sig] = parts();
    // 40 characters: a canonical spelling of 30 bytes, two short of a MAC.
    expect(verifyAck(secret, [v, p, r, e, sig.slice(0, 40)].join('.'), before)).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it('signs where the page id ends and the role begins: moving a character across is forged', () => {
    const token = signAck(secret, { ...claims, pageId: 'P-1', role: 'ab' }).split('.');
    const b = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
    expect(verifyAck(secret, [token[0], b('P-1a'), b('b'), token[3], token[4]].join('.'), before)).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('calls a forged link forged even past its expiry (only a genuine one goes to the patient trail as expired)', () => {
    const forged = signAck(randomBytes(32), claims);
    expect(verifyAck(secret, forged, claims.expiresAt + 1)).toEqual({ ok: false, reason: 'forged' });
  });

  it('refuses an expiry of more than 12 base-36 digits as malformed', () => {
    const far = { ...claims, expiresAt: 36 ** 12 };
    expect(verifyAck(secret, signAck(secret, far), before)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('pinned by a mutation run: the name typed', () => {
  it(`takes ${ACK_NAME_MAX} characters and refuses one more`, () => {
    expect(checkAckName('a'.repeat(80))).toEqual({ ok: true, name: 'a'.repeat(80) });
    expect(checkAckName('a'.repeat(81))).toEqual({ ok: false, error: 'by: is longer than 80 characters' });
  });

  it('refuses control and format characters (a bidi override would disguise the name in the audit trail)', () => {
    expect(checkAckName('Dr \u0007Ada')).toEqual({ ok: false, error: 'by: contains a control character (U+0007)' });
    for (const [name, c] of [
      ['Dr \u202eAda', 'U+202E'],
      ['Dr\u200bAda', 'U+200B'],
    ])
      expect(checkAckName(name), JSON.stringify(name)).toEqual({
        ok: false,
        error: `by: contains a format character (${c}), which can hide or reorder text`,
      });
  });

  it('takes a Persian name with its non-joiner, as a Persian keyboard types it, and refuses one where it joins nothing', () => {
    // Until 2026-12-05 "by: contains control characters": the clinician could not acknowledge, and the ladder went on.
    expect(checkAckName('محمد\u200cحسین رضایی')).toEqual({ ok: true, name: 'محمد\u200cحسین رضایی' });
    expect(checkAckName('Dr\u200c Ada')).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^by: holds a zero-width non-joiner \(U\+200C\) where it joins nothing/),
    });
  });

  it('answers a name that is not text (a number in the API body) with the field and what is wrong, not a crash', () => {
    // Sent, but not as text: "is required" would send the sender looking for a field they did send.
    expect(checkAckName(42)).toEqual({ ok: false, error: 'by: must be text (your name), not a number' });
    expect(checkAckName(true)).toEqual({ ok: false, error: 'by: must be text (your name), not a boolean' });
    expect(checkAckName(['Dr A'])).toEqual({ ok: false, error: 'by: must be text (your name), not a list' });
    expect(checkAckName({ name: 'Dr A' })).toEqual({ ok: false, error: 'by: must be text (your name), not an object' });
    // Left out (or null, as JSON leaves a field empty): required.
    for (const missing of [undefined, null])
      expect(checkAckName(missing)).toEqual({
        ok: false,
        error: 'by: is required (your name: the audit trail records who did it)',
      });
  });
});
