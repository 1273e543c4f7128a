// The board's chart axis (shared/web/chart.js, axisTicks): ticks on the site's wall clock, a date under each local
// midnight. Until 2026-12-07 the ticks were placed from the zone's offset at the chart's start: after a
// daylight-saving change inside the chart, every 2 or 6 hours fell on odd hours (05:00, 11:00, ...) and the date
// under local midnight was gone. chart.js is plain JavaScript for the browser: it is run here as the board runs it,
// with a window to register on, and given the format the board gives it (shared/web/board.js, chartFmt).
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { formatSiteTime } from '#domain/time.ts';

type Tick = { t: number; time: string; day: string };
type Fmt = { time(ms: number): string; day(ms: number): string; offsetMinutes(ms: number): number };
const window: { CrsChart?: { axisTicks(start: number, end: number, step: number, fmt: Fmt): Tick[] } } = {};
runInNewContext(readFileSync(new URL('../../shared/web/chart.js', import.meta.url), 'utf8'), { window });
const axisTicks = window.CrsChart!.axisTicks;

const HOUR = 3_600_000;
/**
 * The board's chart format in `timeZone` (board.js's chartFmt): the wall clock as formatSiteTime writes it, which the
 * board writes alike (docs/time-zones.md).
 */
function fmtIn(timeZone: string): Fmt {
  const wall = (ms: number) => formatSiteTime(ms, timeZone); // 2026-10-25 00:00 BST
  return {
    time: (ms) => wall(ms).slice(11, 16),
    day: (ms) => wall(ms).slice(0, 10),
    offsetMinutes: (ms) =>
      (Date.parse(`${wall(ms).slice(0, 16).replace(' ', 'T')}Z`) - Math.floor(ms / 60000) * 60000) / 60000,
  };
}
const ticks = (zone: string, from: string, to: string, step: number) =>
  axisTicks(Date.parse(from), Date.parse(to), step, fmtIn(zone)).map(
    (k) => `${new Date(k.t).toISOString().slice(5, 16)}Z ${k.time}${k.day ? ` ${k.day}` : ''}`,
  );

describe('the chart axis across a daylight-saving change', () => {
  it('Europe/London, 25 October 2026 (01:00Z, BST to GMT): every 6 hours on 00, 06, 12, 18 local, both midnights dated', () => {
    expect(ticks('Europe/London', '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z', 6 * HOUR)).toEqual([
      '10-24T17:00Z 18:00',
      '10-24T23:00Z 00:00 2026-10-25',
      '10-25T06:00Z 06:00',
      '10-25T12:00Z 12:00',
      '10-25T18:00Z 18:00',
      '10-26T00:00Z 00:00 2026-10-26',
      '10-26T06:00Z 06:00',
      '10-26T12:00Z 12:00',
    ]);
  });

  it('Europe/London: every 2 hours on even local hours, and each hour on the hour, the repeated 01:00 twice', () => {
    expect(ticks('Europe/London', '2026-10-24T20:00:00Z', '2026-10-25T06:00:00Z', 2 * HOUR)).toEqual([
      '10-24T21:00Z 22:00',
      '10-24T23:00Z 00:00 2026-10-25',
      '10-25T02:00Z 02:00',
      '10-25T04:00Z 04:00',
      '10-25T06:00Z 06:00',
    ]);
    expect(ticks('Europe/London', '2026-10-24T23:30:00Z', '2026-10-25T02:00:00Z', HOUR)).toEqual([
      '10-25T00:00Z 01:00',
      '10-25T01:00Z 01:00',
      '10-25T02:00Z 02:00',
    ]);
  });

  it('America/New_York, 8 March 2026 (02:00 EST to 03:00 EDT): on 00, 06, 12, 18 local on both sides, midnights dated', () => {
    expect(ticks('America/New_York', '2026-03-07T12:00:00Z', '2026-03-09T12:00:00Z', 6 * HOUR)).toEqual([
      '03-07T17:00Z 12:00',
      '03-07T23:00Z 18:00',
      '03-08T05:00Z 00:00 2026-03-08',
      '03-08T10:00Z 06:00',
      '03-08T16:00Z 12:00',
      '03-08T22:00Z 18:00',
      '03-09T04:00Z 00:00 2026-03-09',
      '03-09T10:00Z 06:00',
    ]);
    // 02:00 is never shown by a New York clock that day: no tick for it, and the next on 04:00.
    expect(ticks('America/New_York', '2026-03-08T05:00:00Z', '2026-03-08T10:00:00Z', 2 * HOUR)).toEqual([
      '03-08T05:00Z 00:00 2026-03-08',
      '03-08T08:00Z 04:00',
      '03-08T10:00Z 06:00',
    ]);
  });

  it('a zone without a change and UTC: ticks on the wall clock, a date under each midnight', () => {
    expect(ticks('Asia/Kolkata', '2026-01-09T17:00:00Z', '2026-01-10T06:30:00Z', 6 * HOUR)).toEqual([
      '01-09T18:30Z 00:00 2026-01-10',
      '01-10T00:30Z 06:00',
      '01-10T06:30Z 12:00',
    ]);
    expect(ticks('UTC', '2026-01-09T22:10:00Z', '2026-01-10T00:40:00Z', 30 * 60_000)).toEqual([
      '01-09T22:30Z 22:30',
      '01-09T23:00Z 23:00',
      '01-09T23:30Z 23:30',
      '01-10T00:00Z 00:00',
      '01-10T00:30Z 00:30',
    ]);
  });
});

