import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signAck, verifyAck } from '#app/ack.ts';

const secret = randomBytes(32);
const claims = { pageId: 'crs|P-1|msg-7|hematology', role: 'hematology fellow', expiresAt: Date.parse('2026-11-26T12:00:00Z') };
const before = claims.expiresAt - 1;

describe('acknowledge links', () => {
  it('a signed token verifies until it expires', () => {
    const token = signAck(secret, claims);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[a-z0-9]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyAck(secret, token, before)).toEqual({ ok: true, claims });
    expect(verifyAck(secret, token, claims.expiresAt)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a token signed with another secret', () => {
    expect(verifyAck(secret, signAck(randomBytes(32), claims), before)).toEqual({ ok: false, reason: 'forged' });
  });

  it('refuses an altered page, role or expiry', () => {
    const [v, , r, e, sig] = signAck(secret, claims).split('.');
    const otherPage = Buffer.from('crs|P-2|msg-7|hematology').toString('base64url');
    const otherRole = Buffer.from('hematology consultant').toString('base64url');
    expect(verifyAck(secret, [v, otherPage, r, e, sig].join('.'), before)).toEqual({ ok: false, reason: 'forged' });
    expect(verifyAck(secret, [v, Buffer.from(claims.pageId).toString('base64url'), otherRole, e, sig].join('.'), before)).toEqual({ ok: false, reason: 'forged' });
    const later = (claims.expiresAt + 86_400_000).toString(36);
    expect(verifyAck(secret, [v, Buffer.from(claims.pageId).toString('base64url'), r, later, sig].join('.'), before)).toEqual({ ok: false, reason: 'forged' });
  });

  it.each(['', 'v1', 'v2.a.b.c.d', 'v1.a.b.c', 'v1.a.b.zz!.d', 'v1.a.b.c.d.e', 'v1.%%.b.c.d'])('refuses a malformed token %j', (token) => {
    expect(verifyAck(secret, token, before)).toEqual({ ok: false, reason: 'malformed' });
  });
});
