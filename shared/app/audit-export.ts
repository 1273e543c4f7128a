// Exporting a patient's audit trail: NDJSON (one entry a line, as stored) or CSV (for a spreadsheet), oldest first
// on every backend: by the entry's time, then the order it was written.
import type { AuditEvent } from '#ports';

/**
 * An entry's time in UTC at a fixed width (entries say 10:00:00Z, 10:00:00.500Z or 12:00:00+02:00), so that times
 * sort as text. A catch-up after downtime writes entries dated at past due times after later ones: the trail is
 * still read in time order.
 */
export function sortableTime(at: string): string {
  const t = Date.parse(at);
  return Number.isFinite(t) ? new Date(t).toISOString() : at;
}

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
