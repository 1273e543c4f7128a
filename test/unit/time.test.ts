import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSiteTime, iso, parseTime } from '#domain/time.ts';
import { parseTimeWithOffset } from '#domain/typed-time.ts';

const reference = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('iso', () => {
  it('formats like Date#toISOString, without zero milliseconds', () => {
    expect(iso(Date.parse('2026-01-10T08:00:00Z'))).toBe('2026-01-10T08:00:00Z');
    expect(iso(Date.parse('2024-02-29T23:59:59.007Z'))).toBe('2024-02-29T23:59:59.007Z');
    expect(iso(0)).toBe('1970-01-01T00:00:00Z');
  });

  it('agrees with Date#toISOString for any time from year 0001 to 9999', () => {
    const min = Date.parse('0001-01-01T00:00:00Z');
    const max = Date.parse('9999-12-31T23:59:59.999Z');
    fc.assert(
      fc.property(fc.integer({ min, max }), (ms) => {
        expect(iso(ms)).toBe(reference(ms));
      }),
      { numRuns: 20_000 },
    );
  });

  it('stays exact when times repeat or share a memo slot (the same second, or 4,096 s apart)', () => {
    const t = Date.parse('2026-11-26T10:00:00Z');
    const clashing = [t, t + 1, t + 999, t + 4_096_000, t - 4_096_000, t + 1, t];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...clashing), { minLength: 1, maxLength: 30 }), (times) => {
        for (const ms of times) expect(iso(ms)).toBe(reference(ms));
      }),
    );
  });
});

describe('parseTime', () => {
  const p2 = (n: number) => String(n).padStart(2, '0');
  /** A timestamp's parts, each in and just beyond its range, in the spellings the contract takes and some it does not. */
  const spelt = fc
    .tuple(
      fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom(1900, 2000, 2024, 2026, 2100)),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 61 }),
      fc.integer({ min: 0, max: 61 }),
      fc.constantFrom('', '', '.000', '.123', '.999', '.0', '.00', '.5', '.1234', '.123456789', '.', '.1a3'),
      fc.constantFrom('Z', 'Z', '+00:00', '-00:00', '+02:00', '-05:30', '+23:59', '-24:00', '+02:60', '+1:00', 'z', ''),
      fc.constantFrom('T', 'T', 't', ' '),
    )
    .map(
      ([y, mo, d, h, mi, s, frac, zone, t]) =>
        `${String(y).padStart(4, '0')}-${p2(mo)}-${p2(d)}${t}${p2(h)}:${p2(mi)}:${p2(s)}${frac}${zone}`,
    );

  it('reads every timestamp as Date.parse does (by hand for the usual spellings, NaN where it does)', () => {
    fc.assert(
      fc.property(spelt, (text) => {
        expect(Object.is(parseTime(text), Date.parse(text)), text).toBe(true);
      }),
      { numRuns: 50_000 },
    );
    for (const text of ['2024-02-29T23:59:59.007Z', '2026-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2026-11-26'])
      expect(Object.is(parseTime(text), Date.parse(text)), text).toBe(true);
  });
});

describe('formatSiteTime', () => {
  it('stays exact when times repeat or share a memo slot, in one zone and another', () => {
    const fresh = (ms: number, zone: string) => {
      const p: Record<string, string> = {};
      const f = new Intl.DateTimeFormat('en-GB', {
        timeZone: zone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
        timeZoneName: 'short',
      });
      for (const part of f.formatToParts(ms)) p[part.type] = part.value;
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
    };
    const t = Date.parse('2026-10-25T00:59:59.900Z'); // a minute before Paris leaves summer time
    const clashing = [t, t + 100, t + 1, t + 60_000, t + 4_096_000, t - 4_096_000, t + 512, t + 1000];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...clashing), fc.constantFrom('UTC', 'Europe/Paris')), { maxLength: 30 }),
        (times) => {
          for (const [ms, zone] of times) expect(formatSiteTime(ms, zone)).toBe(fresh(ms, zone));
        },
      ),
    );
  });
});

describe('times, pinned by a mutation run', () => {
  it('reads a typed time with any zone offset as that instant, and one without an offset as no time at all', () => {
    const instant = Date.parse('2026-11-26T11:00:00Z');
    expect(parseTimeWithOffset('2026-11-26T11:00:00Z')).toBe(instant);
    expect(parseTimeWithOffset('2026-11-26T12:00:00+01:00')).toBe(instant);
    expect(parseTimeWithOffset('2026-11-26T06:00:00-05:00')).toBe(instant);
    expect(parseTimeWithOffset('2026-11-26T11:00:00.250Z')).toBe(instant + 250);
    for (const typed of ['2026-11-26T11:00:00', '2026-11-26', '11:00:00Z', 'tomorrow', ''])
      expect(parseTimeWithOffset(typed), typed).toBeNaN();
  });

  it('writes a time past year 9999 as Date#toISOString does (never as a four-digit year)', () => {
    const ms = Date.parse('+010000-01-01T00:00:00Z');
    expect(iso(ms)).toBe('+010000-01-01T00:00:00Z');
    expect(iso(Date.parse('9999-12-31T23:59:59Z'))).toBe('9999-12-31T23:59:59Z');
  });

  it('writes midnight as 00:00 of the new day in the site zone, never 24:00 of the day before', () => {
    expect(formatSiteTime('2026-12-01T23:00:00Z', 'Europe/Paris')).toBe('2026-12-02 00:00 CET');
    expect(formatSiteTime('2026-12-02T00:00:00Z', 'UTC')).toBe('2026-12-02 00:00 UTC');
  });

  it('shows a stored time it cannot read as it was stored, instead of failing the page', () => {
    expect(formatSiteTime('not a time', 'Europe/Paris')).toBe('not a time');
    expect(formatSiteTime(Number.NaN, 'UTC')).toBe('NaN');
  });

  it('keeps each zone its own format, whatever zone was used first', () => {
    const at = '2026-07-01T08:20:00Z';
    expect(formatSiteTime(at, 'America/New_York')).toBe('2026-07-01 04:20 GMT-4');
    expect(formatSiteTime(at, 'Europe/Paris')).toBe('2026-07-01 10:20 CEST');
    expect(formatSiteTime(at, 'UTC')).toBe('2026-07-01 08:20 UTC');
    expect(formatSiteTime(at, 'America/New_York')).toBe('2026-07-01 04:20 GMT-4');
  });
});