// Cases a hand mutation run of axisTicks (2026-12-07) left untested: each fails on one mutant of the function.
describe('the chart axis, edges', () => {
  it('a chart starting in the first pass of a repeated hour has the second pass ticks, in time order', () => {
    // 00:30Z is 01:30 BST: the 01:00 GMT after it shows an earlier wall time than the start (the 3 hours looked back),
    // and its tick comes between the two 01:30s (the ticks sorted by instant, not by wall time).
    expect(ticks('Europe/London', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', 30 * 60_000)).toEqual([
      '10-25T00:30Z 01:30',
      '10-25T01:00Z 01:00',
      '10-25T01:30Z 01:30',
    ]);
  });

  it('a chart without a valid time span has no ticks, and returns (the loop ended on nothing: a hung tab)', () => {
    // The board draws from the timeline's from and to: a time it cannot read (NaN) made every bound NaN, and the loop
    // over wall times, which stopped only past the end, never did. The format counts its calls to fail, not hang.
    let calls = 0;
    const fmt: Fmt = {
      ...fmtIn('UTC'),
      offsetMinutes: () => {
        calls += 1;
        if (calls > 10_000) throw new Error('axisTicks does not end');
        return 0;
      },
    };
    expect(axisTicks(Number.NaN, Number.NaN, 48 * HOUR, fmt)).toEqual([]);
    expect(axisTicks(0, HOUR, HOUR, { ...fmt, offsetMinutes: () => Number.NaN })).toEqual([]);
  });

  it('hourly ticks date local midnight (a step of exactly an hour)', () => {
    expect(ticks('UTC', '2026-01-09T22:30:00Z', '2026-01-10T01:00:00Z', HOUR)).toEqual([
      '01-09T23:00Z 23:00',
      '01-10T00:00Z 00:00 2026-01-10',
      '01-10T01:00Z 01:00',
    ]);
  });

  it('a day whose midnight a change skips (America/Santiago, 6 September 2026) dates its first tick', () => {
    expect(ticks('America/Santiago', '2026-09-05T12:00:00Z', '2026-09-06T12:00:00Z', 6 * HOUR)).toEqual([
      '09-05T16:00Z 12:00',
      '09-05T22:00Z 18:00',
      '09-06T09:00Z 06:00 2026-09-06',
    ]);
  });
});
