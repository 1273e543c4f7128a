import { describe, expect, it } from 'vitest';
import { auditCsvHeader, auditCsvRow, auditNdjsonRow } from '#app/audit-export.ts';
import type { AuditEvent } from '#ports';

const event: AuditEvent = {
  at: '2026-11-26T10:05:00Z',
  patientId: 'P-1',
  type: 'acknowledgement',
  text: 'icu page acknowledged by Dr "Ann" O\'Neil, via link',
  details: { pageId: 'crs|P-1|m3|icu', by: 'Dr "Ann"', level: 1 },
};

describe('audit export', () => {
  it('writes NDJSON as stored', () => {
    expect(JSON.parse(auditNdjsonRow(event))).toEqual(event);
  });

  it('writes RFC 4180 CSV with quotes, commas and JSON details', () => {
    expect(auditCsvHeader()).toBe('at,patientId,type,text,details\r\n');
    expect(auditCsvRow(event)).toBe(
      '2026-11-26T10:05:00Z,P-1,acknowledgement,"icu page acknowledged by Dr ""Ann"" O\'Neil, via link","{""pageId"":""crs|P-1|m3|icu"",""by"":""Dr \\""Ann\\"""",""level"":1}"\r\n',
    );
  });

  it('neutralises cells a spreadsheet would run as a formula', () => {
    expect(auditCsvRow({ ...event, text: '=HYPERLINK("x")', details: {} })).toContain(`"'=HYPERLINK(""x"")"`);
    expect(auditCsvRow({ ...event, text: '-1', details: {} })).toContain(",'-1,");
  });
});
