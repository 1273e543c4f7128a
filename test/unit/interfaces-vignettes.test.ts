// Every vignette in test/fixtures/vignettes.json (whichever set this branch has), its vitals translated from HL7 v2
// (PCD-01) and its charting from FHIR R4, pages exactly as its JSON does: same final grades, same notifications.
import { describe, expect, it } from 'vitest';
import { Replay } from '#app/replay.ts';
import { resolveConfig } from '#domain/config.ts';
import type { OutputEvent } from '#domain/events.ts';
import { asInterfaces, translateItem, vignettes, type Vignette } from '#test/support/interfaces.ts';

function run(v: Vignette, messages: unknown[]) {
  const r = resolveConfig({ scheme: v.scheme });
  if (!r.ok) throw new Error(r.errors.join('; '));
  const replay = new Replay(r.config);
  const events: OutputEvent[] = [];
  messages.forEach((m, i) => events.push(...replay.line(JSON.stringify(m), i + 1)));
  const assessments = events.filter((e) => e.type === 'assessment') as Extract<OutputEvent, { type: 'assessment' }>[];
  const last = assessments.at(-1)!;
  return {
    grades: [last.crsGrade, last.icansGrade],
    pages: events.flatMap((e) =>
      e.type === 'notification' ? [{ kind: e.kind, condition: e.condition, toGrade: e.toGrade, teams: e.teams }] : [],
    ),
    rejected: events.filter((e) => e.type === 'rejected'),
    duplicates: events.filter((e) => e.type === 'duplicate').length,
  };
}

describe('vignettes through HL7 v2 and FHIR', () => {
  const now = Date.parse('2027-01-01T00:00:00Z');
  it.each(vignettes.map((v) => [`${v.id} ${v.title}`, v] as const))('%s', (_name, v) => {
    const translated = asInterfaces(v).flatMap((item) => {
      const t = translateItem(item, now);
      expect(t.problems, `${item.format} of ${item.from}`).toEqual([]);
      return t.messages;
    });
    const viaInterfaces = run(v, translated);
    const viaJson = run(v, v.messages);
    expect(viaInterfaces.rejected).toEqual([]);
    expect(viaInterfaces.grades).toEqual([v.expect.crs, v.expect.icans]);
    expect(viaInterfaces.pages).toEqual(v.expect.notifications);
    expect(viaInterfaces.pages).toEqual(viaJson.pages);
    expect(viaInterfaces.duplicates).toBe(viaJson.duplicates);
  });
});
