// The assessments a seen-messages item carries are stored for good, so they are stored small (deflated with a preset
// dictionary of typical entries, without what the item's key says) and read back exactly as they were made: the same
// entry, the same JSON, field for field.
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AUDIT_DICTIONARY_V1 } from '#adapters/aws/audit-dictionary.ts';
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
  it('read back exactly as they were written, in under a third of the room of JSON text', () => {
    const entries = [{ event: assessment, written: '001796171433369.000003' }];
    const stored = carriedEntries('P-0001', 'P-0001-m3', entries);
    const back = entriesCarried('P-0001', 'P-0001-m3', stored);
    expect(back).toEqual(entries);
    expect(JSON.stringify(back[0]!.event)).toBe(JSON.stringify(assessment)); // the export prints the same line
    expect(stored.B!.length).toBeLessThan(JSON.stringify(assessment).length / 3);
    // Deflated without the dictionary, the same entries took about three quarters of the JSON.
    expect(stored.B!.length).toBeLessThan(deflateRawSync(JSON.stringify(entries)).length / 2);
  });

  it('read back any entries, whatever their text (the dictionary only shortens what it shares)', () => {
    const event = fc.record({
      at: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
      patientId: fc.constantFrom('P-0001', 'P-0002'),
      type: fc.constantFrom('assessment', 'notification', 'message-reused'),
      text: fc.string({ unit: 'grapheme', maxLength: 400 }),
      details: fc.record({ messageId: fc.constantFrom('P-0001-m3', 'other'), digest: fc.string(), n: fc.integer() }),
    });
    fc.assert(
      fc.property(fc.array(fc.record({ event, written: fc.string() }), { maxLength: 4 }), (entries) => {
        const back = entriesCarried('P-0001', 'P-0001-m3', carriedEntries('P-0001', 'P-0001-m3', entries as never));
        expect(back.map((e) => JSON.stringify(e))).toEqual(
          entries.map((e) =>
            JSON.stringify({ event: { ...e.event, details: { ...e.event.details } }, written: e.written }),
          ),
        );
      }),
    );
  });

  it('read items written before the dictionary, deflated alone: no raw deflate stream starts with its marker', () => {
    const before = { B: deflateRawSync(JSON.stringify([[{ ...assessment, patientId: undefined }, '9']])) };
    expect(entriesCarried('P-0001', 'P-0001-m3', before)).toEqual([{ event: assessment, written: '9' }]);
    // The marker's bits 1-2 (BTYPE 11) are reserved in deflate: whatever zlib deflates never begins with them.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 9 }), (bytes, level) => {
        expect(deflateRawSync(bytes, { level })[0]! & 0b110).not.toBe(0b110);
      }),
    );
  });

  it('use the dictionary they were deflated with: it never changes (another one needs a marker of its own)', () => {
    expect(createHash('sha256').update(AUDIT_DICTIONARY_V1).digest('hex')).toBe(
      '57d079d1e0257dc7fb7e4d46c3c0706777aed27130a88ba30c94c68436c37243',
    );
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
