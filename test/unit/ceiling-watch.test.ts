// What the delivery watch's `ceiling` alert is told of new patients refused for crs serve --max-patients
// (shared/hosts/embedded/ceiling.ts), without a server: the directory's own bookkeeping.
import { describe, expect, it } from 'vitest';
import { FHIR_BASE, handleFhirHttp } from '#app/fhir/http.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { handleHl7Http } from '#app/hl7v2/http.ts';
import { handleIngest, type HttpRequest, type IngestDeps } from '#app/ingest.ts';
import type { PatientFacts } from '#app/scope.ts';
import { CeilingWatchedDirectory } from '#hosts/embedded/ceiling.ts';
import { MINUTE, iso } from '#domain/time.ts';
import { ingestFakes } from '#test/support/port-fakes.ts';
import { T0, msg } from '#test/support/messages.ts';

function watched() {
  let room = false;
  let changes = 0;
  const clock = { t: Date.parse('2026-12-06T10:00:00Z') };
  const inner = {
    lookup: async () => new Map<string, PatientFacts>(),
    admitNew: (_ids: readonly string[], _ceiling: number) =>
      room ? { ok: true as const, release: (_admitted: boolean) => undefined } : { ok: false as const, active: 3 },
  };
  const dir = new CeilingWatchedDirectory(
    inner,
    () => clock.t,
    () => changes++,
  );
  return {
    dir,
    clock,
    changes: () => changes,
    room: (r: boolean) => {
      room = r;
    },
  };
}

describe('the ceiling alert, as the directory keeps it', () => {
  it('names the latest five refused, the latest last (one refused again moves last), counts each once', () => {
    const w = watched();
    for (const id of ['A', 'B', 'C', 'D', 'E', 'F']) w.dir.admitNew([id], 3);
    expect(w.dir.current()).toMatchObject({ count: 6, patientIds: ['B', 'C', 'D', 'E', 'F'], maxPatients: 3 });
    w.dir.admitNew(['B'], 3);
    expect(w.dir.current()).toMatchObject({ count: 6, patientIds: ['C', 'D', 'E', 'F', 'B'] });
  });

  it('says since the first refusal, last at the latest; told once when it begins, not at each refusal', () => {
    const w = watched();
    const first = w.clock.t;
    w.dir.admitNew(['A'], 3);
    expect(w.changes()).toBe(1);
    w.clock.t += 5 * MINUTE;
    w.dir.admitNew(['B'], 3);
    expect(w.changes()).toBe(1);
    expect(w.dir.current()).toMatchObject({ since: iso(first), lastAt: iso(w.clock.t) });
  });

  it('ends at once when a new patient is taken (the watch told), and begins afresh at the next refusal', () => {
    const w = watched();
    w.dir.admitNew(['A'], 3);
    w.dir.admitNew(['B'], 3);
    w.room(true);
    const reserved = w.dir.admitNew(['C'], 3);
    // Room reserved is no patient taken (until 2026-12-06 it ended here): given up (the queue failed), it stands.
    expect(w.dir.current()).toMatchObject({ count: 2 });
    if (reserved.ok) reserved.release(false);
    expect([w.dir.current()?.count, w.changes()]).toEqual([2, 1]);
    const taken = w.dir.admitNew(['C'], 3);
    if (taken.ok) taken.release(true);
    expect(w.dir.current()).toBeUndefined();
    expect(w.changes()).toBe(2);
    w.room(false);
    w.clock.t += MINUTE;
    w.dir.admitNew(['D'], 3);
    expect(w.dir.current()).toMatchObject({ count: 1, patientIds: ['D'], since: iso(w.clock.t) });
  });

  it('counts at most 10,000 distinct patients (a device flooding new ids), naming the latest', () => {
    const w = watched();
    for (let i = 0; i < 10_010; i++) w.dir.admitNew([`P${i}`], 3);
    // The latest are named all the same: the ones the operator looks for (they were the 9,996th to 10,000th).
    expect(w.dir.current()).toMatchObject({
      count: 10_000,
      patientIds: ['P10005', 'P10006', 'P10007', 'P10008', 'P10009'],
    });
  });

  // Each front calls the reservation's release with whether the message was durably queued (2026-12-06).
  it('stands while the queue fails to take a new patient, whatever the front, and ends once one is taken', async () => {
    const now = T0 + 60 * MINUTE;
    const m = msg('P-NEW', 30, { vitals: { heartRate: 90 } }, 'new-1');
    const fronts: [string, (req: HttpRequest, deps: IngestDeps) => Promise<{ status: number }>, string, string][] = [
      ['/v1/messages', handleIngest, 'application/json', JSON.stringify(m)],
      ['/v1/hl7v2', handleHl7Http, 'x-application/hl7-v2+er7', toPcd01(m)!],
      [FHIR_BASE, handleFhirHttp, 'application/fhir+json', JSON.stringify(new FhirEncoder().bundle(m))],
    ];
    for (const [path, handle, type, body] of fronts) {
      const w = watched();
      w.clock.t = now;
      w.dir.admitNew(['A'], 1);
      w.room(true);
      const { queue, tokens, token } = await ingestFakes(now);
      const deps = { queue, tokens, now: () => now, patients: w.dir, maxPatients: 1 };
      const req = { method: 'POST', path, headers: { authorization: `Bearer ${token}`, 'content-type': type }, body };
      queue.failWith = new Error('disk full');
      expect((await handle(req, deps)).status, path).toBe(503);
      expect(w.dir.current(), path).toMatchObject({ patientIds: ['A'] });
      queue.failWith = undefined;
      expect((await handle(req, deps)).status, path).toBeLessThan(300);
      expect(w.dir.current(), path).toBeUndefined();
    }
  });
});
