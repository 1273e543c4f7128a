// The assessments a seen-messages item carries are stored for good, so they are stored small (deflated, without
// what the item's key says) and read back exactly as they were made: the same entry, the same JSON, field for field.
import { describe, expect, it } from 'vitest';
import { carriedEntries, entriesCarried } from '#adapters/aws/dynamo-audit-log.ts';
import type { AuditEvent } from '#ports';

const assessment: AuditEvent = {
  at: '2026-01-10T08:02:00Z',
  patientId: 'P-0001',
  type: 'assessment',
  text: 'CRS 0, ICANS 0 (astct2019): CRS entry criterion not met: no temperature >= 38 °C in the last 24 h at 2026-01-10T08:02:00Z',
  details: {
    messageId: 'P-0001-m3',
    digest: 'UXJNAdnB1maPpPtyxqNpnv',
    crsGrade: 0,
    icansGrade: 0,
    scheme: 'astct2019',
    sender: 'mon-1',
  },
};

describe('the entries a seen-messages item carries', () => {
  it('read back exactly as they were written, in a quarter less room than JSON text', () => {
    const entries = [{ event: assessment, written: '001796171433369.000003' }];
    const stored = carriedEntries('P-0001', 'P-0001-m3', entries);
    const back = entriesCarried('P-0001', 'P-0001-m3', stored);
    expect(back).toEqual(entries);
    expect(JSON.stringify(back[0]!.event)).toBe(JSON.stringify(assessment)); // the export prints the same line
    expect(stored.B!.length).toBeLessThan(0.75 * JSON.stringify(assessment).length);
  });

  it('keep a patientId or messageId that the key does not say', () => {
    const other = { ...assessment, patientId: 'P-0002', details: { ...assessment.details, messageId: 'x' } };
    const entries = [{ event: other, written: '1' }];
    expect(entriesCarried('P-0001', 'P-0001-m3', carriedEntries('P-0001', 'P-0001-m3', entries))).toEqual(entries);
  });

  it('read items written before, whose entries are JSON text in a list', () => {
    const legacy = { L: [{ M: { entry: { S: JSON.stringify(assessment) }, written: { S: '7' } } }] };
    expect(entriesCarried('P-0001', 'P-0001-m3', legacy)).toEqual([{ event: assessment, written: '7' }]);
    expect(entriesCarried('P-0001', 'P-0001-m3', undefined)).toEqual([]);
  });
});
