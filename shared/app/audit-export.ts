// Exporting a patient's audit trail: NDJSON (one entry a line, as stored) or CSV (for a spreadsheet).
import type { AuditEvent } from '#ports';

const AUDIT_CSV_COLUMNS = ['at', 'patientId', 'type', 'text', 'details'] as const;

/** One CSV cell (RFC 4180), neutralised against formula injection when opened in a spreadsheet. */
function cell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function auditCsvHeader(): string {
  return `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
}

export function auditCsvRow(e: AuditEvent): string {
  return `${[e.at, e.patientId, e.type, e.text, JSON.stringify(e.details)].map(cell).join(',')}\r\n`;
}

export function auditNdjsonRow(e: AuditEvent): string {
  return `${JSON.stringify(e)}\n`;
}
