// The synthetic ward feed (test/bench/generate.ts) moved into the recent past: the ingest refuses observations
// from the future, and a fixed date would one day be too old or, on a wrong clock, ahead.
import type { DeviceMessage } from '#domain/contract.ts';
import { syntheticFeed } from '#test/bench/generate.ts';

/** `count` messages over `patients` patients, interleaved, ending two hours ago. */
export function recentFeed(count: number, patients: number): DeviceMessage[] {
  const feed = syntheticFeed(count, patients);
  const last = Math.max(...feed.map((m) => Date.parse(m.observedAt)));
  const shift = Date.now() - 2 * 3_600_000 - last;
  const move = (t: string) => new Date(Date.parse(t) + shift).toISOString();
  return feed.map((m) => ({
    ...m,
    observedAt: move(m.observedAt),
    ...(m.enrolment
      ? { enrolment: { ...m.enrolment, ...(m.enrolment.infusedAt ? { infusedAt: move(m.enrolment.infusedAt) } : {}) } }
      : {}),
  }));
}
