// `crs replay --format hl7v2|fhir|mixed` (the real command): the vignettes as an interface engine's capture grade and
// page as their JSON does; HL7 files split by MLLP frames or blank lines; refusals are "rejected" events.
import { describe, expect, it } from 'vitest';
import { frame } from '#app/hl7v2/mllp.ts';
import { replayCli } from '#test/support/cli.ts';
import { asInterfaces, vignettes } from '#test/support/interfaces.ts';

const pages = (events: Record<string, unknown>[]) =>
  events.filter((e) => e.type === 'notification').map(({ notificationId: _n, causedBy: _c, ...rest }) => rest);

describe('crs replay --format', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    it(`a mixed capture of the ${scheme} vignettes pages and grades as their JSON`, () => {
      const set = vignettes.filter((v) => v.scheme === scheme);
      const capture = set
        .flatMap(asInterfaces)
        .map((i) => (i.format === 'hl7v2' ? i.text.replace(/\r/g, '\n') : JSON.stringify(i.bundle)))
        .join('\n\n');
      const viaInterfaces = replayCli(['-', '--format', 'mixed', '--scheme', scheme], capture);
      const viaJson = replayCli(
        ['-', '--scheme', scheme],
        set
          .flatMap((v) => v.messages)
          .map((m) => JSON.stringify(m))
          .join('\n'),
      );
      expect(viaInterfaces.stderr).toBe('');
      expect(viaInterfaces.status).toBe(0);
      expect(pages(viaInterfaces.events)).toEqual(pages(viaJson.events));
      expect(pages(viaInterfaces.events).length).toBe(set.reduce((n, v) => n + v.expect.notifications.length, 0));
      const last = (r: typeof viaJson, patientId: string) =>
        r.events.filter((e) => e.type === 'assessment' && e.patientId === patientId).at(-1);
      for (const patientId of new Set(set.flatMap((v) => v.messages.map((m) => m.patientId)))) {
        expect([last(viaInterfaces, patientId)?.crsGrade, last(viaInterfaces, patientId)?.icansGrade]).toEqual([
          last(viaJson, patientId)?.crsGrade,
          last(viaJson, patientId)?.icansGrade,
        ]);
      }
    });
  }

  it('reads HL7 files as MLLP frames or as blank-line blocks, and FHIR as NDJSON; refusals are rejected events with exit 1', () => {
    const v = vignettes[0]!;
    const hl7 = asInterfaces(v).flatMap((i) => (i.format === 'hl7v2' ? [i.text] : []));
    const framed = replayCli(['-', '--format', 'hl7v2'], Buffer.concat(hl7.map(frame)).toString('utf8'));
    const blocks = replayCli(['-', '--format', 'hl7v2'], hl7.map((t) => t.replace(/\r/g, '\r\n')).join('\r\n\r\n'));
    expect(framed.status).toBe(0);
    expect(framed.events.filter((e) => e.type === 'assessment')).toHaveLength(hl7.length);
    expect(blocks.events).toEqual(framed.events);

    const bad = replayCli(['-', '--format', 'hl7v2'], `${hl7[0]!.replace('268192^MDC_DIM_DEGC^MDC', '')}\n\nnot hl7`);
    expect(bad.status).toBe(1);
    expect(bad.events.filter((e) => e.type === 'rejected')).toEqual([
      { type: 'rejected', line: 1, errors: [expect.stringMatching(/^OBX-1.6: OBX-6 no unit/)] },
      { type: 'rejected', line: 2, errors: ['MSH-1: the message does not start with an MSH segment'] },
    ]);

    const fhir = asInterfaces(v).flatMap((i) => (i.format === 'fhir' ? [JSON.stringify(i.bundle)] : []));
    const nd = replayCli(['-', '--format', 'fhir'], `${fhir.join('\n')}\n{"resourceType":"Observation"}\n`);
    expect(nd.status).toBe(1);
    expect(nd.events.at(-1)).toMatchObject({ type: 'rejected', line: fhir.length + 1 });
  });
});
